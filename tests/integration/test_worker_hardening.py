"""hookmq-worker hardening (issue "months in production"): SIGTERM during a max_per_second wait
still sends the batched acks of the events already handled (none of them comes back); the
handler sees the event's original routing key on a retry and on a delivery through exchange ""
to hookmq.NAME (redrive, `hookmq-replay --to-consumer`)."""
import os
import signal
import unittest

import hqtest
import wkfixture


class WorkerHardening(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.setups = []

    @classmethod
    def tearDownClass(cls):
        for s in cls.setups:
            s.cleanup()

    def setup_(self, tag, **kw):
        s = wkfixture.Setup(tag, **kw)
        self.setups.append(s)
        return s

    def test_sigterm_with_max_per_second_sends_pending_acks(self):
        s = self.setup_("wkrate")
        rec = os.path.join(s.dir, "rec.txt")
        # prefetch 20: acks go out in batches of 10, so the handled events' acks are pending
        # while the slot waits for the rate limit before the next one
        c = s.consumer("c", wkfixture.plugin("record"), options={"file": rec}, prefetch=20,
                       extra="max_per_second = 4;")
        s.apply()
        total = 12
        ids = ["%s-%02d" % (s.prefix, i) for i in range(total)]
        w = s.worker(c, env={"TMPDIR": s.dir})
        try:
            for i in ids:
                s.publish("{}", msg_id=i)
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) >= 3, 30,
                            interval=0.02, what="three events handled")
            w.signal(signal.SIGTERM)
            self.assertEqual(w.wait(timeout=20), 0, w.output())
            handled = [l[1] for l in wkfixture.read_lines(rec)]
            self.assertGreaterEqual(len(handled), 3)
            self.assertLess(len(handled), 10)  # the stop came before a batch was full
            self.assertEqual(len(set(handled)), len(handled))
            acked = [e["event_id"] for e in w.events() if e["result"] == "acked"]
            self.assertEqual(sorted(acked), sorted(handled))
            # every handled event was acked on the broker: only the others are back
            left = sorted(m["properties"]["message_id"] for m in s.peek(c.queue, 100))
            self.assertEqual(left, sorted(set(ids) - set(handled)))
            self.assertEqual(s.depth(c.dlq), 0)
        finally:
            wkfixture.stop_all(w)

    def test_original_routing_key_on_retry_and_redrive(self):
        s = self.setup_("wkrk")
        out = os.path.join(s.dir, "rk.txt")
        # attempt 1 asks for a retry; every attempt records the key it saw
        c = s.consumer("c", "exec", options={
            "command": 'echo "$HOOKMQ_EVENT_ID $HOOKMQ_ATTEMPT $HOOKMQ_ROUTING_KEY" >> %s; '
                       '[ "$HOOKMQ_ATTEMPT" -ge 2 ] || exit 75' % out,
            "timeout": "10s"}, delays=["200ms"])
        s.apply()
        w = s.worker(c)
        try:
            s.publish("{}", msg_id="rk-1", source="shop", etype="Orders/Create Now",
                      routing_key="shop.orders.create_now")
            hqtest.wait_for(lambda: any(l[:2] == ["rk-1", "2"] for l in wkfixture.read_lines(out)),
                            20, what="the retried attempt")
            # a DLQ redrive and `hookmq-replay --to-consumer` deliver through exchange "" to
            # the work queue
            s.publish("{}", msg_id="rk-2", source="shop", etype="products/update",
                      routing_key=c.queue, exchange="amq.default",
                      headers={"hookmq-attempt": 2})
            hqtest.wait_for(lambda: any(l[0] == "rk-2" for l in wkfixture.read_lines(out)),
                            20, what="the redriven event")
            seen = {(l[0], l[1]): l[2] for l in wkfixture.read_lines(out)}
            self.assertEqual(seen[("rk-1", "1")], "shop.orders.create_now")
            self.assertEqual(seen[("rk-1", "2")], "shop.orders.create_now")
            self.assertEqual(seen[("rk-2", "2")], "shop.products.update")
            hqtest.wait_for(lambda: len([e for e in w.events() if e["result"] == "acked"]) == 2,
                            20, what="both acked")
        finally:
            wkfixture.stop_all(w)


if __name__ == "__main__":
    unittest.main()
