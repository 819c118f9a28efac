"""The lifecycle emitter (core/lifecycle.c, driven by bench's hq_archive_tool emit) against the
real broker: every record is published to hookmq.lifecycle with routing key
<consumer>.<verdict> and its headers (records queued back to back share a message, one per
line), archived by hookmq-archive as kind "lifecycle", one record each, and shows
in `history`; with the broker unreachable, emitting never blocks and every record is counted
as dropped."""
import json
import subprocess
import time
import unittest

import archive_fixture as af
import hqtest


class ArchiveLifecycle(unittest.TestCase):
    def tool(self, *args, timeout=60):
        r = subprocess.run([hqtest.binary("hq_archive_tool")] + list(args), capture_output=True,
                           text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr

    def test_emitted_records_are_archived(self):
        p = af.prefix("arl")
        ar = af.Archive(batch_max=32, batch_ms=10)
        ar.apply()
        ar.start()
        try:
            n = 600  # more than two full batches (up to 256 records per message)
            rc, out, err = self.tool("emit", "-c", ar.config, str(n), "--consumer", "%s-c" % p,
                                     "--source", "%s-s" % p, "--id", "ev-1", "--verdict",
                                     "retry_scheduled")
            self.assertEqual(rc, 0, err)
            st = json.loads(out)
            self.assertEqual((st["published"], st["dropped"]), (n, 0), st)
            recs = ar.wait_count(n, "--kind", "lifecycle", "--source", "%s-s" % p)
            self.assertEqual(len(recs), n)
            r = recs[0]
            self.assertEqual(r["kind"], "lifecycle")
            self.assertEqual(r["id"], "ev-1")
            self.assertEqual(r["type"], "retry_scheduled")
            self.assertEqual(r["routing_key"], "%s-c.retry_scheduled" % p)
            self.assertEqual(r["headers"]["hookmq-consumer"], "%s-c" % p)
            self.assertEqual(r["headers"]["hookmq-verdict"], "retry_scheduled")
            self.assertEqual(r["properties"]["content_type"], "application/json")
            body = json.loads(af.body_bytes(r))
            self.assertEqual(body["consumer"], "%s-c" % p)
            self.assertEqual(body["verdict"], "retry_scheduled")
            self.assertEqual(r["received_at"], body["at"])
            self.assertEqual(sorted(json.loads(af.body_bytes(x))["attempt"] for x in recs),
                             list(range(1, n + 1)))
            # emitted back to back, they travelled in batches (hq_lc_batch); each came out as
            # a record of its own with an id of its own
            mids = [x["properties"]["message_id"] for x in recs]
            self.assertEqual(len(set(mids)), n, mids)
            batched = [x for x in recs if x["headers"].get("hookmq-records", 1) > 1]
            self.assertTrue(batched, "no record came in a batch")
            # emitted in well under the sender's 5 ms linger: a batch larger than the old cap
            # of 64 went through the logger's split whole
            sizes = [x["headers"]["hookmq-records"] for x in batched]
            self.assertGreater(max(sizes), 64, sorted(set(sizes)))
            self.assertLessEqual(max(sizes), 256, sorted(set(sizes)))
            for x in batched:
                self.assertRegex(x["properties"]["message_id"], r"^[0-9a-f-]{36}\.[0-9]+$")
                self.assertNotIn("\n", af.body_bytes(x).decode())
            rc, out, _ = ar.run("history", "ev-1", "--source", "%s-s" % p)
            self.assertEqual(rc, 0)
            self.assertEqual(out.count("retry_scheduled"), n)
            self.assertGreaterEqual(ar.metric("hookmq_archive_records_total", kind="lifecycle"), n)
            self.assertEqual(ar.stop(), 0)
        finally:
            ar.kill9()

    def test_broker_down_drops(self):
        ar = af.Archive(uri="amqp://guest:guest@127.0.0.1:1/%2f")
        t0 = time.time()
        rc, out, _ = self.tool("emit", "-c", ar.config, "20")
        self.assertEqual(rc, 1)
        st = json.loads(out)
        self.assertEqual(st["published"], 0)
        self.assertLess(time.time() - t0, 30)


if __name__ == "__main__":
    unittest.main(verbosity=2)
