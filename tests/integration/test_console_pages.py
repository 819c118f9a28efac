"""hookmq-console's events list over closed, indexed segments and an open one: the first
window is sized from the indexes' per-hour counts (closed hours) and grows from a minute inside
the open hour (console/events.c), so these pages must still hold every event exactly once, in
order, whatever the filter, the page size and the position of the cursor. The archive is made
by hq_archive_tool gen (core's writer and compressor) plus a hand-written open segment; no
broker is needed."""
import json
import os
import subprocess
import unittest
import urllib.parse

import archive_fixture as af
import hqtest
from console_fixture import Console

N, HOURS, SOURCES = 2400, 6, 4


class ConsolePages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cs = Console(base='log = { format = "text"; level = "info"; };\n')
        r = subprocess.run([hqtest.binary("hq_archive_tool"), "gen", cls.cs.archive_dir, str(N),
                            "--hours", str(HOURS), "--body-bytes", "64",
                            "--sources", str(SOURCES)], capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr
        cls.gen = json.loads(r.stdout)
        # the open segment of the current hour: a few recent events
        now = af.now_ms()
        base = af.segment_base(cls.cs.archive_dir, now)
        os.makedirs(os.path.dirname(base), exist_ok=True)
        cls.recent = ["recent-%d" % i for i in range(5)]
        with open(base + ".jsonl", "w") as f:
            for i, eid in enumerate(cls.recent):
                f.write(af.record_line("src%d" % (i % 2), eid, now - 5000 + i, b"{}") + "\n")
        cls.cs.start()
        cls.s = cls.cs.login("ro")

    @classmethod
    def tearDownClass(cls):
        out = cls.cs.output()
        assert cls.cs.stop() == 0, out

    def all_pages(self, limit, **q):
        got, cursor = [], None
        for _ in range(N // limit + 10):
            qq = dict(q, limit=limit)
            if cursor:
                qq["cursor"] = cursor
            r = self.cs.get_json("/api/events?" + urllib.parse.urlencode(qq), self.s)
            self.assertLessEqual(len(r["events"]), limit)
            got += [(e["received_at_ms"], e["source"], e["id"]) for e in r["events"]]
            cursor = r["next"]
            if not cursor:
                return got
        self.fail("more pages than events")

    def expected(self, source=None):
        """Every event, newest first: the generator's times (hq_archive_tool gen's rule)."""
        start, per, hour = self.gen["start_ms"], (N + HOURS - 1) // HOURS, 3600000
        ev = []
        for i in range(N):
            h = i * HOURS // N
            at = start + h * hour + (i % per) * (hour // per)
            ev.append((at, "src%d" % (i % SOURCES), "evt-%08d" % i))
        return sorted((e for e in ev if source in (None, e[1])), reverse=True)

    def test_every_event_once_in_order(self):
        got = self.all_pages(500)
        self.assertEqual([g[2] for g in got[:5]], list(reversed(self.recent)))
        self.assertEqual(got[5:], self.expected())

    def test_small_pages_and_a_source(self):
        got = self.all_pages(50, source="src2")
        self.assertEqual(got, self.expected("src2"))

    def test_a_window_of_hours(self):
        start = self.gen["start_ms"]
        frm, to = af.rfc3339(start + 2 * 3600000 + 1234), af.rfc3339(start + 4 * 3600000)
        got = self.all_pages(100, source="src1", **{"from": frm, "to": to})
        lo, hi = start + 2 * 3600000 + 1234, start + 4 * 3600000
        self.assertEqual(got, [e for e in self.expected("src1") if lo <= e[0] < hi])


if __name__ == "__main__":
    unittest.main(verbosity=2)
