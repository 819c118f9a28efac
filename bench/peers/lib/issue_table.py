#!/usr/bin/env python3
"""The peer bench's summary (bench/peer_bench.sh): hookmq against Node (and Python).

Reads compare.sh's rows.jsonl. Throughput ratios are taken inside each round (the targets of a
round share its noise), then the median over rounds is shown with the per-round values.
Latencies and CPU per request are medians over rounds. lost/extra are summed over every run.
Exit status 1 when a run failed or anything was lost or extra.
"""
import json
import statistics
import sys
from collections import defaultdict


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    http = defaultdict(dict)  # (label, conns) -> round -> row
    failed = [r for r in rows if r.get("kind") == "failed"]
    for r in rows:
        if r.get("kind") == "http":
            http[(r["label"], r["conns"])][r["round"]] = r
    labels = sorted({k[0] for k in http}, key=lambda x: {"hookmq": 0, "node": 1}.get(x, 2))
    conns = sorted({k[1] for k in http})
    rounds = sorted({r["round"] for r in rows if "round" in r})

    def ratio(a, b, field, c):
        per = []
        for rnd in rounds:
            ra, rb = http[(a, c)].get(rnd), http[(b, c)].get(rnd)
            if ra and rb and rb[field]:
                per.append(ra[field] / rb[field])
        return per

    def m(label, c, field):
        return med([r[field] for r in http[(label, c)].values()])

    out = ["", "peer bench: %d round(s), interleaved; medians over rounds" % len(rounds), ""]
    out.append("| target | conns | req/s | p50 ms | p99 ms | CPU ms/req, target | CPU ms/req, broker | lost | extra | non-2xx | runs |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    bad = bool(failed)
    for label in labels:
        for c in conns:
            rs = list(http[(label, c)].values())
            if not rs:
                continue
            checked = [r for r in rs if r.get("queued") not in (None, "-")]
            lost = sum(int(r["lost"]) for r in checked)
            extra = sum(int(r["extra"]) for r in checked)
            non2xx = sum(r["non2xx"] + r["errors"] for r in rs)
            bad = bad or lost > 0 or extra > 0 or len(checked) < len(rs)
            out.append("| %s | %d | %.0f | %.1f | %.1f | %.3f | %.3f | %d | %d | %d | %d |" % (
                label, c, m(label, c, "rps"), m(label, c, "p50_ms"), m(label, c, "p99_ms"),
                m(label, c, "target_cpu_ms_per_req"), m(label, c, "broker_cpu_ms_per_req"),
                lost, extra, non2xx, len(rs)))
    if "hookmq" in labels:
        for peer in [x for x in labels if x != "hookmq"]:
            out += ["", "hookmq against %s (same run; ratios per round, median first):" % peer, ""]
            out.append("| | " + " | ".join("%d conns" % c for c in conns) + " |")
            out.append("|---|" + "---|" * len(conns))
            cells = []
            for c in conns:
                per = ratio("hookmq", peer, "rps", c)
                cells.append("**%.2fx** (%s)" % (med(per), ", ".join("%.2f" % x for x in per))
                             if per else "-")
            out.append("| hookmq / %s throughput | %s |" % (peer, " | ".join(cells)))
            cells = []
            for c in conns:
                a, b = m("hookmq", c, "p99_ms"), m(peer, c, "p99_ms")
                cells.append("%.0f / %.0f ms" % (a, b) if a is not None and b is not None else "-")
            out.append("| hookmq p99 / %s p99 | %s |" % (peer, " | ".join(cells)))
            for field, what in (("target_cpu_ms_per_req", "gateway"),
                                ("broker_cpu_ms_per_req", "broker")):
                cells = []
                for c in conns:
                    a, b = m("hookmq", c, field), m(peer, c, field)
                    cells.append("hookmq %.3f ms, %s %.3f ms" % (a, peer, b)
                                 if a is not None and b is not None else "-")
                out.append("| CPU per request, %s | %s |" % (what, " | ".join(cells)))
    if failed:
        out.append("\nfailed starts/runs: " + ", ".join(
            "%s (round %s)" % (f.get("label"), f.get("round")) for f in failed))
    idle = [r["busy_pct"] for r in rows if r.get("kind") == "idle"]
    if idle:
        out.append("\nbackground CPU before each round, no target running (%% of all cores): %s"
                   % ", ".join("%.0f" % x for x in idle))
    out.append("lost = 2xx answers without a queued message; extra = queued messages without a 2xx "
               "(summed over all runs): %s" % ("NONZERO or unchecked" if bad else "0 and 0"))
    print("\n".join(out))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
