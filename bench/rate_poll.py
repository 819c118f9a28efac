#!/usr/bin/env python3
"""bench/rate_poll.py PORT PATTERN COUNT [TIMEOUT_S]: events/s of a hookmq program, read from
its own /metrics.

Polls http://127.0.0.1:PORT/metrics every 10 ms on one keep-alive connection (no fork per
sample, so the poller costs the measured program's machine almost nothing), sums the samples
whose line matches the regular expression PATTERN, and prints (value_last - value_first) /
(t_last - t_first) between the first sample above zero and the first sample >= COUNT. Exit 1 if
COUNT is not reached within TIMEOUT_S (default 240) seconds; the rate so far is still printed.
"""
import http.client
import re
import sys
import time


def sample(conn, rx):
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode("utf-8", "replace")
    total = 0.0
    for line in text.splitlines():
        if rx.match(line):
            total += float(line.rsplit(None, 1)[-1])
    return total


def main():
    port, rx, count = int(sys.argv[1]), re.compile(sys.argv[2]), float(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 240.0
    end = time.monotonic() + timeout
    conn = None
    t0 = v0 = t1 = v1 = None
    while time.monotonic() < end:
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            v = sample(conn, rx)
        except (OSError, http.client.HTTPException):
            conn = None  # not listening yet, or restarted
            time.sleep(0.05)
            continue
        now = time.monotonic()
        if t0 is None and v > 0:
            t0, v0 = now, v
        if t0 is not None:
            t1, v1 = now, v
        if v >= count:
            break
        time.sleep(0.01)
    rate = (v1 - v0) / (t1 - t0) if t0 is not None and t1 > t0 else 0.0
    print("%.0f" % rate)
    return 0 if v1 is not None and v1 >= count else 1


if __name__ == "__main__":
    sys.exit(main())
