#!/usr/bin/env python3
"""Helper of tools/sim-vs-real (python3 stdlib only).

  inject   inject queue entries into <spool>/in at Poisson times, record when each one
           reached a feed queue and its end queue, write the `<epoch> <bytes>` trace
  compare  simulated (solve --simulate --json) against real latencies per size class,
           and where the real latency went (feed wait, queue wait, pass, moves)

Times: injection = just after the qf's tf was renamed into `in` (the moment the feed can
see the entry), fed = ctime of the qf in the feed queue (the feed's rename), done = ctime
of the qf in its end queue (the work process's rename), all in ns from st_ctime_ns.
"""

import argparse
import json
import math
import os
import random
import re
import shutil
import sys
import time

FEEDS = ["feed1", "feed2", "feed3", "feed4", "feed5"]
ENDS = ["out", "virus", "ext", "spam", "error", "good"]
# The simulator's classes (src/tune/simulate.rs CLASSES): upper bounds, exclusive.
CLASSES = [("< 10 KB", 10_000), ("10-100 KB", 100_000), ("100 KB-1 MB", 1_000_000),
           (">= 1 MB", float("inf"))]


def corpus_ids(corpus):
    """Ids in MANIFEST order (gen-corpus's order, oldest id first)."""
    ids = []
    with open(os.path.join(corpus, "MANIFEST.tsv")) as f:
        next(f)
        for line in f:
            ids.append(line.split("\t", 1)[0])
    return ids


def entry_bytes(qdir, mid):
    """qf + df bytes: what the feed and the work passes count."""
    return (os.path.getsize(os.path.join(qdir, "qf" + mid))
            + os.path.getsize(os.path.join(qdir, "df" + mid)))


def inject_one(src, indir, mid):
    """As sendmail (and tests/common/spool.rs): df first, then the qf through a tf."""
    shutil.copyfile(os.path.join(src, "df" + mid), os.path.join(indir, "df" + mid))
    tf = os.path.join(indir, "tf" + mid)
    shutil.copyfile(os.path.join(src, "qf" + mid), tf)
    os.chmod(tf, 0o600)
    os.rename(tf, os.path.join(indir, "qf" + mid))
    return time.time_ns()


