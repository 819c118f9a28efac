"""hookmq-console's replays (docs/console.md, "Replay") against the real broker, a real archive
logger and a real worker: the permission checks of POST /api/replays and its stop (no session
401, viewer 403, bad CSRF token 403, read_only refused); a dry run's count equals what
`hookmq-archive query` counts and publishes nothing; a replay delivers exactly the matched
events, once each, to the target consumer's work queue, with the replay id of hookmq-replay for
the same spec and "replayed" lifecycle records that name the user; a second replay to the same
consumer while one runs is 409; stop stops it (the in-flight events settled), and starting the
same replay again resumes from its checkpoint, so a real worker processes every event exactly
once."""
import json
import subprocess
import time
import unittest

import archive_fixture as af
import hqtest
import wkfixture
from console_fixture import Console

N_INVOICE = 8  # <src>.invoice.paid: bill's and ship's bindings match
N_PUSH = 4     # <src>.push: only ship's


class ConsoleReplay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.s = wkfixture.Setup("csr")
        cls.src = af.prefix("csr")
        cls.bill = cls.s.consumer("bill", "log", bindings=["%s.invoice.#" % cls.src])
        cls.ship = cls.s.consumer("ship", "log", bindings=["%s.#" % cls.src])
        cls.s.apply()
        cls.ar = af.Archive(batch_max=32, batch_ms=20)
        cls.ar.apply()
        cls.ar.start()
        with open(cls.s.config) as f:
            cls.base = f.read()
        cls.cs = Console(base=cls.base, archive_dir=cls.ar.dir).start()
        cls.ops = cls.cs.login("ops")
        cls.viewer = cls.cs.login("ro")
        cls.t0 = af.now_ms() - 60000
        cls.invoices, cls.pushes = [], []
        for i in range(N_INVOICE + N_PUSH):
            eid = "%s-evt-%02d" % (cls.src, i)
            invoice = i < N_INVOICE
            af.publish_event(cls.src, eid, af.now_ms(), b'{"n":%d}' % i,
                             "invoice.paid" if invoice else "push")
            (cls.invoices if invoice else cls.pushes).append(eid)
        cls.ar.wait_count(N_INVOICE + N_PUSH, "--source", cls.src, timeout=90)
        cls.window = {"from": af.rfc3339(cls.t0), "source": cls.src}

    @classmethod
    def tearDownClass(cls):
        out = cls.cs.output()
        st = cls.cs.stop()
        cls.ar.stop()
        cls.s.cleanup()
        assert st == 0, out

    def start(self, session=None, **body):
        req = dict(self.window)
        req.update(body)
        st, _h, b = self.cs.post("/api/replays", session or self.ops, req)
        return st, json.loads(b)

    def wait_state(self, n, states, timeout=60):
        last = {}

        def ended():
            last.update(self.cs.get_json("/api/replays/%d" % n, self.ops))
            return last["state"] in states
        hqtest.wait_for(ended, timeout, what="replay %d to be %s" % (n, "/".join(states)))
        return dict(last)

    def test_permissions(self):
        body = json.dumps(dict(self.window, consumer=self.bill.name, dry_run=True)).encode()
        # no session: 401, for the action and for reading
        st, _h, _b = self.cs.request("POST", "/api/replays", body,
                                     {"Content-Type": "application/json"})
        self.assertEqual(st, 401)
        st, _h, _b = self.cs.request("GET", "/api/replays")
        self.assertEqual(st, 401)
        # a viewer reads, never acts
        st, r = self.start(self.viewer, consumer=self.bill.name, dry_run=True)
        self.assertEqual(st, 403, r)
        self.assertIn("viewer", r["error"])
        self.assertIn("replays", self.cs.get_json("/api/replays", self.viewer))
        st, _h, _b = self.cs.post("/api/replays/1/stop", self.viewer)
        self.assertEqual(st, 403)
        # the CSRF token: missing or wrong
        st, _h, _b = self.cs.post("/api/replays", self.ops, json.loads(body), csrf=False)
        self.assertEqual(st, 403)
        st, _h, _b = self.cs.post("/api/replays", self.ops, json.loads(body), token="0" * 64)
        self.assertEqual(st, 403)
        # actions take POST
        st, _h, _b = self.cs.request("GET", "/api/replays/1/stop", session=self.ops)
        self.assertEqual(st, 405)
        # bad requests get their reason
        st, r = self.start(consumer=self.bill.name, to="-1d")
        self.assertEqual(st, 400, r)
        self.assertIn("before", r["error"])
        st, r = self.start(consumer="nosuch", dry_run=True)
        self.assertEqual(st, 404, r)
        st, _h, b = self.cs.request("POST", "/api/replays", b"{not json",
                                    {"X-CSRF-Token": self.ops.csrf}, session=self.ops)
        self.assertEqual(st, 400, b)
        st, r = self.start(consumer=self.bill.name, grep="x" * 5000, dry_run=True)
        self.assertEqual(st, 400, r)
        self.assertIn("1 to 4096 bytes", r["error"])
        st, _h, _b = self.cs.post("/api/replays", self.ops, {"grep": "x" * 70000})
        self.assertEqual(st, 413)
        st, _h, _b = self.cs.request("GET", "/api/replays/999999", session=self.ops)
        self.assertEqual(st, 404)
        st, _h, _b = self.cs.post("/api/replays/x1/stop", self.ops)
        self.assertEqual(st, 404)
        # read_only: refused to operators too
        ro = Console(base=self.base, archive_dir=self.ar.dir, extra="read_only = true;").start()
        try:
            st, _h, b = ro.post("/api/replays", ro.login("ops"), json.loads(body))
            self.assertEqual(st, 403, b)
            self.assertIn("read-only", json.loads(b)["error"])
        finally:
            self.assertEqual(ro.stop(), 0, ro.output())
        self.assertEqual(self.s.depth(self.bill.queue), 0)

    def test_dry_run_counts_as_the_archive_query(self):
        recs, _err = self.ar.query("--source", self.src, "--from", self.window["from"],
                                   "--type", "invoice.*")
        st, r = self.start(consumer=self.bill.name, type="invoice.*", dry_run=True)
        self.assertEqual(st, 200, r)
        self.assertEqual(r["count"], len(recs))
        self.assertEqual(r["count"], N_INVOICE)
        self.assertEqual([e["id"] for e in r["sample"]], sorted(self.invoices))
        self.assertEqual(r["sample"][0]["type"], "invoice.paid")
        self.assertRegex(r["replay_id"], r"^rpl-[0-9a-f]{16}$")
        # without the type filter: the pushes do not match bill's bindings
        recs, _err = self.ar.query("--source", self.src, "--from", self.window["from"])
        st, r = self.start(consumer=self.bill.name, dry_run=True)
        self.assertEqual(st, 200, r)
        self.assertEqual(len(recs), N_INVOICE + N_PUSH)
        self.assertEqual((r["count"], r["not_matching_bindings"]), (N_INVOICE, N_PUSH))
        # the same as hookmq-replay's dry run, replay id included
        cli = subprocess.run([hqtest.binary("hookmq-replay"), "-c", self.cs.config, "--from",
                              self.window["from"], "--source", self.src, "--to-consumer",
                              self.bill.name, "--dry-run"], capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        self.assertIn("dry run: %d events would be replayed" % N_INVOICE, cli.stdout)
        self.assertIn(r["replay_id"], cli.stdout)
        self.assertIn(r["message"], cli.stdout)  # the same line
        # nothing was published
        self.assertEqual(self.s.depth(self.bill.queue), 0)

    def test_replay_delivers_the_matched_events(self):
        st, r = self.start(consumer=self.bill.name, rate=20)
        self.assertEqual(st, 202, r)
        self.assertEqual((r["state"], r["user"], r["consumer"]), ("running", "ops", self.bill.name))
        r = self.wait_state(r["n"], ("done", "failed", "stopped"))
        self.assertEqual(r["state"], "done", r)
        self.assertEqual((r["matched"], r["confirmed"], r["failed"]), (N_INVOICE, N_INVOICE, 0))
        self.assertIsNotNone(r["ended_at"])
        msgs = self.s.peek(self.bill.queue, 100)
        got = sorted(m["properties"]["message_id"] for m in msgs)
        self.assertEqual(got, sorted(self.invoices))  # exactly the matched ones, once each
        for m in msgs:
            h = m["properties"]["headers"]
            self.assertEqual(h["hookmq-replay-id"], r["replay_id"])
            self.assertEqual(h["hookmq-attempt"], 1)
        # "replayed" lifecycle records name the user
        eid = self.invoices[0]

        def replayed_by_ops():
            ev = self.cs.get_json("/api/events/%s?source=%s" % (eid, self.src), self.ops)
            return [h for h in ev["history"] if h.get("verdict") == "replayed"
                    and h.get("consumer") == self.bill.name and h.get("by") == "ops"]
        hqtest.wait_for(replayed_by_ops, 60, what="a replayed record by ops")
        # it completed: the same again says so (the checkpoint), and sends nothing
        st, r2 = self.start(consumer=self.bill.name)
        self.assertEqual(st, 202, r2)
        r2 = self.wait_state(r2["n"], ("done", "failed", "stopped"))
        self.assertEqual((r2["state"], r2["replay_id"], r2["confirmed"]),
                         ("done", r["replay_id"], 0), r2)
        self.assertTrue(any("already completed" in m for m in r2["messages"]), r2)
        st, dry = self.start(consumer=self.bill.name, dry_run=True)
        self.assertEqual((st, dry["count"]), (200, 0), dry)
        self.assertIn("already completed", dry["message"])
        self.assertEqual(len(self.s.peek(self.bill.queue, 100)), N_INVOICE)
        self.assertIn("replay started", self.cs.output())

    def test_stop_resume_and_one_per_consumer(self):
        w = self.s.worker(self.ship)
        try:
            st, r = self.start(consumer=self.ship.name, rate=2)
            self.assertEqual(st, 202, r)
            n = r["n"]
            # one replay per target consumer at a time
            st, r409 = self.start(consumer=self.ship.name, type="push")
            self.assertEqual(st, 409, r409)
            self.assertIn("replay %d" % n, r409["error"])
            hqtest.wait_for(lambda: self.cs.get_json("/api/replays/%d" % n, self.ops)
                            ["confirmed"] >= 2, 60, what="2 events replayed")
            st, _h, b = self.cs.post("/api/replays/%d/stop" % n, self.ops)
            self.assertEqual(st, 202, b)
            r = self.wait_state(n, ("done", "failed", "stopped"))
            self.assertEqual((r["state"], r["stopped_by"]), ("stopped", "ops"), r)
            self.assertLess(r["confirmed"], N_INVOICE + N_PUSH)
            self.assertEqual(r["in_flight"], 0)
            st, _h, b = self.cs.post("/api/replays/%d/stop" % n, self.ops)
            self.assertEqual(st, 409, b)
            self.assertIn("stop requested", self.cs.output())
            # started again (another rate: not part of the replay's identity): it resumes
            st, r2 = self.start(consumer=self.ship.name)
            self.assertEqual(st, 202, r2)
            r2 = self.wait_state(r2["n"], ("done", "failed", "stopped"))
            self.assertEqual(r2["state"], "done", r2)
            self.assertEqual(r2["replay_id"], r["replay_id"])
            self.assertEqual(r2["earlier"], r["confirmed"])
            self.assertEqual(r2["confirmed"], N_INVOICE + N_PUSH - r["confirmed"])
            self.assertEqual(r2["done"], N_INVOICE + N_PUSH)
            # the worker processed every event exactly once
            want = sorted(self.invoices + self.pushes)
            hqtest.wait_for(lambda: len(w.events()) >= len(want), 60,
                            what="%d events processed" % len(want))
            self.assertEqual(sorted(e["event_id"] for e in w.events()), want)
        finally:
            w.stop()


if __name__ == "__main__":
    unittest.main()
