#!/usr/bin/python3
"""Summarise the raw results of tools/bench_writers.sh as markdown tables.

Usage: bench_writers.py RAW.jsonl

RAW.jsonl holds one JSON object a line, each with "bench" (tput, coalesce, latency) and "round".
Every cell is the median over rounds; every ratio is the median over rounds of a ratio taken
within one round (same round, same row), so slow phases of a noisy host hit both sides alike.
READTHRU STATS fields are "rt_<field>" (after) and "rt0_<field>" (before). Missing values
print '-'.
"""
import json
import statistics
import sys

BEHIND_MIN_RATIO = 0.7  # the target: write-behind SET throughput >= 0.7x plain forwarding


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


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


def delta(r, f):
    a, b = r.get("rt0_" + f), r.get("rt_" + f)
    return None if a is None or b is None else b - a


def loads(runs):
    v = [r.get("load1") for r in runs if r.get("load1") is not None]
    return "load average (1 min) at the start of the runs: median %s, min %s, max %s" % (
        fmt(med(v)), fmt(min(v) if v else None), fmt(max(v) if v else None))


def ratio(a, b):
    return a / b if a is not None and b else None


# ---------------------------------------------------------------- 1. throughput

TPUT_NAMES = {"redis": "direct redis-server", "readthru-plain": "readthru, no writers",
              "readthru-behind": "readthru, behind writer"}


def tput(recs):
    runs = [r for r in recs if r["bench"] == "tput"]
    if not runs:
        return
    print("### 1. Write-behind SET throughput: redis-benchmark -c 50 SET user:__rand_int__ "
          "<64-byte JSON>, -r 100000")
    print()
    print(loads(runs) + ".")
    print()
    idx = {(r["round"], r["row"], r["target"]): r for r in runs}
    rows, verdicts, behind_rows = [], [], []
    for row in sorted({r["row"] for r in runs}, key=lambda x: (x != "c50-P1", x)):
        for target in ("redis", "readthru-plain", "readthru-behind"):
            rs = [r for r in runs if r["row"] == row and r["target"] == target]
            if not rs:
                continue
            vs_plain, vs_redis = [], []
            for r in rs:
                p = idx.get((r["round"], row, "readthru-plain"))
                d = idx.get((r["round"], row, "redis"))
                vs_plain.append(ratio(r["ops_per_s"], p and p["ops_per_s"]))
                vs_redis.append(ratio(r["ops_per_s"], d and d["ops_per_s"]))
            behind = target == "readthru-behind"
            rows.append([
                row, TPUT_NAMES[target],
                fmt(med([r["ops_per_s"] for r in rs]), ".0f"),
                fmt(med(vs_plain), ".3f") if target != "redis" else "-",
                fmt(med(vs_redis), ".3f"),
                fmt(med([r["p50_ms"] for r in rs]), ".3f"),
                fmt(med([r["p99_ms"] for r in rs]), ".3f"),
                fmt(med([r["proxy_us"] for r in rs])) if target != "redis" else "-",
                fmt(med([r["redis_us"] for r in rs])),
                fmt(med([r.get("proxy_us_drained") for r in rs])) if behind else "-",
                fmt(med([r.get("redis_us_drained") for r in rs])) if behind else "-",
                len(rs),
            ])
            if behind:
                v = med(vs_plain)
                verdicts.append("%s: write-behind / plain forwarding %s (within-round ratios: %s): "
                                "at least %.1fx: %s" % (
                                    row, fmt(v, ".3f"),
                                    ", ".join(fmt(x, ".2f") for x in vs_plain),
                                    BEHIND_MIN_RATIO, yes(None if v is None else v >= BEHIND_MIN_RATIO)))
                per_run = []
                for r in rs:
                    w, dbw = delta(r, "writes"), delta(r, "db_writes")
                    run_s = r["requests"] / r["ops_per_s"] if r["ops_per_s"] else None
                    total = run_s + r["drain_s"] if run_s is not None and r.get("drain_s", -1) >= 0 else None
                    per_run.append({
                        "writes": w, "dbw": dbw,
                        "per1k": dbw * 1000.0 / w if w and dbw is not None else None,
                        "batches": delta(r, "batches"), "coalesced": delta(r, "coalesced"),
                        "backlog": r.get("backlog"), "drain": r.get("drain_s"),
                        "drain_rate": r["backlog"] / r["drain_s"]
                        if r.get("backlog") and r.get("drain_s", 0) > 0 else None,
                        "rows_s": dbw / total if dbw is not None and total else None,
                        "errors": sum(delta(r, f) or 0 for f in ("errors", "timeouts", "dead_letters")),
                        "lag": r.get("stats_lag_s"),
                    })
                behind_rows.append([
                    row,
                    fmt(med([p["writes"] for p in per_run]), ".0f"),
                    fmt(med([p["backlog"] for p in per_run]), ".0f"),
                    fmt(med([p["drain"] for p in per_run]), ".2f"),
                    fmt(med([p["drain_rate"] for p in per_run]), ".0f"),
                    fmt(med([p["dbw"] for p in per_run]), ".0f"),
                    fmt(med([p["per1k"] for p in per_run]), ".0f"),
                    fmt(med([p["batches"] for p in per_run]), ".0f"),
                    fmt(med([p["coalesced"] for p in per_run]), ".0f"),
                    fmt(med([p["rows_s"] for p in per_run]), ".0f"),
                    sum(p["errors"] for p in per_run),
                    fmt(med([p["lag"] for p in per_run]), ".2f"),
                ])
    print(table(["row", "target", "SET/s", "ratio to rt no writers", "ratio to redis", "p50 ms",
                 "p99 ms", "proxy CPU us/req", "redis CPU us/req",
                 "proxy CPU us/req incl. drain", "redis CPU us/req incl. drain", "runs"],
                rows, ["l", "l"] + ["r"] * 10))
    print()
    print("CPU us/req: user+sys CPU of the process (/proc/PID/stat) over the run / requests; "
          "\"incl. drain\" also counts the flusher's catch-up after the run until the stream is "
          "empty. redis-benchmark's own CPU is on the same 2 cores.")
    print()
    print("The behind writer in these runs (READTHRU STATS deltas over run + drain, medians per run):")
    print()
    print(table(["row", "writes", "stream backlog at end of run", "drain s",
                 "drain: stream entries/s", "db rows written",
                 "db rows per 1,000 writes", "batches", "coalesced", "db rows/s (run + drain)",
                 "errors+timeouts+dead", "STATS queue_length 0 after s"], behind_rows))
    print()
    for v in verdicts:
        print("- " + v)
    print()
    cpu_split(runs)