def cmd_inject(a):
    src = os.path.join(a.corpus, "queue")
    ids = corpus_ids(a.corpus)[a.first:a.last]
    indir = os.path.join(a.spool, "in")
    rng = random.Random(a.seed)
    # Poisson schedule, relative to the start.
    offsets, t = [], 0.0
    for _ in ids:
        offsets.append(t)
        t += rng.expovariate(a.rate)
    sizes = {m: entry_bytes(src, m) for m in ids}
    rec = {m: {"bytes": sizes[m], "inj": None, "fed": None, "fedq": None,
               "done": None, "endq": None} for m in ids}
    pending_fed = set(ids)
    pending_done = set(ids)
    late = []  # how far behind schedule each injection was (s)
    start = time.monotonic() + 0.2
    nxt = 0
    poll = a.poll
    next_poll = time.monotonic()
    bench_seen = False

    def scan_dirs():
        # Feed queues: catch each entry there and take the feed's rename time (its ctime).
        for q in FEEDS:
            d = os.path.join(a.spool, q)
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for n in names:
                if n.startswith("qf") and n[2:] in pending_fed:
                    m = n[2:]
                    try:
                        rec[m]["fed"] = os.stat(os.path.join(d, n)).st_ctime_ns
                        rec[m]["fedq"] = q
                    except FileNotFoundError:
                        continue  # already moved on; caught in the end queue without it
                    pending_fed.discard(m)
        for q in ENDS:
            d = os.path.join(a.spool, q)
            try:
                names = os.listdir(d)
            except FileNotFoundError:
                continue
            for n in names:
                if n.startswith("qf") and n[2:] in pending_done:
                    m = n[2:]
                    rec[m]["done"] = os.stat(os.path.join(d, n)).st_ctime_ns
                    rec[m]["endq"] = q
                    pending_done.discard(m)
                    pending_fed.discard(m)

    deadline = None
    while pending_done:
        now = time.monotonic()
        if nxt < len(ids) and now >= start + offsets[nxt]:
            m = ids[nxt]
            late.append(now - (start + offsets[nxt]))
            rec[m]["inj"] = inject_one(src, indir, m)
            nxt += 1
            if nxt == len(ids):
                deadline = time.monotonic() + a.timeout
            continue
        if now >= next_poll:
            scan_dirs()
            next_poll = now + poll
        if deadline is not None and time.monotonic() > deadline:
            print(f"inject: timeout: {len(pending_done)} messages not in an end queue "
                  f"{a.timeout:.0f} s after the last injection", file=sys.stderr)
            break
        wake = next_poll
        if nxt < len(ids):
            wake = min(wake, start + offsets[nxt])
        time.sleep(max(0.0, wake - time.monotonic()))
    scan_dirs()
    with open(a.trace, "w") as f:
        f.write(f"# sim-vs-real trace: {len(ids)} arrivals, Poisson {a.rate}/s, seed {a.seed}\n")
        for m in ids:
            if rec[m]["inj"] is not None:
                f.write(f"{rec[m]['inj'] / 1e9:.3f} {rec[m]['bytes']}\n")
    with open(a.records, "w") as f:
        json.dump(rec, f)
    late.sort()
    span = (max(r["inj"] for r in rec.values()) - min(r["inj"] for r in rec.values())) / 1e9
    print(f"inject: {len(ids)} messages in {span:.1f} s ({len(ids) / max(span, 1e-9):.2f}/s), "
          f"{sum(r['bytes'] for r in rec.values())} bytes; behind schedule p50 "
          f"{late[len(late) // 2] * 1000:.1f} ms, max {late[-1] * 1000:.1f} ms; "
          f"{len(ids) - len(pending_done)} done, "
          f"{sum(1 for r in rec.values() if r['fed'] is None)} not caught in a feed queue")
    return 1 if pending_done else 0


# ---------------------------------------------------------------- compare

def pct(values, p):
    """Nearest rank, as the simulator's `percentile`."""
    if not values:
        return float("nan")
    v = sorted(values)
    rank = max(1, math.ceil(p * len(v)))
    return v[min(rank, len(v)) - 1]


def median(values):
    return pct(values, 0.5)


def klass(nbytes):
    for label, hi in CLASSES:
        if nbytes < hi:
            return label
    return CLASSES[-1][0]


def read_timings(cfg):
    import tomllib
    with open(cfg, "rb") as f:
        doc = tomllib.load(f)
    run = doc.get("run", {})
    out = {}
    for q in FEEDS:
        t = run.get("queue", {}).get(q, {})
        out[q] = (t.get("t00", 0.05), t.get("t0", 0.005), t.get("ts", 2e-8))
    return run, out


STATS = re.compile(r"Stats: .* msgs:(\d+) bytes:(\d+) .*vs:([0-9.]+)")
MOVE = re.compile(r"^(\w+), moving: (\S+)")


def read_passes(spool):
    """Work passes from the live logs: queue, ids moved, msgs, bytes, vs."""
    passes = []
    for q in FEEDS:
        path = os.path.join(spool, "sie", "logs", q + ".log")
        if not os.path.exists(path):
            continue
        moved = []
        with open(path, errors="replace") as f:
            for line in f:
                body = line.split(": ", 1)[1] if ": " in line else line
                m = MOVE.match(body)
                if m:
                    moved.append(m.group(2))
                    continue
                s = STATS.search(body)
                if s:
                    passes.append({"queue": q, "ids": moved, "msgs": int(s.group(1)),
                                   "bytes": int(s.group(2)), "vs": float(s.group(3))})
                    moved = []
    return passes


def fmt(x, width=8, prec=3):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return f"{'-':>{width}}"
    return f"{x:>{width}.{prec}f}"


