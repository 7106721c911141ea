#!/usr/bin/python3
"""Summarise the raw results of tools/bench_readthrough.sh as markdown tables.

Usage: bench_readthrough.py RAW.jsonl

RAW.jsonl holds one JSON object a line, each with "bench" (calibrate, stampede, cold, hits,
hits-check) and "round". Every cell is the median over rounds; every ratio is the median over
rounds of a ratio taken within one round (same round, same row), so slow phases of a noisy host
hit both sides of a ratio alike. Missing values print '-'.
"""
import json
import statistics
import sys
from collections import defaultdict

# the targets
RT_LOADS_MAX = 1.05          # loads per key per expiry
RT_P999_LOADER_FACTOR = 3.0  # p99.9 < 3x the loader time
HIT_COST_MAX = 0.05          # read-through check on hits: under 5%


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def med_hi(vals):
    """median that is one of the values (the higher middle one): for histogram bucket bounds"""
    vals = [v for v in vals if v is not None]
    return statistics.median_high(vals) if vals else None


def fmt(v, spec=".2f"):
    return "-" if v is None else format(v, spec)


def table(hdr, rows, align=None):
    align = align or ["l"] + ["r"] * (len(hdr) - 1)
    out = ["| " + " | ".join(hdr) + " |",
           "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def yes(ok):
    return "-" if ok is None else ("yes" if ok else "**NO**")


def hist_pct(r, q):
    """upper bound (ms) of the bucket of READTHRU STATS' load histogram, delta over the run,
    below which a fraction q of the run's loads lie"""
    b = []
    for k, v in r.items():
        if k.startswith("rt_hist_le_"):
            bound = k[len("rt_hist_le_"):]
            b.append((float("inf") if bound == "inf" else int(bound) / 1000.0, v))
    total = sum(v for _, v in b)
    if not total:
        return None
    cum = 0
    for bound, v in sorted(b):
        cum += v
        if cum >= q * total:
            return bound
    return None


def le(v):
    return "-" if v is None else ("> 5000" if v == float("inf") else "<= %g" % v)


def refreshed(rs):
    """whether a side's keys were refreshed rather than expired (fewer expiries than half the TTL
    periods): its loads then count per TTL period, and loads per expiry mean nothing"""
    return med([r["expiries"] for r in rs]) < 0.5 * med(
        [r["keys"] * r["duration_s"] * 1000 / r["ttl_ms"] for r in rs])


def per_expiry(r, refreshed_side):
    return "-" if refreshed_side else "%.3f" % r["loads_per_key_expiry"]


def stampede(recs, cal_ms, cal_min=None):
    runs = [r for r in recs if r["bench"] == "stampede"]
    for think in sorted({r.get("think_us", 0) for r in runs}):
        stampede_group([r for r in runs if r.get("think_us", 0) == think], cal_ms, cal_min)


def stampede_group(runs, cal_ms, cal_min):
    think = runs[0].get("think_us", 0)
    by_mode = defaultdict(list)
    for r in runs:
        by_mode[r["mode"]].append(r)
    rounds = sorted({r["round"] for r in runs})
    print("### 1. Stampede: %d clients, %d hot keys, ttl %.0fs +- %.0fs, %.0f s per run, "
          "backend workers 2, %s" % (
              runs[0]["clients"], runs[0]["keys"], runs[0]["ttl_ms"] / 1000,
              runs[0]["jitter_ms"] / 1000, med([r["duration_s"] for r in runs]),
              ("clients back to back (no think time)" if not think
               else "each client sleeps %g ms after every GET" % (think / 1000))
              + (", clients under nice %d" % runs[0]["client_nice"]
                 if runs[0].get("client_nice") else "")))
    print()
    if cal_ms is not None:
        print("Loader query: %.1f ms measured alone at start (median of 7; minimum %s ms)." % (
            cal_ms, fmt(cal_min, ".1f")))
    rt = by_mode.get("readthru", [])
    for mode in ("readthru", "single"):
        rs = by_mode.get(mode)
        if not rs:
            continue
        print("%s: loader time under this load, queueing included (READTHRU STATS "
              "histogram, the run's loads; median over runs): p50 %s ms, p99 %s ms." % (
                  "readthru" if mode == "readthru" else "Single-flight alone",
                  le(med_hi([hist_pct(r, 0.5) for r in rs])),
                  le(med_hi([hist_pct(r, 0.99) for r in rs]))))
    print()
    hdr = ["side", "loads/key/expiry", "loads", "expiries", "loads/key/(T/ttl)", "GETs/s",
           "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors", "runs"]
    rows = []
    fractions = sorted({str(r.get("refresh_ahead", "default")) for r in rt})
    nices = sorted({r.get("worker_nice", -10) for r in by_mode.get("niced", [])})
    labels = {"readthru": "readthru (refresh_ahead %s)" % "/".join(fractions),
              "single": "readthru, refresh_ahead = 0 (single-flight alone)",
              "niced": "single-flight alone, workers at nice " + "/".join("%d" % n for n in nices),
              "recipe": "recipe (lock + 100 ms retry)"}
    for mode in ("readthru", "single", "niced", "recipe"):
        rs = by_mode.get(mode)
        if not rs:
            continue
        rows.append([
            labels[mode],
            "-" if refreshed(rs) else fmt(med([r["loads_per_key_expiry"] for r in rs]), ".3f"),
            fmt(med([r["loads"] for r in rs]), ".0f"),
            fmt(med([r["expiries"] for r in rs]), ".0f"),
            fmt(med([r["loads_per_key_per_ttl"] for r in rs]), ".3f"),
            fmt(med([r["ops_per_s"] for r in rs]), ".0f"),
            fmt(med([r["p50_ms"] for r in rs]), ".2f"),
            fmt(med([r["p99_ms"] for r in rs]), ".2f"),
            fmt(med([r["p999_ms"] for r in rs]), ".1f"),
            fmt(med([r["max_ms"] for r in rs]), ".1f"),
            sum(r["errors"] + r["nils"] for r in rs),
            len(rs),
        ])
    print(table(hdr, rows))
    print()
    if rt:
        print("With refresh-ahead (readthru's default) the hot keys are reloaded before they "
              "expire, so few expire at all: its loads count per TTL period, loads/key/(T/ttl).")
    print("loads/key/expiry = database loads in the window / keys that expired in Redis in it "
          "(INFO expired_keys delta); loads/key/(T/ttl) divides by keys x duration / 5 s instead. "
          "Loads: READTHRU STATS loads delta (readthru), queries the clients ran (recipe). "
          "Latency: every client GET, until it had a value (for the recipe including its sleeps).")
    print()
    # per-round detail and within-round ratios
    if rt and by_mode.get("recipe"):
        rows = []
        ratios = []
        for rd in rounds:
            a = [r for r in rt if r["round"] == rd]
            b = [r for r in by_mode["recipe"] if r["round"] == rd]
            if not a or not b:
                continue
            a, b = a[0], b[0]
            ratio = a["p999_ms"] / b["p999_ms"] if b["p999_ms"] else None
            ratios.append(ratio)
            rows.append([rd, "%s / %s" % (per_expiry(a, refreshed(rt)),
                                          per_expiry(b, refreshed(by_mode["recipe"]))),
                         "%.1f / %.1f" % (a["p999_ms"], b["p999_ms"]),
                         "%.1f / %.1f" % (a["max_ms"], b["max_ms"]),
                         "%.0f / %.0f" % (a["ops_per_s"], b["ops_per_s"]), fmt(ratio, ".3f"),
                         a.get("rt_coalesced", "-")])
        print(table(["round", "loads/key/expiry (rt / recipe)", "p99.9 ms (rt / recipe)",
                     "max ms (rt / recipe)", "GETs/s (rt / recipe)", "p99.9 rt/recipe",
                     "rt coalesced"], rows))
        print()
        print("Median p99.9 ratio readthru / recipe (within a round): %s" % fmt(med(ratios), ".3f"))
        print()
    # targets
    checks = []
    for mode in ("readthru", "single", "niced"):
        rs = by_mode.get(mode)
        if not rs:
            continue
        per_ttl = refreshed(rs)
        lk = med([r["loads_per_key_per_ttl" if per_ttl else "loads_per_key_expiry"] for r in rs])
        p999 = med([r["p999_ms"] for r in rs])
        line = "%s: loads/key/%s %s <= %.2f: %s" % (
            labels[mode], "(T/ttl)" if per_ttl else "expiry", fmt(lk, ".3f"), RT_LOADS_MAX,
            yes(lk <= RT_LOADS_MAX if lk is not None else None))
        if cal_ms:
            line += "; p99.9 %s ms < %.0fx loader time (%.1f ms alone -> %.1f ms): %s" % (
                fmt(p999, ".1f"), RT_P999_LOADER_FACTOR, cal_ms, RT_P999_LOADER_FACTOR * cal_ms,
                yes(p999 < RT_P999_LOADER_FACTOR * cal_ms if p999 is not None else None))
            line += " (by round: %s)" % ", ".join("%.1f" % r["p999_ms"] for r in
                                                  sorted(rs, key=lambda r: r["round"]))
        checks.append(line)
    rc = by_mode.get("recipe")
    if rc:
        checks.append("recipe (reference): loads/key/expiry %s, p99.9 %s ms" % (
            fmt(med([r["loads_per_key_expiry"] for r in rc]), ".3f"),
            fmt(med([r["p999_ms"] for r in rc]), ".1f")))
    for c in checks:
        print("- " + c)
    print()
    problems(runs)


def problems(runs):
    """errors, nils and failed warm-ups, with the first error message of each run"""
    for r in runs:
        bad = {k: r.get(k, 0) for k in ("errors", "nils", "warm_errors", "warm_missing")}
        if any(bad.values()):
            print("- NOTE: round %s %s%s: %s%s" % (
                r["round"], r["mode"], " c%d" % r["clients"] if r["bench"] == "cold" else "",
                ", ".join("%s %d" % kv for kv in bad.items() if kv[1]),
                " (first error: %s)" % r["first_error"] if r.get("first_error") else ""))


def cold(recs):
    runs = [r for r in recs if r["bench"] == "cold"]
    if not runs:
        return
    print("### 2. Cold misses: distinct keys, users table (%s keys per run), one PK query each"
          % fmt(med([r["ops"] for r in runs]), ".0f"))
    print()
    base = {(r["round"], r["clients"]): r["ops_per_s"] for r in runs if r["mode"] == "aside"}
    rows = []
    for clients in sorted({r["clients"] for r in runs}):
        for mode in ("readthru", "aside"):
            rs = [r for r in runs if r["mode"] == mode and r["clients"] == clients]
            if not rs:
                continue
            ratio = [r["ops_per_s"] / base[(r["round"], clients)]
                     for r in rs if base.get((r["round"], clients))]
            loads = [r.get("rt_loads") for r in rs]
            rows.append([
                clients,
                "readthru (loader)" if mode == "readthru" else "cache-aside client -> redis",
                fmt(med([r["ops_per_s"] for r in rs]), ".0f"),
                fmt(med(ratio), ".3f"),
                fmt(med([r["p50_ms"] for r in rs]), ".3f"),
                fmt(med([r["p99_ms"] for r in rs]), ".3f"),
                fmt(med([r["max_ms"] for r in rs]), ".1f"),
                fmt(med(loads), ".0f") if mode == "readthru" else fmt(med([r["queries"] for r in rs]), ".0f"),
                sum(r["errors"] + r["nils"] for r in rs),
                len(rs),
            ])
    print(table(["clients", "side", "misses/s", "ratio to cache-aside", "p50 ms", "p99 ms",
                 "max ms", "DB queries", "errors+nils", "runs"], rows))
    print()
    problems(runs)
    print("Every GET is for a key not in Redis. readthru: GET through readthru, which queries SQLite "
          "on its backend workers and SETs the value. cache-aside: the client GETs from redis-server, "
          "queries SQLite itself (its own connection per client thread) and SETs with a TTL. "
          "DB queries: READTHRU STATS loads delta / the client's queries (median per run).")
    print()


def hits(recs):
    runs = [r for r in recs if r["bench"] == "hits"]
    if not runs:
        return
    print("### 3. Hit path: redis-benchmark GET user:__rand_int__, 100,000 keys preloaded in Redis")
    print()
    idx = {(r["round"], r["row"], r["target"]): r for r in runs}
    rows = []
    verdicts = []
    for row in sorted({r["row"] for r in runs}, key=lambda x: (x != "c50-P1", x)):
        for target in ("redis", "readthru-plain", "readthru-loaders"):
            rs = [r for r in runs if r["row"] == row and r["target"] == target]
            if not rs:
                continue
            vs_plain, vs_redis = [], []
            for r in rs:
                p = idx.get((r["round"], row, "readthru-plain"))
                d = idx.get((r["round"], row, "redis"))
                if p and p["ops_per_s"]:
                    vs_plain.append(r["ops_per_s"] / p["ops_per_s"])
                if d and d["ops_per_s"]:
                    vs_redis.append(r["ops_per_s"] / d["ops_per_s"])
            proxy = med([r["proxy_us"] for r in rs])
            rows.append([
                row, {"redis": "direct redis-server", "readthru-plain": "readthru, no loaders",
                      "readthru-loaders": "readthru, loader matches"}[target],
                fmt(med([r["ops_per_s"] for r in rs]), ".0f"),
                fmt(med(vs_plain), ".3f") if target != "redis" else "-",
                fmt(med(vs_redis), ".3f"),
                fmt(med([r["p50_ms"] for r in rs]), ".3f"),
                fmt(med([r["p99_ms"] for r in rs]), ".3f"),
                fmt(proxy, ".2f") if target != "redis" else "-",
                fmt(med([r["redis_us"] for r in rs]), ".2f"),
                len(rs),
            ])
            if target == "readthru-loaders":
                v = med(vs_plain)
                lo = med([r["proxy_us"] for r in rs])
                pl = med([r["proxy_us"] for r in runs if r["row"] == row and r["target"] == "readthru-plain"])
                cpu = "; proxy CPU %s vs %s us/req (%s)" % (
                    fmt(lo), fmt(pl), "%+.1f%%" % ((lo / pl - 1) * 100) if lo and pl else "-")
                verdicts.append("%s: readthru with loaders / without: %s ops/s ratio (cost %s)%s: "
                                "under %.0f%%: %s" % (
                                    row, fmt(v, ".3f"),
                                    "-" if v is None else "%.1f%%" % ((1 - v) * 100), cpu,
                                    HIT_COST_MAX * 100,
                                    yes(None if v is None else v >= 1 - HIT_COST_MAX)))
    print(table(["row", "target", "ops/s", "ratio to rt no loaders", "ratio to redis", "p50 ms",
                 "p99 ms", "proxy CPU us/req", "redis CPU us/req", "runs"], rows,
                ["l", "l"] + ["r"] * 8))
    print()
    chk = [r for r in recs if r["bench"] == "hits-check"]
    if chk:
        c = chk[-1]
        print("Loader 'user' over the hit-path runs (READTHRU STATS delta): hits %d, misses %d, "
              "loads %d." % (c["hits"], c["misses"], c["loads"]))
        print()
    for v in verdicts:
        print("- " + v)
    print()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    if not recs:
        sys.exit("bench_readthrough.py: no results")
    cal = [r for r in recs if r["bench"] == "calibrate"]
    cal_ms = cal[-1]["ms"] if cal else None
    stampede(recs, cal_ms, cal[-1].get("min_ms") if cal else None)
    cold(recs)
    hits(recs)


if __name__ == "__main__":
    main()
