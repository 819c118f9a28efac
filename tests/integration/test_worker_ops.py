"""hookmq-worker in operation: the work queue deleted in the management console while the worker
consumes (the cancel is noticed and logged, `hookmq-dlx apply` re-creates the queue, the worker
re-subscribes and processes new events); connections closed by the broker (reconnect with
backoff across broker.uris, the first of which is dead); the dedupe ledger across a restart (an already
processed id is acked without calling the handler; entries older than the window are
forgotten); automatic redrive (DLQ -> work queue after `after`, at most max_times)."""
import os
import time
import unittest

import hqtest
import wkfixture


class WorkerOps(wkfixture.SetupCase):
    """Each test makes its own wkfixture.Setup with self.setup_(); all are cleaned up at
    the end of the class."""

    def test_queue_deleted_and_reapplied(self):
        s = self.setup_("wkdel")
        rec = os.path.join(s.dir, "rec.txt")
        c = s.consumer("c", wkfixture.plugin("record"), options={"file": rec}, concurrency=2)
        s.apply()
        w = s.worker(c, env={"TMPDIR": s.dir})
        try:
            s.publish("{}", msg_id="%s-before" % s.prefix)
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) == 1, 15, what="first event")
            s.delete_queue(c.queue)  # what the console's "Delete queue" does
            hqtest.wait_for(lambda: len(w.lines("consumer cancelled by the broker (work queue "
                                                "deleted?); re-subscribing once it exists "
                                                "again")) == 2, 10, what="both slots cancelled")
            hqtest.wait_for(lambda: w.metric("hookmq_worker_connected") == 0, 10,
                            what="connected gauge 0")
            time.sleep(1.5)
            self.assertTrue(w.alive())
            hqtest.run_dlx_apply(s.config)
            hqtest.wait_for(lambda: len(w.lines("re-subscribed")) == 2, 15, what="re-subscribed")
            self.assertEqual(w.metric("hookmq_worker_connected"), 2)
            after = [s.publish("{}", msg_id="%s-after%d" % (s.prefix, i)) for i in range(3)]
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) == 4, 15, what="new events")
            self.assertEqual(sorted(l[1] for l in wkfixture.read_lines(rec)[1:]), sorted(after))
            self.assertEqual(len(w.lines("consuming")), 2)  # same connections all along
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)

    def test_reconnect_across_uris(self):
        dead = "amqp://guest:guest@127.0.0.1:%d/%%2f" % hqtest.free_port()  # nobody listens
        s = self.setup_("wkrc", extra_uris=[dead])
        rec = os.path.join(s.dir, "rec.txt")
        c = s.consumer("c", wkfixture.plugin("record"), options={"file": rec}, concurrency=2)
        s.apply()  # apply walks broker.uris too
        w = s.worker(c, env={"TMPDIR": s.dir})
        try:
            s.publish("{}", msg_id="%s-1" % s.prefix)
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) == 1, 15, what="event 1")
            conns = hqtest.wait_for(lambda: (lambda l: l if len(l) == 2 else None)(
                s.connections(c)), 15, what="the management API lists both connections")
            names = [x["name"] for x in conns]
            for n in names:  # what "Force Close" in the console does
                hqtest.mgmt("DELETE", "/connections/" + hqtest.q(n), ok=(200, 204, 404))
            hqtest.wait_for(lambda: len(w.lines("broker connection lost; reconnecting")) == 2,
                            15, what="both slots noticed")
            hqtest.wait_for(lambda: len(w.lines("consuming")) == 4, 20, what="reconnected")
            s.publish("{}", msg_id="%s-2" % s.prefix)
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) == 2, 15, what="event 2")
            self.assertEqual(w.metric("hookmq_worker_connected"), 2)
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)

    def test_dedupe_across_restart(self):
        s = self.setup_("wkdd")
        rec = os.path.join(s.dir, "rec.txt")
        ledger = os.path.join(s.dir, "dedupe", "ledger")
        c = s.consumer("c", wkfixture.plugin("record"), options={"file": rec},
                       bindings=["shop.#", "other.#"], extra='dedupe = { window = "1h"; path = "%s"; };' % ledger)
        short = s.consumer("s", wkfixture.plugin("record"), options={"file": rec + ".s"},
                           bindings=["zz.#"],
                           extra='dedupe = { window = "1s"; path = "%s.s"; };' % ledger)
        s.apply()
        w = s.worker(c)
        try:
            x = s.publish("{}", msg_id="%s-x" % s.prefix, source="shop")
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) == 1, 15, what="x processed")
            self.assertEqual(w.stop(), 0)
            lines = wkfixture.read_lines(ledger)
            self.assertEqual([l[:2] for l in lines], [["shop", x]])
            self.assertTrue(abs(int(lines[0][2]) - time.time() * 1000) < 60000)

            w = s.worker(c)
            s.publish("{}", msg_id=x, source="shop")   # a duplicate (provider retry)
            s.publish("{}", msg_id=x, source="other")  # same id, other source: not a duplicate
            y = s.publish("{}", msg_id="%s-y" % s.prefix, source="shop")
            hqtest.wait_for(lambda: len(w.events()) == 3, 15, what="3 events settled")
            got = wkfixture.read_lines(rec)
            self.assertEqual([l[1] for l in got], [x, x, y])
            dup = [e for e in w.events() if e["verdict"] == "duplicate"]
            self.assertEqual(len(dup), 1)
            self.assertEqual((dup[0]["event_id"], dup[0]["source"], dup[0]["result"]),
                             (x, "shop", "acked"))
            self.assertEqual(w.metric("hookmq_worker_dedupe_hits_total"), 1)
            s.wait_depth(c.queue, 0)
            self.assertEqual(w.stop(), 0)

            # window: an entry older than it is forgotten (and compacted away at start-up)
            w = s.worker(short)
            s.publish("{}", msg_id="%s-z" % s.prefix, source="zz")
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec + ".s")) == 1, 15, what="z")
            s.publish("{}", msg_id="%s-z" % s.prefix, source="zz")
            hqtest.wait_for(lambda: len(w.events()) == 2, 15, what="duplicate of z")
            self.assertEqual(len(wkfixture.read_lines(rec + ".s")), 1)
            self.assertEqual(w.stop(), 0)
            time.sleep(1.2)
            w = s.worker(short)
            self.assertEqual(wkfixture.read_lines(ledger + ".s"), [])
            s.publish("{}", msg_id="%s-z" % s.prefix, source="zz")
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec + ".s")) == 2, 15,
                            what="z processed again after the window")
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)

    def test_automatic_redrive(self):
        s = self.setup_("wkrd")
        rec = os.path.join(s.dir, "rec.txt")
        c = s.consumer("c", wkfixture.plugin("record"), options={"file": rec, "verdict": "reject"},
                       extra='redrive = { after = "1s"; max_times = 2; };')
        s.apply()
        w = s.worker(c, env={"TMPDIR": s.dir})
        try:
            eid = s.publish('{"r":1}', msg_id="%s-r" % s.prefix)
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) == 3, 20,
                            what="the original delivery and 2 redrives")
            time.sleep(2.5)  # max_times reached: it stays in the DLQ now
            self.assertEqual(len(wkfixture.read_lines(rec)), 3)
            self.assertEqual([l[2] for l in wkfixture.read_lines(rec)], ["1", "1", "1"])
            msgs = s.peek(c.dlq)
            self.assertEqual(len(msgs), 1)
            h = msgs[0]["properties"]["headers"]
            self.assertEqual(msgs[0]["properties"]["message_id"], eid)
            self.assertEqual(h["hookmq-redriven"], 2)
            self.assertEqual(h["hookmq-attempts"], 1)
            self.assertEqual(h["hookmq-consumer"], c.name)
            self.assertEqual(w.metric("hookmq_worker_redriven_total"), 2)
            red = w.lines("redriven")
            self.assertEqual([r["redriven"] for r in red], ["1", "2"])
            ev = sorted(w.events(), key=lambda e: e["ts"])
            for prev, r in zip(ev, red):  # a message stays in the DLQ for at least `after`
                self.assertGreaterEqual(r["ts"] - prev["ts"], 0.95)
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)


if __name__ == "__main__":
    unittest.main(verbosity=2)