def cmd_compare(a):
    with open(a.records) as f:
        rec = json.load(f)
    sim = {}
    with open(a.sim) as f:
        for line in f:
            line = line.strip()
            if line:
                o = json.loads(line)
                sim[(o["policy"], o["class"])] = o
    policies = sorted({p for p, _ in sim})
    run, timings = read_timings(a.config)
    policy = run.get("feed_policy", "bytes")
    done = {m: r for m, r in rec.items() if r["done"] is not None and r["inj"] is not None}
    lat = {m: (r["done"] - r["inj"]) / 1e9 for m, r in done.items()}
    rows = [label for label, _ in CLASSES] + ["all"]
    real = {label: [] for label in rows}
    for m, r in done.items():
        real[klass(r["bytes"])].append(lat[m])
        real["all"].append(lat[m])

    thr = a.threshold
    print(f"\nsim vs real, latency in seconds from injection into `in` to the qf's rename into "
          f"its end queue (real) / to the end of the pass that scanned it (sim).")
    print(f"Compared policy: {policy} (the configured feed_policy, the one the real run used). "
          f"PASS when |sim-real|/real <= {thr:.0%}, judged only for classes with >= {a.min_count} "
          f"messages (p99 of n messages is the nearest-rank value, i.e. one of the top "
          f"ceil(n/100) latencies: noisy).")
    head = (f"{'size class':<12} {'n':>4} {'real p50':>8} {'sim p50':>8} {'diff':>7} {'':>5}"
            f" {'real p99':>8} {'sim p99':>8} {'diff':>7} {'':>5}")
    print(head)
    verdicts = []
    for label in rows:
        n = len(real[label])
        s = sim.get((policy, label))
        cells = []
        for key, p in (("p50", 0.5), ("p99", 0.99)):
            rv = pct(real[label], p) if n else float("nan")
            sv = s[key] if s and s["msgs"] else float("nan")
            diff = (sv - rv) / rv if n and rv > 0 and not math.isnan(sv) else float("nan")
            if n >= a.min_count and not math.isnan(diff) and label == "all":
                v = "pass" if abs(diff) <= thr else "fail"  # shown, not part of the verdict
            elif n >= a.min_count and not math.isnan(diff):
                v = "PASS" if abs(diff) <= thr else "FAIL"
                verdicts.append(v == "PASS")
            else:
                v = "n/a"
            d = f"{diff:+7.0%}" if not math.isnan(diff) else f"{'-':>7}"
            cells.append(f"{fmt(rv)} {fmt(sv)} {d} {v:>5}")
        simn = s["msgs"] if s else 0
        note = "" if simn == n else f"  (sim n={simn})"
        print(f"{label:<12} {n:>4} {cells[0]} {cells[1]}{note}")
    for p in policies:
        if p != policy:
            line = " ".join(f"{label}: p50 {sim[(p, label)]['p50']:.3f} p99 {sim[(p, label)]['p99']:.3f}"
                            for label in rows if (p, label) in sim and sim[(p, label)]["msgs"])
            print(f"(sim, policy {p}, for reference: {line})")
    overall = all(verdicts) if verdicts else None
    print(f"VERDICT: {'PASS' if overall else 'FAIL' if overall is False else 'n/a'} "
          f"({sum(verdicts)}/{len(verdicts)} judged class cells within {thr:.0%}; the `all` row, "
          f"lower case, is shown but not judged)")

    # ---------------------------------------------------------- where the time went
    passes = read_passes(a.spool)
    by_id = {}
    for p in passes:
        t00, t0, ts = timings[p["queue"]]
        p["pred"] = t00 + t0 * p["msgs"] + ts * p["bytes"]
        for m in p["ids"]:
            by_id[m] = p
    measured = [p for p in passes if any(m in done for m in p["ids"])]
    for p in measured:
        ends = [done[m]["done"] for m in p["ids"] if m in done]
        p["end"] = max(ends) / 1e9          # last rename of the pass (vs ends just after)
        p["start"] = p["end"] - p["vs"]
    comp = {label: {"feed": [], "queue": [], "inpass": [], "tail": [], "excess": []}
            for label in rows}
    for m, r in done.items():
        p = by_id.get(m)
        if r["fed"] is None or p is None or "start" not in p:
            continue
        c = {"feed": (r["fed"] - r["inj"]) / 1e9,
             "queue": p["start"] - r["fed"] / 1e9,
             "inpass": r["done"] / 1e9 - p["start"],
             "tail": p["end"] - r["done"] / 1e9,
             "excess": p["vs"] - p["pred"]}
        for label in (klass(r["bytes"]), "all"):
            for k, v in c.items():
                comp[label][k].append(v)
    fld = run.get("feed_loop_delay", 1.0)
    ld = run.get("loop_delay", 1.0)
    print(f"\nWhere the real latency went (medians per class, seconds; p90 in brackets):")
    print(f"  feed  = injection -> qf renamed into a feed queue (sim: wait for the feed's "
          f"next pass only, uniform 0..{fld}, mean {fld / 2:.3f}; the feed pass itself takes no time)")
    print(f"  queue = in the feed queue until its work pass started (pass start = its last "
          f"rename - vs)")
    print(f"  pass  = pass start -> this message's rename (sim: the whole predicted pass)")
    print(f"  early = its rename -> the pass's last rename (sim: 0, every message is done at "
          f"the pass end)")
    print(f"  vs-pred = the pass's logged vs - fitted t00+t0*msgs+ts*bytes")
    print(f"{'size class':<12} {'n':>4} " + " ".join(f"{k:>15}" for k in
                                                  ("feed", "queue", "pass", "early", "vs-pred")))
    for label in rows:
        c = comp[label]
        n = len(c["feed"])
        if not n:
            continue
        cells = [f"{median(c[k]):7.3f} [{pct(c[k], 0.9):5.2f}]"
                 for k in ("feed", "queue", "inpass", "tail", "excess")]
        print(f"{label:<12} {n:>4} " + " ".join(cells))
    feeds = [(r["fed"] - r["inj"]) / 1e9 for r in done.values() if r["fed"] is not None]
    if feeds:
        mean_feed = sum(feeds) / len(feeds)
        print(f"  feed wait: mean {mean_feed:.3f} s (sim model {fld / 2:.3f} s), max "
              f"{max(feeds):.3f} s; {sum(1 for x in feeds if x > fld)} of {len(feeds)} over "
              f"feed_loop_delay {fld}")
    if measured:
        ratios = sorted(p["vs"] / p["pred"] for p in measured if p["pred"] > 0)
        over = sum(1 for p in measured if p["vs"] > p["pred"])
        vs_sum = sum(p["vs"] for p in measured)
        pred_sum = sum(p["pred"] for p in measured)
        print(f"  passes of the measured run: {len(measured)}; vs/predicted p10 "
              f"{pct(ratios, 0.1):.2f} p50 {median(ratios):.2f} p90 {pct(ratios, 0.9):.2f} "
              f"max {ratios[-1]:.2f}; {over} ran longer than predicted; sum vs {vs_sum:.1f} s "
              f"vs predicted {pred_sum:.1f} s")
        msgs = sorted(p["msgs"] for p in measured)
        print(f"  messages per pass: p50 {median(msgs)}, p90 {pct(msgs, 0.9)}, max {msgs[-1]}")
        # Queue wait of a message that arrives in an idle queue: up to loop_delay + the
        # idle pass time; check the real idle cadence against loop_delay.
        perq = {}
        for p in measured:
            perq.setdefault(p["queue"], []).append(p)
        gaps = []
        for q, ps in perq.items():
            ps.sort(key=lambda p: p["start"])
            for x, y in zip(ps, ps[1:]):
                gaps.append(y["start"] - x["end"])
        if gaps:
            print(f"  gap between a queue's consecutive busy passes (end -> next start): "
                  f"min {min(gaps):.3f} p50 {median(gaps):.3f} s (loop_delay {ld}; the sim "
                  f"uses exactly loop_delay or a multiple)")
        # Per queue: how many messages, and how long they sat before their pass. At
        # light load the wait is set by the queue's wake phase against the feed's passes
        # (bytes sends a feed pass's first message to the emptiest queue, ties to the
        # lowest number), a phase the simulator fixes and the real loops drift through.
        perq_wait = {}
        for m, r in done.items():
            p = by_id.get(m)
            if r["fed"] is None or p is None or "start" not in p:
                continue
            perq_wait.setdefault(r["fedq"], []).append(p["start"] - r["fed"] / 1e9)
        print("  per feed queue (real): messages, median [p90] wait for the work pass: " +
              "  ".join(f"{q}:{len(w)} {median(w):.2f} [{pct(w, 0.9):.2f}]"
                        for q, w in sorted(perq_wait.items())))
    # Wake phases: when each work loop starts its passes, against the feed's passes.
    fed = sorted(r["fed"] / 1e9 for r in done.values() if r["fed"] is not None)
    if fed and measured:
        feed_passes = [fed[0]]
        for x in fed[1:]:
            if x - feed_passes[-1] > 0.2:      # one feed pass moves its batch within ms
                feed_passes.append(x)
        gaps = [b - a for a, b in zip(feed_passes, feed_passes[1:])]
        origin = feed_passes[0]
        print(f"  feed passes seen: {len(feed_passes)}, period p50 {median(gaps):.4f} s "
              f"(feed_loop_delay {fld}; the sim's feed pass takes no time)")
        cells = []
        for q in FEEDS:
            starts = sorted(p["start"] for p in measured if p["queue"] == q)
            if not starts:
                continue
            first = starts[:10]
            phase = median([(x - origin) % ld for x in first]) if ld > 0 else 0.0
            after = []
            for x in starts:
                before = [f for f in feed_passes if f <= x]
                if before:
                    after.append(x - before[-1])
            cells.append(f"{q} {phase:.2f}/{median(after) if after else float('nan'):.2f}")
        print(f"  work wake phase (first 10 busy passes, mod loop_delay, from the first feed "
              f"pass) / median time after the last feed pass: " + "  ".join(cells))
        print(f"  (the sim wakes work loop k at loop_delay*(k+1/2)/N after the first arrival: "
              + " ".join(f"{ld * (k + 0.5) / len(FEEDS):.2f}" for k in range(len(FEEDS)))
              + ", evenly spread, the feed at 0 and every feed_loop_delay)")
    ends = {}
    for r in done.values():
        ends[r["endq"]] = ends.get(r["endq"], 0) + 1
    print("  end queues: " + " ".join(f"{q}:{n}" for q, n in sorted(ends.items())))
    return 0 if overall else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("inject")
    i.add_argument("--corpus", required=True)
    i.add_argument("--spool", required=True)
    i.add_argument("--first", type=int, required=True)
    i.add_argument("--last", type=int, required=True)
    i.add_argument("--rate", type=float, required=True)
    i.add_argument("--seed", type=int, required=True)
    i.add_argument("--trace", required=True)
    i.add_argument("--records", required=True)
    i.add_argument("--timeout", type=float, default=240.0)
    i.add_argument("--poll", type=float, default=0.025)
    c = sub.add_parser("compare")
    c.add_argument("--records", required=True)
    c.add_argument("--sim", required=True)
    c.add_argument("--config", required=True)
    c.add_argument("--spool", required=True)
    c.add_argument("--threshold", type=float, default=0.25)
    c.add_argument("--min-count", type=int, default=30)
    a = ap.parse_args()
    return cmd_inject(a) if a.cmd == "inject" else cmd_compare(a)


if __name__ == "__main__":
    sys.exit(main())
