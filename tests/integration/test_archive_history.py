"""hookmq-archive history ID: the event and its lifecycle timeline from lifecycle records
published (by hand, as workers publish them) to hookmq.lifecycle: an event retried twice then
processed, one dead-lettered then redriven then processed, with records arriving out of order,
a redelivered duplicate, records without headers; several consumers; --source, --format json,
and an unknown id (exit 1)."""
import json
import random
import re
import unittest

import archive_fixture as af
import hqtest


class ArchiveHistory(unittest.TestCase):
    def setUp(self):
        self.p = af.prefix("arh")
        self.ar = af.Archive(batch_max=16, batch_ms=10)
        self.ar.apply()
        self.ar.start()

    def tearDown(self):
        self.ar.stop()

    def wait(self, eid, n):
        hqtest.wait_for(lambda: len(self.ar.query("--id", eid, "--kind", "all")[0]) >= n, 30,
                        what="%d records of %s" % (n, eid))

    def timeline(self, out):
        """The timeline rows: (consumer, attempt, verdict + details)."""
        rows = []
        for line in out.splitlines():
            m = re.match(r"^  (\S+Z)\s+(\S+)\s+(#\d+)?\s*(.*)$", line)
            if m:
                rows.append((m.group(1), m.group(2), m.group(3) or "", m.group(4)))
        return rows

    def test_retried_twice_then_processed(self):
        src, eid = "%s-stripe" % self.p, "evt_%s" % self.p
        t = af.now_ms()
        af.publish_event(src, eid, t, b'{"type":"invoice.paid"}', etype="invoice.paid")
        recs = [("billing", "retry_scheduled", 1, t + 100, "10s", "HTTP 503 from billing"),
                ("billing", "retry_scheduled", 2, t + 10200, "1m", "timeout after 30s"),
                ("billing", "processed", 3, t + 70300, None, None),
                ("audit", "processed", 1, t + 50, None, None)]
        random.shuffle(recs)  # out of order on the wire
        for c, v, a, at, tier, err in recs:
            af.publish_lifecycle(src, eid, c, v, a, at, tier=tier, error=err,
                                 message_id="lc-%s-%s-%d" % (c, v, a))
        # a redelivered copy of one record (same message, same bytes): shown once
        af.publish_lifecycle(src, eid, "audit", "processed", 1, t + 50,
                             message_id="lc-audit-processed-1")
        self.wait(eid, 6)
        rc, out, err = self.ar.run("history", eid)
        self.assertEqual(rc, 0, err)
        self.assertIn("event %s / %s" % (src, eid), out)
        self.assertIn("type: invoice.paid", out)
        self.assertIn("copies in the archive: 1", out)
        rows = self.timeline(out)
        self.assertEqual([(r[1], r[2], r[3]) for r in rows], [
            ("gateway", "", "received (type invoice.paid)"),
            ("audit", "#1", "processed"),
            ("billing", "#1", 'retry_scheduled (tier 10s) error="HTTP 503 from billing"'),
            ("billing", "#2", 'retry_scheduled (tier 1m) error="timeout after 30s"'),
            ("billing", "#3", "processed"),
        ])
        self.assertEqual(rows[0][0], af.rfc3339(t))
        self.assertEqual(rows[-1][0], af.rfc3339(t + 70300))
        # json: the stored records, event first, by time, duplicates once
        rc, out, _ = self.ar.run("history", eid, "--format", "json")
        self.assertEqual(rc, 0)
        lines = [json.loads(l) for l in out.splitlines()]
        self.assertEqual([r["kind"] for r in lines], ["event"] + ["lifecycle"] * 4)
        self.assertEqual(lines[-1]["type"], "processed")

    def test_dead_lettered_then_redriven(self):
        src, eid = "%s-gh" % self.p, "d-%s" % self.p
        t = af.now_ms()
        af.publish_event(src, eid, t, b"{}", etype="push")
        af.publish_lifecycle(src, eid, "deploy", "retry_scheduled", 1, t + 10, tier="200ms",
                             error="exit 75")
        af.publish_lifecycle(src, eid, "deploy", "dead_lettered", 2, t + 300,
                             error="exit 1: boom")
        # records without headers (source and id from the body)
        af.publish_lifecycle(src, eid, "deploy", "redriven", 2, t + 5000, with_headers=False)
        af.publish_lifecycle(src, eid, "deploy", "processed", 3, t + 5100, with_headers=False)
        # another source with the same id: --source picks one
        af.publish_event("%s-other" % self.p, eid, t + 1, b"{}", etype="push")
        self.wait(eid, 6)
        rc, out, _ = self.ar.run("history", eid, "--source", src)
        self.assertEqual(rc, 0)
        rows = self.timeline(out)
        self.assertEqual([(r[1], r[2], r[3]) for r in rows], [
            ("gateway", "", "received (type push)"),
            ("deploy", "#1", 'retry_scheduled (tier 200ms) error="exit 75"'),
            ("deploy", "#2", 'dead_lettered error="exit 1: boom"'),
            ("deploy", "#2", "redriven"),
            ("deploy", "#3", "processed"),
        ])
        self.assertNotIn("%s-other" % self.p, out)
        # without --source: both events, one block each
        rc, out, _ = self.ar.run("history", eid)
        self.assertEqual(rc, 0)
        self.assertIn("event %s / %s" % (src, eid), out)
        self.assertIn("event %s-other / %s" % (self.p, eid), out)

    def test_durable_steps_inside_attempts(self):
        """Step records (docs/plugins.md, "Durable steps") show inside their attempt, before its
        verdict (they share its time), with name and size."""
        src, eid = "%s-billing" % self.p, "s-%s" % self.p
        t = af.now_ms()
        af.publish_event(src, eid, t, b"{}", etype="subscription.cancelled")
        recs = [("retry_scheduled", 1, t + 100, "1s", "mail down", None),
                ("step", 1, t + 100, None, None, ("load-user", 31)),
                ("step", 1, t + 100, None, None, ("downgrade-user", 4)),
                ("retry_scheduled", 2, t + 1200, "1s", "mail down", None),
                ("processed", 3, t + 2300, None, None, None),
                ("step", 3, t + 2300, None, None, ("send-email", 4))]
        for v, a, at, tier, err, step in recs:
            af.publish_lifecycle(src, eid, "billing", v, a, at, tier=tier, error=err,
                                 extra={"step": step[0], "size": step[1]} if step else None)
        self.wait(eid, 7)
        rc, out, err = self.ar.run("history", eid)
        self.assertEqual(rc, 0, err)
        rows = self.timeline(out)
        self.assertEqual([(r[1], r[2], r[3]) for r in rows], [
            ("gateway", "", "received (type subscription.cancelled)"),
            ("billing", "#1", "step load-user (31 bytes)"),
            ("billing", "#1", "step downgrade-user (4 bytes)"),
            ("billing", "#1", 'retry_scheduled (tier 1s) error="mail down"'),
            ("billing", "#2", 'retry_scheduled (tier 1s) error="mail down"'),
            ("billing", "#3", "step send-email (4 bytes)"),
            ("billing", "#3", "processed"),
        ])
        # indented under the attempt's column, so they read as part of it
        self.assertIn("#1        step load-user (31 bytes)", out)

    def test_unknown_id(self):
        rc, out, err = self.ar.run("history", "no-such-%s" % self.p)
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")
        self.assertIn("no record", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