def cpu_split(runs):
    """Where the CPU of a write goes, and what that allows: on two saturated cores, throughput
    goes as 1 / (CPU per request, all processes), so the database writes alone bound the ratio."""
    if not any(r.get("client_us") is not None for r in runs):
        return
    print("Where the CPU goes, us per SET (medians; readthru split into its event-loop thread and "
          "its other threads, which are the SQLite workers; client: redis-benchmark):")
    print()
    out, bounds = [], []
    for row in sorted({r["row"] for r in runs}, key=lambda x: (x != "c50-P1", x)):
        totals = {}
        for target in ("redis", "readthru-plain", "readthru-behind"):
            rs = [r for r in runs if r["row"] == row and r["target"] == target]
            if not rs:
                continue
            behind = target == "readthru-behind"

            def tot(r, drained=False):
                parts = [r.get("client_us"), r.get("redis_us_drained" if drained else "redis_us")]
                if target != "redis":
                    parts.append(r.get("proxy_us_drained" if drained else "proxy_us"))
                return None if any(v is None for v in parts) else sum(parts)
            totals[target] = med([tot(r) for r in rs])
            out.append([
                row, TPUT_NAMES[target],
                fmt(med([r.get("client_us") for r in rs])),
                fmt(med([r.get("loop_us") for r in rs])) if target != "redis" else "-",
                fmt(med([r.get("workers_us") for r in rs])) if target != "redis" else "-",
                fmt(med([r.get("workers_us_drained") for r in rs])) if behind else "-",
                fmt(med([r["redis_us"] for r in rs])),
                fmt(totals[target]),
                fmt(med([tot(r, True) for r in rs])) if behind else "-",
            ])
            if behind and totals.get("readthru-plain"):
                db = med([r.get("workers_us_drained") for r in rs])
                if db is not None:
                    bounds.append("%s: plain forwarding costs %s us of CPU per SET in all; the behind "
                                  "writer's SQLite threads alone add %s (run + drain), so even a queue "
                                  "costing Redis and the loop thread nothing could reach about %s of "
                                  "plain forwarding on these cores" % (
                                      row, fmt(totals["readthru-plain"], ".1f"), fmt(db, ".1f"),
                                      fmt(totals["readthru-plain"] / (totals["readthru-plain"] + db),
                                          ".2f")))
    print(table(["row", "target", "client", "readthru loop thread", "readthru SQLite threads",
                 "SQLite threads incl. drain", "redis-server", "all, run",
                 "all incl. drain"], out, ["l", "l"] + ["r"] * 7))
    print()
    for b in bounds:
        print("- " + b)
    print()


