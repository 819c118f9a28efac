"""hookmq-worker basics: the end-to-end ACK path through a real gateway, what the handler gets
(event id, attempt, headers), one log line per event without the body, /metrics, the command
line (--help, --version, -c before or after) and the start-up failures with their exit codes
(unknown consumer 2, plugin missing / without symbol / other ABI major / init failure 2,
queues missing 3 naming them and `hookmq-dlx apply -c FILE`)."""
import json
import os
import subprocess
import time
import unittest

import hqtest
import wkfixture
from gwfixture import Gateway, sources_block


class WorkerBasic(wkfixture.SetupCase):
    """Each test makes its own wkfixture.Setup with self.setup_(); all are cleaned up at
    the end of the class."""

    def test_ack_end_to_end_through_the_gateway(self):
        # the gateway publishes to hookmq.events: this consumer binds to its own source only
        s = self.setup_("wke2e", exchange="hookmq.events")
        rec = os.path.join(s.dir, "rec.txt")
        c = s.consumer("c", wkfixture.plugin("record"), options={"file": rec},
                       bindings=["%s-github.#" % s.prefix])
        s.apply()
        gw = Gateway(sources_block(s.prefix))
        gw.apply()
        gw.start()
        w = s.worker(c)
        try:
            ids = []
            for i in range(3):
                body = json.dumps({"n": i, "secret_marker": "BODY-%d-XYZ" % i}).encode()
                delivery = "%s-d%d" % (s.prefix, i)
                st, _, resp = gw.post("%s-github" % s.prefix, body,
                                      hqtest.sign_github("gh-secret", body, "push", delivery))
                self.assertEqual(st, 202, resp)
                self.assertEqual(json.loads(resp)["id"], delivery)
                ids.append(delivery)
            hqtest.wait_for(lambda: len(wkfixture.read_lines(rec)) >= 3, 20, what="3 records")
            lines = wkfixture.read_lines(rec)
            self.assertEqual(sorted(l[1] for l in lines), sorted(ids))
            self.assertTrue(all(l[0] == c.name and l[2] == "1" for l in lines), lines)
            hqtest.wait_for(lambda: len(w.events()) >= 3, 10, what="3 event log lines")
            for e in w.events():
                self.assertEqual(e["verdict"], "ack")
                self.assertEqual(e["result"], "acked")
                self.assertEqual(e["attempt"], "1")
                self.assertEqual(e["source"], "%s-github" % s.prefix)
                self.assertIn(e["event_id"], ids)
                self.assertIn("latency_ms", e)
            self.assertNotIn("XYZ", w.output())  # never the body
            s.wait_depth(c.queue, 0)
            self.assertEqual(w.metric("hookmq_worker_deliveries_total"), 3)
            self.assertEqual(w.metric("hookmq_worker_verdicts_total", verdict="ack"), 3)
            self.assertEqual(w.metric("hookmq_worker_connected"), 1)
            self.assertEqual(w.metric("hookmq_worker_in_flight"), 0)
            self.assertEqual(w.metric("hookmq_worker_handler_duration_seconds_count"), 3)
            m = w.metrics()
            for name in ("hookmq_worker_dedupe_hits_total", "hookmq_worker_redeliveries_total",
                         "hookmq_worker_redriven_total"):
                self.assertIn('%s{consumer="%s"}' % (name, c.name), m)
            self.assertIn('hookmq_worker_retries_total{consumer="%s",tier="200ms"}' % c.name, m)
            self.assertIn('hookmq_worker_dead_lettered_total{consumer="%s",reason="rejected"}'
                          % c.name, m)
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)
            gw.stop()

    def test_handler_sees_event_fields(self):
        # the log plugin prints what it gets; the exec handler's environment is the contract
        s = self.setup_("wkenv")
        out = os.path.join(s.dir, "env.txt")
        c = s.consumer("c", "exec", options={
            "command": 'env | grep ^HOOKMQ_ | sort >> %s; echo --- >> %s' % (out, out),
            "timeout": "10s"})
        s.apply()
        w = s.worker(c)
        try:
            s.publish('{"a":1}', msg_id="id-env-1", source="shop", etype="orders/create",
                      routing_key="shop.orders.create", headers={"hookmq-attempt": 3})
            hqtest.wait_for(lambda: "---" in wkfixture.read_text(out), 20,
                            what="exec output")
            env = dict(l.split("=", 1) for l in wkfixture.read_text(out).splitlines() if "=" in l)
            self.assertEqual(env["HOOKMQ_EVENT_ID"], "id-env-1")
            self.assertEqual(env["HOOKMQ_SOURCE"], "shop")
            self.assertEqual(env["HOOKMQ_EVENT_TYPE"], "orders/create")
            self.assertEqual(env["HOOKMQ_ROUTING_KEY"], "shop.orders.create")
            self.assertEqual(env["HOOKMQ_ATTEMPT"], "3")
            self.assertEqual(env["HOOKMQ_CONSUMER"], c.name)
            self.assertTrue(abs(int(env["HOOKMQ_RECEIVED_AT"]) - time.time() * 1000) < 60000)
        finally:
            wkfixture.stop_all(w)

    def test_command_line(self):
        exe = wkfixture.worker_binary()
        r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--consumer NAME", r.stdout)
        r = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^hookmq-worker \S+")
        r = subprocess.run([exe, "--bogus"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([exe, "-c", "/nonexistent.conf"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 2)  # --consumer is required
        s = self.setup_("wkcli")
        c = s.consumer("c", wkfixture.plugin("ack"))
        s.write()
        r = subprocess.run([exe, "--consumer", "nosuch", "-c", s.config], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown consumer 'nosuch'", r.stderr)
        self.assertIn(c.name, r.stderr)  # lists the ones there are
        bad = os.path.join(s.dir, "bad.conf")
        hqtest.write_config(bad, 'broker = { heartbeat_s = "x"; };\n')
        r = subprocess.run([exe, "--consumer", c.name, "-c", bad], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertRegex(r.stderr, r"bad\.conf:\d+: ")
        # -c after --consumer works the same as before it: queues missing -> 3
        st, out = s.run_worker(c)
        self.assertEqual(st, 3, out)
        r = subprocess.run([exe, "--consumer", c.name, "-c", s.config], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 3, r.stderr)
        for q in [c.queue, c.dlq] + c.retry_queues():
            self.assertIn(q, r.stderr)
        self.assertIn("hookmq-dlx apply -c %s" % s.config, r.stderr)

    def test_plugin_failures_exit_2(self):
        s = self.setup_("wkplug")
        cases = {
            "badabi": (wkfixture.plugin("badabi"), {}, "ABI major"),
            "nosym": (wkfixture.plugin("nosym"), {}, "no symbol hq_handler_get"),
            "nullget": (wkfixture.plugin("nullget"), {}, "refused"),
            "missing": (os.path.join(s.dir, "nope.so"), {}, "cannot open"),
            "initfail": (wkfixture.plugin("record"), {}, "init failed"),  # no file option
        }
        cs = {k: s.consumer(k, v[0], options=v[1]) for k, v in cases.items()}
        s.write()  # no topology: the plugin is loaded and initialised before the broker check
        for k, (_, _, msg) in cases.items():
            t0 = time.time()
            st, out = s.run_worker(cs[k])
            self.assertEqual(st, 2, "%s: %s" % (k, out))
            self.assertIn(msg, out, k)
            self.assertLess(time.time() - t0, 10)
        self.assertIn("record: option file is required", s.run_worker(cs["initfail"])[1])


if __name__ == "__main__":
    unittest.main(verbosity=2)
