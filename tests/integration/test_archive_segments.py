"""hookmq-archive on disk: a torn last line (garbage appended to the open segment, as a crash
mid-write leaves it) is reported and skipped, and the next records stay whole; keep_days
retention deletes whole segments with past dates; a closed-but-uncompressed segment (crash
before compression) and leftovers of an interrupted compression are finished at start-up."""
import json
import os
import signal
import unittest

import archive_fixture as af
import hqtest


class ArchiveSegments(unittest.TestCase):
    def test_torn_last_line(self):
        p = af.prefix("art")
        ar = af.Archive(batch_max=8, batch_ms=10)
        ar.apply()
        ar.start()
        try:
            t = af.now_ms()
            for i in range(5):
                af.publish_event(p, "e%d" % i, t + i, b'{"i":%d}' % i)
            ar.wait_count(5, "--source", p)
            self.assertEqual(ar.stop(), 0)
            # a crash mid-write leaves half a record at the end of the open segment
            seg = [s for s in ar.segments() if s.endswith(".jsonl")]
            self.assertEqual(len(seg), 1, ar.segments())
            path = os.path.join(ar.dir, seg[0])
            with open(path, "ab") as f:
                f.write(b'{"kind":"event","received_at":%d,"source":"%s","id":"torn' % (t, p.encode()))
            recs, err = ar.query("--source", p)
            self.assertEqual(len(recs), 5)
            self.assertIn("torn", err)
            self.assertIn("lines=1", err)
            self.assertIn(seg[0][:-len(".jsonl")], err)
            # restart in the same hour: the torn line is terminated, new records stay whole
            ar.start()
            for i in range(5, 8):
                af.publish_event(p, "e%d" % i, t + i, b'{"i":%d}' % i)
            recs = ar.wait_count(8, "--source", p)
            self.assertEqual(sorted(r["id"] for r in recs), ["e%d" % i for i in range(8)])
            self.assertIn("torn last line", ar.output())
            recs, err = ar.query("--source", p)
            self.assertIn("skipped", err)
            self.assertIn("lines=1", err)
            # --verbose counts it
            rc, _, err = ar.run("query", "--source", p, "--verbose")
            self.assertEqual(rc, 0)
            self.assertIn("skipped=1", err)
            self.assertEqual(ar.stop(), 0)
        finally:
            ar.kill9()

    def test_retention_and_startup_recovery(self):
        p = af.prefix("arr")
        ar = af.Archive(keep_days=1)
        now = af.now_ms()
        old3 = af.segment_base(ar.dir, now - 3 * 24 * af.HOUR_MS)
        old2 = af.segment_base(ar.dir, now - 2 * 24 * af.HOUR_MS)
        edge = af.segment_base(ar.dir, now - 23 * af.HOUR_MS)   # ended less than a day ago
        prev = af.segment_base(ar.dir, now - af.HOUR_MS)        # closed, never compressed
        lines = {}
        for base, ms, tag in ((old3, now - 3 * 24 * af.HOUR_MS, "old3"),
                              (old2, now - 2 * 24 * af.HOUR_MS, "old2"),
                              (edge, now - 23 * af.HOUR_MS, "edge"),
                              (prev, now - af.HOUR_MS, "prev")):
            os.makedirs(os.path.dirname(base), exist_ok=True)
            with open(base + ".jsonl", "w") as f:
                for i in range(3):
                    f.write(af.record_line(p, "%s-%d" % (tag, i), ms + i,
                                           b"\xff\x00" if i == 0 else b'{"k":"/"}') + "\n")
            lines[tag] = base
        # an interrupted compression of prev left temporary files
        with open(prev + ".jsonl.zst.tmp", "wb") as f:
            f.write(b"partial")
        ar.apply()
        ar.start()
        try:
            hqtest.wait_for(lambda: ar.metric("hookmq_archive_segments_deleted_total") == 2 and
                            ar.metric("hookmq_archive_segments_compressed_total") == 2,
                            30, what="retention and compression at start-up")
            for b in (old3, old2):
                for ext in (".jsonl", ".jsonl.zst", ".idx"):
                    self.assertFalse(os.path.exists(b + ext), b + ext)
            for b in (edge, prev):
                self.assertFalse(os.path.exists(b + ".jsonl"), b)
                self.assertTrue(os.path.exists(b + ".jsonl.zst"), b)
                self.assertTrue(os.path.exists(b + ".idx"), b)
            self.assertFalse(os.path.exists(prev + ".jsonl.zst.tmp"))
            # the day directories of the deleted segments are gone
            self.assertFalse(os.path.exists(os.path.dirname(old3)))
            with open(prev + ".idx", "rb") as f:
                head = json.loads(f.readline())
            self.assertEqual(head["records"], 3)
            self.assertEqual(head["min_received_at"], now - af.HOUR_MS)
            recs, _ = ar.query("--source", p)
            self.assertEqual(sorted(r["id"] for r in recs),
                             sorted(["edge-0", "edge-1", "edge-2", "prev-0", "prev-1", "prev-2"]))
            self.assertEqual(af.body_bytes([r for r in recs if r["id"] == "prev-0"][0]),
                             b"\xff\x00")
            self.assertIn("retention: segment deleted", ar.output())
            self.assertIn("segment compressed", ar.output())
            # an id lookup in a compressed segment reads one segment
            rc, out, err = ar.run("query", "--id", "prev-1", "--verbose")
            self.assertEqual(rc, 0)
            self.assertEqual(json.loads(out)["id"], "prev-1")
            self.assertIn("segments_opened=1", err)
            # stats from the indexes
            rc, out, _ = ar.run("stats", "--format", "json")
            self.assertEqual(rc, 0)
            rows = [json.loads(l) for l in out.splitlines() if p in l]
            self.assertEqual(sum(r["events"] for r in rows), 6)
            self.assertEqual(ar.stop(), 0)
        finally:
            ar.kill9()

    def test_reconnect_and_sighup(self):
        p = af.prefix("arc")
        ar = af.Archive(batch_max=8, batch_ms=10)
        ar.apply()
        ar.start()
        try:
            af.publish_event(p, "before", af.now_ms(), b"1")
            ar.wait_count(1, "--source", p)
            # the broker closes the logger's connection: it reconnects and goes on
            def mine():
                return [c for c in hqtest.mgmt("GET", "/connections")
                        if c.get("client_properties", {}).get("connection_name") ==
                        "hookmq-archive"]
            # the management API lists a new connection after a few seconds
            conns = hqtest.wait_for(mine, 30, interval=0.5, what="the logger's connection")
            self.assertEqual(len(conns), 1, conns)
            hqtest.mgmt("DELETE", "/connections/" + hqtest.q(conns[0]["name"]),
                        ok=(200, 204, 404))
            # "consuming queue=" is the info line of a (re)subscription; the warning about the
            # closed channel says "consuming" too, and must not count as the reconnect
            hqtest.wait_for(lambda: ar.output().count("consuming queue=") >= 2, 30,
                            what="reconnect")
            self.assertIn("broker connection lost", ar.output())
            af.publish_event(p, "after", af.now_ms(), b"2")
            recs = ar.wait_count(2, "--source", p)
            self.assertEqual(sorted(r["id"] for r in recs), ["after", "before"])
            self.assertEqual(ar.metric("hookmq_archive_connected"), 1)
            # SIGHUP reloads the log level: debug lines appear
            with open(ar.config) as f:
                text = f.read()
            with open(ar.config, "w") as f:
                f.write(text.replace('level = "info"', 'level = "debug"'))
            ar.proc.signal(signal.SIGHUP)
            hqtest.wait_for(lambda: "config reloaded" in ar.output(), 10, what="reload")
            af.publish_event(p, "debug", af.now_ms(), b"3")
            hqtest.wait_for(lambda: "batch committed" in ar.output(), 10, what="debug log")
            self.assertEqual(ar.stop(), 0)
        finally:
            ar.kill9()

    def test_second_logger_refused(self):
        ar = af.Archive()
        ar.apply()
        ar.start()
        try:
            rc, _, err = ar.run("run", timeout=30)
            self.assertEqual(rc, 1)
            self.assertIn("locked", err)
            self.assertEqual(ar.stop(), 0)
        finally:
            ar.kill9()


if __name__ == "__main__":
    unittest.main(verbosity=2)
