#!/usr/bin/env python3
"""Print where hookmq-gateway's confirmed requests spent their time, from a /metrics scrape:
hookmq_gateway_request_stage_seconds per stage (count, mean, and the upper edge of the bucket
holding the median and the 99th percentile), the publish batch sizes, and the publisher's batch
and confirm frame counters (bench/gateway_stages.sh)."""
import re
import sys


def hist(txt, name, label=None):
    buckets, total, count = [], 0.0, 0.0
    for line in txt.splitlines():
        if not line.startswith(name) or (label and label not in line):
            continue
        m = re.search(r'le="([^"]+)"\} (\S+)$', line)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets.append((le, float(m.group(2))))
        elif line.startswith(name + "_sum"):
            total = float(line.split()[-1])
        elif line.startswith(name + "_count"):
            count = float(line.split()[-1])

    def q(p):
        for le, n in buckets:
            if n >= p * count:
                return le
        return float("nan")
    return count, (total / count if count else 0.0), q(0.5), q(0.99)


def main(path):
    txt = open(path).read()
    print("| stage | requests | mean ms | p50 <= ms | p99 <= ms |")
    print("|---|---:|---:|---:|---:|")
    for st in ("prepare", "handoff", "send", "confirm", "wake"):
        c, mean, p50, p99 = hist(txt, "hookmq_gateway_request_stage_seconds", 'stage="%s"' % st)
        print("| %s | %d | %.2f | %g | %g |" % (st, c, mean * 1e3, p50 * 1e3, p99 * 1e3))
    c, mean, p50, p99 = hist(txt, "hookmq_gateway_publish_batch_size")
    counters = {}
    for line in txt.splitlines():
        for k in ("hookmq_gateway_publish_batches_total", "hookmq_gateway_confirm_frames_total"):
            if line.startswith(k + " "):
                counters[k] = float(line.split()[-1])
    frames = counters.get("hookmq_gateway_confirm_frames_total", 0)
    print("\npublish batch seen by a request: mean %.1f, p50 <= %g, p99 <= %g; publish rounds %d, "
          "confirm frames %d (%.1f confirmed requests per frame)" % (
              mean, p50, p99, counters.get("hookmq_gateway_publish_batches_total", 0), frames,
              c / frames if frames else 0))


if __name__ == "__main__":
    main(sys.argv[1])
