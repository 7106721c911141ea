#!/usr/bin/python3
"""Summarise the raw TSV written by tools/bench.sh: medians across rounds.

Usage: bench_report.py RAW.tsv

ratio = median over rounds of (target rps / direct-redis rps of the same
round, same test, same row); vs_tw the same over twemproxy's rps.  NA values
are skipped; a cell with no values prints '-'.
"""
import csv
import statistics
import sys
from collections import defaultdict

TARGET_ORDER = ["redis", "twemproxy", "readthru", "readthru-bp"]
ROW_ORDER = ["c50-P1", "c50-P16", "c1-P1"]
TEST_ORDER = ["get", "set"]


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def order(lst, known):
    return sorted(set(lst), key=lambda x: (known.index(x) if x in known else len(known), x))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    if not rows:
        sys.exit("bench_report.py: no results")
    base = {"redis": {}, "twemproxy": {}}  # target -> (round, test, row) -> rps
    for r in rows:
        if r["target"] in base:
            base[r["target"]][(r["round"], r["test"], r["row"])] = num(r["rps"])
    cells = defaultdict(lambda: defaultdict(list))
    for r in rows:
        c = cells[(r["target"], r["test"], r["row"])]
        rps = num(r["rps"])
        c["rps"].append(rps)
        for field, target in (("ratio", "redis"), ("vs_tw", "twemproxy")):
            d = base[target].get((r["round"], r["test"], r["row"]))
            c[field].append(rps / d if rps is not None and d else None)
        for f in ("p50_ms", "p99_ms", "proxy_us", "redis_us"):
            c[f].append(num(r[f]))
        c["n"].append(1 if rps is not None else None)

    hdr = ("target", "test", "row", "ops/s", "ratio", "vs_tw", "p50_ms", "p99_ms",
           "proxy_us/req", "redis_us/req", "ok_runs")
    fmtline = "{:<11} {:<4} {:<8} {:>10} {:>6} {:>6} {:>7} {:>7} {:>12} {:>12} {:>7}"
    print(fmtline.format(*hdr))
    print("-" * 100)
    targets = order([r["target"] for r in rows], TARGET_ORDER)
    tests = order([r["test"] for r in rows], TEST_ORDER)
    rws = order([r["row"] for r in rows], ROW_ORDER)
    for test in tests:
        for row in rws:
            for t in targets:
                c = cells.get((t, test, row))
                if c is None:
                    continue
                ok = sum(1 for v in c["n"] if v)
                print(fmtline.format(
                    t, test.upper(), row,
                    fmt(med(c["rps"]), ".0f"),
                    fmt(med(c["ratio"]), ".3f"),
                    "-" if t in base else fmt(med(c["vs_tw"]), ".2f"),
                    fmt(med(c["p50_ms"]), ".3f"),
                    fmt(med(c["p99_ms"]), ".3f"),
                    "-" if t == "redis" else fmt(med(c["proxy_us"]), ".2f"),
                    fmt(med(c["redis_us"]), ".2f"),
                    "%d/%d" % (ok, len(c["n"])),
                ))
            print()


if __name__ == "__main__":
    main()
