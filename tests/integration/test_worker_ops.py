"""hookmq-worker in operation: the work queue deleted in the management console while the worker
consumes (the cancel is noticed and logged, `hookmq-dlx apply` re-creates the queue, the worker
re-subscribes and processes new events); connections closed by the broker (reconnect with
backoff across broker.uris, the first of which is dead; the deliveries read on a connection
the broker then closed are dropped, not handled); the dedupe ledger across a restart (an already
processed id is acked without calling the handler; entries older than the window are
forgotten); automatic redrive (DLQ -> work queue after `after`, at most max_times)."""
import collections
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
            # each slot polls for the queue on a probe connection of its own (after a first
            # second of servicing its consumer): the worker waits for the queue, it does not exit
            def probes():
                names = [x.get("client_properties", {}).get("connection_name", "")
                         for x in hqtest.mgmt("GET", "/connections") or []]
                return len([n for n in names if n.startswith("hookmq-worker %s #" % c.name)
                            and n.endswith("(queue probe)")]) == 2
            hqtest.wait_for(probes, 20, what="both slots polling for the queue")
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

    def test_deliveries_buffered_on_a_closed_connection_are_dropped(self):
        # issue 11 item 19. The broker closes the connection while a handler runs; the
        # deliveries read on that connection (buffered by the keeper, or still on the socket in
        # front of connection.close) cannot be acked any more and come back on the next
        # connection. Handling them as well would handle each event twice: they are dropped,
        # and every event is handled once, except the one whose handler was running.
        s = self.setup_("wkbuf")
        out = os.path.join(s.dir, "handled.txt")
        started = os.path.join(s.dir, "started")
        gate = os.path.join(s.dir, "gate")
        total = 200
        c = s.consumer("c", "exec", options={
            "command": 'case "$HOOKMQ_EVENT_ID" in *-000) touch %s; while [ ! -e %s ]; do '
                       'sleep 0.02; done;; esac; echo "$HOOKMQ_EVENT_ID" >> %s'
                       % (started, gate, out), "timeout": "60s"}, prefetch=total)
        s.apply()
        ids = ["%s-%03d" % (s.prefix, i) for i in range(total)]
        # all queued, in order, before the worker starts: the first one's handler waits while
        # the others are delivered behind it (read ahead, not handled). Not counted with
        # s.depth(): reading them back would reorder the queue.
        for i in ids:
            s.publish("{}", msg_id=i)
        w = s.worker(c, env={"TMPDIR": s.dir})
        try:
            hqtest.wait_for(lambda: os.path.exists(started), 20, interval=0.05,
                            what="the first handler waiting")
            name = hqtest.wait_for(lambda: (lambda l: l[0]["name"] if l else None)(
                s.connections(c)), 20, what="the management API lists the connection")
            hqtest.mgmt("DELETE", "/connections/" + hqtest.q(name), ok=(200, 204, 404))
            # the broker put the deliveries back (its channel is gone): connection.close went
            # out right behind them. Not waiting for the connection to leave the list: the
            # broker waits up to a heartbeat for close-ok, while the keeper reads on.
            hqtest.wait_for(lambda: s.depth(c.queue) > 0, 20, interval=0.05,
                            what="the deliveries back in the queue")
            # the keeper (which services the connection while a handler runs) sees the close
            # first; the slot then reconnects without reading from the dead connection again
            hqtest.wait_for(lambda: w.lines("broker connection lost while the handler runs; "
                                            "the event will be redelivered"),
                            20, what="the keeper noticed the close")
            open(gate, "w").close()
            hqtest.wait_for(lambda: set(l[0] for l in wkfixture.read_lines(out)) == set(ids),
                            60, what="every event handled")
            hqtest.wait_for(lambda: set(e["event_id"] for e in w.events()
                                        if e["result"] == "acked") == set(ids),
                            30, what="every event acked")
            self.assertEqual(w.stop(), 0)  # sends the pending acks
            counts = collections.Counter(l[0] for l in wkfixture.read_lines(out))
            self.assertLessEqual(counts[ids[0]], 2)
            self.assertEqual({i: n for i, n in counts.items() if i != ids[0] and n != 1}, {},
                             w.output())
            dropped = w.lines("broker connection lost; dropping the deliveries buffered on it "
                              "(the broker redelivers them)")
            self.assertEqual(len(dropped), 1, w.output())
            self.assertGreater(int(dropped[0]["dropped"]), 0)
            self.assertEqual(len(w.lines("consuming")), 2)  # one reconnect
            self.assertEqual(s.depth(c.queue), 0)
        finally:
            open(gate, "w").close()  # a failed run must not leave the handler waiting
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
            # the 1 s window has to pass: the condition is the clock itself (the ledger entry
            # was written before the duplicate was seen, so it is older than this instant)
            t_dup = time.time()
            hqtest.wait_for(lambda: time.time() - t_dup > 1.2, 5, interval=0.05,
                            what="the dedupe window over")
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
            # max_times reached: it stays in the DLQ now. The third rejection is done, then two
            # full redrive passes (the second starts after it) read the DLQ and keep it.
            hqtest.wait_for(lambda: w.metric("hookmq_worker_dead_lettered_total",
                                             reason="rejected") == 3, 20, what="third rejection")
            scans = w.metric("hookmq_worker_redrive_scans_total")
            hqtest.wait_for(lambda: w.metric("hookmq_worker_redrive_scans_total") >= scans + 2,
                            20, what="two redrive passes after max_times")
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