# ---------------------------------------------------------------- 2. coalescing

def coalesce(recs):
    runs = [r for r in recs if r["bench"] == "coalesce"]
    if not runs:
        return
    print("### 2. Coalescing: %s SETs from %s clients through the behind writer, then the wait "
          "for the queue to drain" % (fmt(med([r["ops"] for r in runs]), ",.0f"),
                                      fmt(med([r["clients"] for r in runs]), ".0f")))
    print()
    print(loads(runs) + ".")
    print()
    rows, notes = [], []
    order = ["100 keys", "1,000 keys", "distinct keys"]
    for label in sorted({r["label"] for r in runs}, key=lambda x: order.index(x) if x in order else 9):
        rs = [r for r in runs if r["label"] == label]
        per = []
        for r in rs:
            w, dbw, co = delta(r, "writes"), delta(r, "db_writes"), delta(r, "coalesced")
            per.append({
                "w": w, "dbw": dbw, "co": co,
                "skip": w - dbw - co if None not in (w, dbw, co) else None,
                "per1k": dbw * 1000.0 / r["ops"] if dbw is not None and r["ops"] else None,
                "floor": r["rows"] * 1000.0 / r["ops"] if r.get("rows") is not None and r["ops"] else None,
                "batches": delta(r, "batches"),
            })
            bad = {f: delta(r, f) for f in ("errors", "timeouts", "retries", "dead_letters")}
            if r.get("errors"):
                bad["client errors"] = r["errors"]
            if r.get("v_missing") or r.get("v_mismatched"):
                bad["rows missing"] = r.get("v_missing")
                bad["rows not the last write"] = r.get("v_mismatched")
            if not r.get("drained", True):
                bad["not drained (stream entries left)"] = r.get("left_xlen")
            if not r.get("stats_queue_zero", True):
                bad["STATS queue_length never 0"] = 1
            if w is not None and w != r["ops"]:
                bad["STATS writes delta != SETs sent (%s vs %s)" % (w, r["ops"])] = 1
            if any(bad.values()):
                notes.append("round %s %s: %s%s" % (
                    r["round"], label, ", ".join("%s %s" % kv for kv in bad.items() if kv[1]),
                    " (e.g. %s)" % r["v_example"] if r.get("v_example") else
                    (" (first client error: %s)" % r["first_error"] if r.get("first_error") else "")))
        rows.append([
            label,
            fmt(med([r["ops_per_s"] for r in rs]), ".0f"),
            fmt(med([p["dbw"] for p in per]), ".0f"),
            fmt(med([p["per1k"] for p in per]), ".1f"),
            fmt(med([p["floor"] for p in per]), ".1f"),
            fmt(med([p["batches"] for p in per]), ".0f"),
            fmt(med([p["co"] for p in per]), ".0f"),
            fmt(med([p["skip"] for p in per]), ".0f"),
            fmt(med([r.get("backlog") for r in rs]), ".0f"),
            fmt(med([r.get("drain_s") for r in rs]), ".2f"),
            fmt(med([r.get("proxy_us_drained") for r in rs])),
            fmt(med([r.get("redis_us_drained") for r in rs])),
            "%s / %s" % (fmt(med([r.get("rows") for r in rs]), ".0f"),
                         sum(r.get("v_mismatched", 0) + r.get("v_missing", 0) for r in rs)),
            len(rs),
        ])
    print(table(["writes over", "SET/s", "db rows written", "db rows per 1,000 writes",
                 "floor (distinct keys per 1,000)", "batches", "coalesced (in a batch)",
                 "skipped (written by an earlier batch)", "stream backlog at end of writes",
                 "drain s", "proxy CPU us/write", "redis CPU us/write", "rows in table / wrong",
                 "runs"], rows))
    print()
    print("db rows written, batches, coalesced: READTHRU STATS writer:user deltas (db_writes, "
          "batches, coalesced) from before the writes until the stream readthru:wb:user and its "
          "pending hash were empty. skipped = writes - db_writes - coalesced: entries whose key an "
          "earlier batch had already written with the newer state. drain s: from the last SET's "
          "reply until the stream and the pending hash were empty. floor: the keys written at least "
          "once, per 1,000 writes (the fewest rows possible). rows in table / wrong: rows in the "
          "users table afterwards (emptied before each run) / keys whose row is missing or does not "
          "hold the value Redis has (the last write). CPU: over writes + drain.")
    print()
    for n in notes:
        print("- NOTE: " + n)
    if notes:
        print()


