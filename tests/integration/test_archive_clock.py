"""hookmq-archive and a clock step back across an hour boundary, under libfaketime (Debian
package `faketime`; the test is skipped, saying so, when it is missing).

The logger's clock (CLOCK_REALTIME, faked; CLOCK_MONOTONIC left alone) starts 10 s before an
hour boundary H. Its segment of hour H-1 is large (prepared by hand), so that its compression
takes a while. The clock steps to H + 2 s: the next batch closes hour H-1 and its compression
starts. While the compressor writes (its .jsonl.zst.tmp exists), the clock steps back to
H - 5 s and two more events are archived: they must go to a new segment (HH.1.jsonl), not to
the HH.jsonl that the compressor deletes when it is done (records acked, then lost: the bug).
Then the clock goes forward again. Every event is in the archive at the end, the compressions
went through without an error, and the closed hour's names are HH.jsonl.zst and HH.1.jsonl.zst.
Own vhost: other tests' archive traffic does not mix in. Bounded: about a minute."""
import os
import time
import unittest

import archive_fixture as af
import hqtest

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
BIG_RECORDS = 60000
BIG_BODY = 1500


@unittest.skipUnless(os.path.exists(LIBFAKETIME),
                     "libfaketime missing (apt-get install faketime): clock step test skipped")
@unittest.skipIf(os.environ.get("HQ_SANITIZE"),
                 "a sanitizer runtime must come first in the library list, before libfaketime "
                 "(the regular build runs this test, against both brokers)")
class ArchiveClockStep(unittest.TestCase):
    def setUp(self):
        self.p = af.prefix("acl")
        self.vhost = "hq-archive-clock-" + self.p
        self.uri = af.make_vhost(self.vhost)
        self.ar = af.Archive(batch_max=8, batch_ms=10, uri=self.uri)
        self.ar.apply()
        self.clock = os.path.join(self.ar.workdir, "faketime")
        # H: an hour boundary at least 2 minutes ahead of the real clock
        now = af.now_ms()
        self.h = (now // af.HOUR_MS + 1) * af.HOUR_MS
        if self.h - now < 120000:
            self.h += af.HOUR_MS
        self.proc = None

    def tearDown(self):
        if self.proc and self.proc.alive():
            self.proc.kill9()
        af.delete_vhost(self.vhost)

    def set_clock(self, fake_ms):
        """The logger's clock reads fake_ms now (and runs on from there)."""
        tmp = self.clock + ".tmp"
        with open(tmp, "w") as f:
            f.write("%+.3f\n" % ((fake_ms - af.now_ms()) / 1000.0))
        os.replace(tmp, self.clock)

    def events(self):
        return self.ar.metric("hookmq_archive_records_total", kind="event") or 0

    def publish(self, ids, at):
        before = self.events()
        for i, eid in enumerate(ids):
            af.publish_event(self.p, eid, at + i, b'{"id":"%s"}' % eid.encode(),
                             vhost=hqtest.q(self.vhost))
        hqtest.wait_for(lambda: self.events() >= before + len(ids), 30,
                        what="%s archived (written, fsync'd, acked)" % ids)

    def test_step_back_during_compression(self):
        h, ar = self.h, self.ar
        base = af.segment_base(ar.dir, h - af.HOUR_MS)
        os.makedirs(os.path.dirname(base))
        body = b"x" * BIG_BODY
        with open(base + ".jsonl", "w") as f:
            for i in range(BIG_RECORDS):
                f.write(af.record_line(self.p + "big", "big%d" % i, h - 600000 + i, body) + "\n")
        self.set_clock(h - 10000)
        env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": self.clock,
               "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
        self.proc = hqtest.Proc([ar.binary(), "run", "-c", ar.config], env=env, name="archive",
                                workdir=ar.workdir)
        hqtest.wait_for(lambda: "consuming" in self.proc.output() or not self.proc.alive(), 30,
                        what="hookmq-archive consuming")
        self.assertTrue(self.proc.alive(), self.proc.output())

        self.publish(["a0", "a1", "a2"], h - 9000)
        # the hour ends: the next batch closes hour H-1 and its compression begins
        self.set_clock(h + 2000)
        self.publish(["b0"], h + 2000)
        tmp = base + ".jsonl.zst.tmp"
        hqtest.wait_for(lambda: os.path.exists(tmp) or os.path.exists(base + ".jsonl.zst"), 30,
                        interval=0.01, what="the compression of hour H-1 to begin")
        racing = os.path.exists(tmp)
        # the clock steps back into hour H-1 while the compressor works
        self.set_clock(h - 5000)
        self.publish(["c0", "c1"], h - 5000)
        racing = racing and os.path.exists(tmp)
        hqtest.wait_for(lambda: "segment compressed segment=%s " % base in self.proc.output(), 60,
                        what="hour H-1 compressed")
        # forward again: the second segment of hour H-1 is closed and compressed too
        self.set_clock(h + 6000)
        self.publish(["d0"], h + 6000)
        hqtest.wait_for(lambda: "segment compressed segment=%s.1 " % base in self.proc.output(),
                        60, what="hour H-1's second segment (HH.1) compressed: none means c0 and c1 "
                             "went to the HH.jsonl being compressed")
        self.assertEqual(self.proc.stop(), 0, self.proc.output())
        out = self.proc.output()

        recs, _ = ar.query("--source", self.p)
        self.assertEqual(sorted(r["id"] for r in recs),
                         ["a0", "a1", "a2", "b0", "c0", "c1", "d0"], out[-3000:])
        rel = os.path.relpath(base, ar.dir)
        segs = ar.segments()
        for name in (rel + ".jsonl.zst", rel + ".idx", rel + ".1.jsonl.zst", rel + ".1.idx"):
            self.assertIn(name, segs)
        self.assertNotIn(rel + ".jsonl", segs)
        self.assertNotIn("compression failed", out)
        big, _ = ar.query("--source", self.p + "big", "--limit", "1")
        self.assertEqual(len(big), 1)
        print("step back while the compression ran: %s" % ("yes" if racing else
              "no (the compression was faster; the unit test covers the race)"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
