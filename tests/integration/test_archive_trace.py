"""hookmq-archive run --firehose-trace: with tracing on for the vhost, what the broker saw
published is archived as kind "trace" records (never mixed into event queries), next to the
events themselves; without the flag nothing is bound to amq.rabbitmq.trace. Runs in its own
vhost so that tracing never touches the other tests."""
import unittest

import archive_fixture as af
import hqtest


class ArchiveTrace(unittest.TestCase):
    def test_firehose_trace(self):
        p = af.prefix("artr")
        vhost = "hq-archive-trace-" + p
        uri = af.make_vhost(vhost)
        vq = hqtest.q(vhost)
        ar = af.Archive(uri=uri, batch_max=8, batch_ms=10)
        try:
            ar.apply()
            hqtest.mgmt("PUT", "/vhosts/" + vq, {"tracing": True})
            ar.start("--firehose-trace")
            self.assertIn("firehose tracer queue bound", ar.output())
            binds = hqtest.mgmt("GET", "/exchanges/%s/amq.rabbitmq.trace/bindings/source" % vq)
            self.assertEqual([b["routing_key"] for b in binds], ["publish.#"])
            body = b"\x00trace me /\xff"
            af.publish_event(p, "t-1", af.now_ms(), body, vhost=vq)
            hqtest.wait_for(lambda: len(ar.query("--kind", "trace")[0]) >= 1, 30, what="trace")
            recs = ar.wait_count(1, "--source", p)
            self.assertEqual(af.body_bytes(recs[0]), body)
            traces, _ = ar.query("--kind", "trace")
            t = [r for r in traces if r["type"] == "publish.hookmq.events"]
            self.assertTrue(t, traces)
            self.assertEqual(af.body_bytes(t[0]), body)
            self.assertEqual(t[0]["headers"]["exchange_name"], "hookmq.events")
            # trace records stay out of event queries and stats
            self.assertEqual(len(ar.query()[0]), 1)
            self.assertGreaterEqual(ar.metric("hookmq_archive_records_total", kind="trace"), 1)
            self.assertEqual(ar.stop(), 0)
            # the tracer queue was exclusive: gone with the connection (the broker removes it
            # once it has seen the connection close)
            hqtest.wait_for(
                lambda: hqtest.mgmt("GET", "/exchanges/%s/amq.rabbitmq.trace/bindings/source"
                                    % vq) == [] or None, 15, what="the tracer binding gone")
            binds = hqtest.mgmt("GET", "/exchanges/%s/amq.rabbitmq.trace/bindings/source" % vq)
            self.assertEqual(binds, [])
            # without the flag nothing is bound
            ar.start()
            binds = hqtest.mgmt("GET", "/exchanges/%s/amq.rabbitmq.trace/bindings/source" % vq)
            self.assertEqual(binds, [])
            self.assertEqual(ar.stop(), 0)
        finally:
            ar.kill9()
            af.delete_vhost(vhost)


if __name__ == "__main__":
    unittest.main(verbosity=2)
