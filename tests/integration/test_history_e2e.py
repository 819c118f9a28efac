"""Event history end to end: real workers publish lifecycle records for every outcome, the
archive logger archives them next to the events, and `hookmq-archive history ID` shows the
timeline: an event retried twice then processed; one dead-lettered, redriven with
`hookmq-dlx redrive`, and dead-lettered again."""
import os
import re
import subprocess
import time
import unittest

import hqtest
import wkfixture as wk


class HistoryEndToEnd(unittest.TestCase):
    def setUp(self):
        self.setup = wk.Setup("hist")
        self.record = os.path.join(self.setup.dir, "record.txt")
        self.ok = self.setup.consumer("ok", wk.plugin("record"), bindings=["s1.#"],
                                      options={"file": self.record, "fail_until": 3},
                                      delays=("200ms",), max_attempts=5)
        self.bad = self.setup.consumer("bad", wk.plugin("reject"), bindings=["s2.#"])
        self.setup.apply()
        self.adir = os.path.join(self.setup.dir, "archive")
        with open(self.setup.config, "a") as f:
            f.write('archive = { dir = "%s"; batch_max = 16; batch_ms = 10; };\n' % self.adir)
        self.archive = hqtest.Proc([hqtest.binary("hookmq-archive"), "run", "-c", self.setup.config],
                                   name="archive", workdir=self.setup.dir)
        hqtest.wait_for(lambda: "consuming" in self.archive.output(), 30, what="archive logger")
        self.workers = [self.setup.worker(self.ok), self.setup.worker(self.bad)]

    def tearDown(self):
        for w in self.workers:
            w.stop()
        self.archive.stop()
        self.setup.cleanup()

    def history(self, eid, want):
        """Poll `history` until every string in want shows; return the output."""
        last = [""]

        def ok():
            r = subprocess.run([hqtest.binary("hookmq-archive"), "history", eid, "-c",
                                self.setup.config], capture_output=True, text=True, timeout=60)
            last[0] = r.stdout + r.stderr
            return r.returncode == 0 and all(w in r.stdout for w in want)
        hqtest.wait_for(ok, 40, interval=0.5, what="history of %s showing %s" % (eid, want))
        return last[0]

    def test_retried_twice_then_processed(self):
        eid = self.setup.publish(b'{"n":1}', source="s1", etype="order.paid")
        out = self.history(eid, ["processed", "retry_scheduled"])
        rows = [l for l in out.splitlines() if self.ok.name in l]
        verdicts = [re.search(r"(retry_scheduled|processed|dead_lettered)", l).group(1)
                    for l in rows if re.search(r"(retry_scheduled|processed|dead_lettered)", l)]
        self.assertEqual(verdicts, ["retry_scheduled", "retry_scheduled", "processed"], out)
        self.assertIn("#1", rows[0])
        self.assertIn("#3", rows[-1])
        self.assertIn("tier 200ms", rows[0])
        self.assertIn("received", out)

    def test_dead_lettered_then_redriven(self):
        eid = self.setup.publish(b'{"n":2}', source="s2", etype="user.created")
        self.history(eid, ["dead_lettered"])
        r = subprocess.run([hqtest.binary("hookmq-dlx"), "redrive", self.bad.name, "--id", eid,
                            "-c", self.setup.config], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = self.history(eid, ["redriven"])
        # rejected again after the redrive: dead_lettered, redriven, dead_lettered
        hqtest.wait_for(lambda: self.history(eid, ["redriven"]).count("dead_lettered") >= 2, 30,
                        what="second dead-lettering")
        out = self.history(eid, ["redriven"])
        order = re.findall(r"(dead_lettered|redriven)", out)
        self.assertEqual(order[:3], ["dead_lettered", "redriven", "dead_lettered"], out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