# ---------------------------------------------------------------- 3. latency

LAT_NAMES = {
    "redis": "SET, direct redis-server",
    "readthru-plain": "SET through readthru, no writer",
    "through-wal": "SET through readthru, write-through (WAL)",
    "sqlite-wal": "upsert directly on SQLite (WAL)",
    "through-del": "SET through readthru, write-through (rollback journal)",
    "sqlite-del": "upsert directly on SQLite (rollback journal)",
}


def latency(recs):
    runs = [r for r in recs if r["bench"] == "latency"]
    if not runs:
        return
    n_wal = med([r["ops"] for r in runs if not r["target"].endswith("-del")])
    n_del = med([r["ops"] for r in runs if r["target"].endswith("-del")])
    print("### 3. Write-through latency: one client, sequential, random ids of 100,000 rows; "
          "%s writes per run%s" % (fmt(n_wal, ",.0f"), "" if n_del is None else
                                   " (rollback journal: %s)" % fmt(n_del, ",.0f")))
    print()
    print(loads(runs) + ".")
    print()
    idx = {(r["round"], r["target"]): r for r in runs}
    journal = {r["target"]: "%s, synchronous=%s" % (r["journal_mode"], r["synchronous"])
               for r in runs if "journal_mode" in r}
    rows, notes = [], []
    for target in ("redis", "readthru-plain", "through-wal", "sqlite-wal", "through-del", "sqlite-del"):
        rs = [r for r in runs if r["target"] == target]
        if not rs:
            continue
        vs_db, added, beyond = [], [], []
        if target.startswith("through-"):
            j = target.split("-")[1]
            for r in rs:
                d = idx.get((r["round"], "sqlite-" + j))
                p = idx.get((r["round"], "readthru-plain"))
                vs_db.append(ratio(r["p50_ms"], d and d["p50_ms"]))
                if p:
                    added.append(r["p50_ms"] - p["p50_ms"])
                if p and d:
                    beyond.append(r["p50_ms"] - p["p50_ms"] - d["p50_ms"])
                bad = {f: delta(r, f) for f in ("errors", "timeouts")}
                if r.get("errors"):
                    bad["client errors"] = r["errors"]
                if delta(r, "db_writes") is not None and delta(r, "db_writes") != r["ops"]:
                    bad["db_writes delta %s != SETs %s" % (delta(r, "db_writes"), r["ops"])] = 1
                if any(bad.values()):
                    notes.append("round %s %s: %s%s" % (
                        r["round"], target, ", ".join("%s %s" % kv for kv in bad.items() if kv[1]),
                        " (first error: %s)" % r["first_error"] if r.get("first_error") else ""))
        elif target == "readthru-plain":
            for r in rs:
                d = idx.get((r["round"], "redis"))
                if d:
                    added.append(r["p50_ms"] - d["p50_ms"])
        rows.append([
            LAT_NAMES[target] + (" [%s]" % journal[target] if target in journal else ""),
            fmt(med([r["p50_ms"] for r in rs]), ".3f"),
            fmt(med([r["p99_ms"] for r in rs]), ".3f"),
            fmt(med([r["p999_ms"] for r in rs]), ".2f"),
            fmt(med([r["max_ms"] for r in rs]), ".1f"),
            fmt(med([r["mean_ms"] for r in rs]), ".3f"),
            fmt(med([r["ops_per_s"] for r in rs]), ".0f"),
            fmt(med(vs_db), ".2f") if vs_db else "-",
            fmt(med(added), "+.3f") if added else "-",
            fmt(med(beyond), "+.3f") if beyond else "-",
            len(rs),
        ])
    print(table(["what", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "mean ms", "ops/s",
                 "p50 / SQLite's own p50", "p50 added (through: over rt no writer; rt: over redis)",
                 "p50 beyond rt + SQLite", "runs"], rows))
    print()
    print("Per-operation latency measured in the client (writer_loadgen, steady clock). SQLite "
          "directly: a C++ client on its own read-write connection, per statement BEGIN IMMEDIATE; "
          "the prepared upsert; COMMIT, the way readthru's writer thread runs a write-through "
          "write, on a copy of the same database. p50 beyond rt + SQLite = through p50 - "
          "(readthru no-writer p50 + SQLite p50) within a round: the write path's own cost "
          "(hand-off to the writer thread and back).")
    print()
    for n in notes:
        print("- NOTE: " + n)
    if notes:
        print()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    if not recs:
        sys.exit("bench_writers.py: no results")
    tput(recs)
    coalesce(recs)
    latency(recs)


if __name__ == "__main__":
    main()
