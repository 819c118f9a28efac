"""Durable steps (docs/plugins.md, "Durable steps"; handler ABI 1.1) with the example plugin
worker/examples/downgrade (load-user, downgrade-user, send-email; send-email fails its first
2 runs): the steps saved by an attempt that ends in RETRY travel in the retry copy's
hookmq-steps field table, so load-user and downgrade-user run exactly once and send-email three
times, and the event ends processed; each completed step is a lifecycle record of kind `step`
with its name and size, never its content. An event parked in the DLQ after max_attempts keeps
its steps there, and `hookmq-dlx redrive` keeps them (the steps do not run again) unless
--reset-steps; steps.max_bytes refuses a step that does not fit (the handler sees the error, the
worker logs it)."""
import base64
import http.server
import json
import os
import subprocess
import threading
import unittest

import hqtest
import wkfixture


def downgrade_plugin():
    p = os.path.join(hqtest.BUILD, "worker", "examples", "hq_example_downgrade.so")
    if not os.path.exists(p):
        raise FileNotFoundError(p)
    return p


def dlx(*args, timeout=120):
    return subprocess.run([hqtest.binary("hookmq-dlx")] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def runs(path, eid):
    """{step: number of real runs} for event eid from the plugin's log file."""
    out = {}
    for line in wkfixture.read_text(path).splitlines():
        step, _, ev = line.partition(" ")
        if ev == eid:
            out[step] = out.get(step, 0) + 1
    return out


class DowngradeReceiver(http.server.ThreadingHTTPServer):
    """The example against the http handler: a tiny receiver that runs the steps the request's
    Hookmq-Steps header does not carry, and returns the ones it completed in its own Hookmq-Steps
    header (JSON, base64 values: docs/plugins.md). send-email fails its first fail_times runs
    (503)."""

    def __init__(self, port, fail_times=2):
        self.runs = []  # (step, event id) of each real run
        self.fail_times = fail_times
        self.seen_steps = []  # the step names each request carried
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), DowngradeHandler)

    def count(self, eid):
        out = {}
        with self.lock:
            for step, ev in self.runs:
                if ev == eid:
                    out[step] = out.get(step, 0) + 1
        return out


class DowngradeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        srv = self.server
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        eid = self.headers["Hookmq-Event-Id"]
        carried = json.loads(self.headers.get("Hookmq-Steps", "{}"))
        steps = {k: base64.b64decode(v) for k, v in carried.items()}
        new = {}
        with srv.lock:
            srv.seen_steps.append(sorted(steps))
        for step, result in (("load-user", b'{"user":"%s","plan":"pro"}' % eid.encode()),
                             ("downgrade-user", b"free"), ("send-email", b"sent")):
            if step in steps:
                continue
            with srv.lock:
                srv.runs.append((step, eid))
                sends = sum(1 for s, e in srv.runs if s == "send-email" and e == eid)
            if step == "send-email" and sends <= srv.fail_times:
                self.reply(503, new, b"mail server unavailable")
                return
            new[step] = result
        self.reply(200, new, b"ok")

    def reply(self, code, new, body):
        self.send_response(code)
        if new:
            self.send_header("Hookmq-Steps", json.dumps(
                {k: base64.b64encode(v).decode() for k, v in new.items()}))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class WorkerSteps(wkfixture.SetupCase):
    def check_downgrade_ran_once(self, w, log, eid):
        """The downgrade example's event eid, whose send-email step fails twice: once acked,
        each step ran once except send-email (3 runs), over the verdicts retry, retry, ack.
        Returns the event's log lines in time order."""
        hqtest.wait_for(lambda: w.metric("hookmq_worker_verdicts_total", verdict="ack") == 1,
                        30, what="the event processed")
        self.assertEqual(runs(log, eid), {"load-user": 1, "downgrade-user": 1, "send-email": 3})
        ev = sorted((e for e in w.events() if e["event_id"] == eid), key=lambda e: e["ts"])
        self.assertEqual([e["verdict"] for e in ev], ["retry", "retry", "ack"])
        return ev

    def lifecycle_queue(self, s, c):
        """A queue of this test bound to hookmq.lifecycle for the consumer's records."""
        name = "%s.lc" % s.prefix
        hqtest.mgmt("PUT", "/queues/%s/%s" % (s.vhost_path, hqtest.q(name)),
                    {"durable": False, "auto_delete": False})
        hqtest.mgmt("POST", "/bindings/%s/e/hookmq.lifecycle/q/%s" % (s.vhost_path, hqtest.q(name)),
                    {"routing_key": "%s.#" % c.name})
        self.addCleanup(s.delete_queue, name)
        return name

    def lifecycle(self, s, qname, eid):
        recs = []
        for m in s.peek(qname, 1000):
            for line in m["payload"].splitlines():
                r = json.loads(line)
                if r.get("id") == eid:
                    recs.append(r)
        return recs

    def test_retried_steps_run_once(self):
        s = self.setup_("wkst")
        log = os.path.join(s.dir, "steps.log")
        c = s.consumer("c", downgrade_plugin(), options={"log": log}, delays=["200ms"],
                       max_attempts=5)
        s.apply()
        lcq = self.lifecycle_queue(s, c)
        w = s.worker(c)
        try:
            eid = s.publish('{"user":"u1"}', msg_id="%s-1" % s.prefix)
            ev = self.check_downgrade_ran_once(w, log, eid)
            self.assertEqual(w.metric("hookmq_worker_verdicts_total", verdict="retry"), 2)
            # lifecycle: the steps each attempt completed (name and size, never the content)
            recs = hqtest.wait_for(
                lambda: (lambda r: r if len(r) >= 6 else None)(self.lifecycle(s, lcq, eid)), 30,
                what="6 lifecycle records")
            steps = sorted((r["attempt"], r["step"], r["size"]) for r in recs
                           if r["verdict"] == "step")
            self.assertEqual(steps[:2], [(1, "downgrade-user", 4), (1, "load-user", len(
                '{"user":"%s","plan":"pro"}' % eid))])
            self.assertEqual(steps[2:], [(3, "send-email", 4)])
            for r in recs:
                self.assertNotIn("free", json.dumps(r))  # the content never travels
            self.assertEqual(sorted((r["attempt"], r["verdict"]) for r in recs
                                    if r["verdict"] != "step"),
                             [(1, "retry_scheduled"), (2, "retry_scheduled"), (3, "processed")])
            for q in [c.queue, c.dlq] + c.retry_queues():
                s.wait_depth(q, 0)
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)

    def park(self, s, reset):
        log = os.path.join(s.dir, "steps.log")
        c = s.consumer("c", downgrade_plugin(), options={"log": log, "fail_times": 2},
                       delays=["200ms"], max_attempts=2)
        s.apply()
        w = s.worker(c)
        try:
            eid = s.publish('{"user":"u2"}', msg_id="%s-2" % s.prefix)
            s.wait_depth(c.dlq, 1)
            self.assertEqual(runs(log, eid),
                             {"load-user": 1, "downgrade-user": 1, "send-email": 2})
            h = s.peek(c.dlq)[0]["properties"]["headers"]
            self.assertEqual(sorted(h["hookmq-steps"]), ["downgrade-user", "load-user"], h)
            args = ["-c", s.config, "redrive", c.name, "--all"] + (["--reset-steps"] if reset
                                                                   else [])
            r = dlx(*args)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            hqtest.wait_for(lambda: w.metric("hookmq_worker_verdicts_total", verdict="ack") == 1,
                            30, what="the redriven event processed")
            s.wait_depth(c.dlq, 0)
            self.assertEqual(w.stop(), 0)
            return runs(log, eid)
        finally:
            wkfixture.stop_all(w)

    def test_parked_then_redriven_keeps_steps(self):
        got = self.park(self.setup_("wksp"), reset=False)
        self.assertEqual(got, {"load-user": 1, "downgrade-user": 1, "send-email": 3})

    def test_redrive_reset_steps(self):
        got = self.park(self.setup_("wksr"), reset=True)
        self.assertEqual(got, {"load-user": 2, "downgrade-user": 2, "send-email": 3})

    def test_max_bytes(self):
        s = self.setup_("wksm")
        log = os.path.join(s.dir, "steps.log")
        c = s.consumer("c", downgrade_plugin(), options={"log": log}, delays=["200ms"],
                       max_attempts=2, extra="steps = { max_bytes = 20; };")
        s.apply()
        w = s.worker(c)
        try:
            eid = s.publish('{"user":"u3"}', msg_id="%s-3" % s.prefix)
            s.wait_depth(c.dlq, 1)
            m = s.peek(c.dlq)[0]["properties"]["headers"]
            self.assertIn("saving load-user: -2", m["hookmq-last-error"])
            self.assertNotIn("hookmq-steps", m)
            self.assertEqual(runs(log, eid), {"load-user": 2})
            warn = [l for l in w.lines("step not saved: the event's steps would exceed "
                                       "steps.max_bytes")]
            self.assertEqual(len(warn), 2, w.output())
            self.assertEqual(warn[0]["step"], "load-user")
            self.assertEqual(warn[0]["max_bytes"], "20")
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)


    def test_exec_script_with_hookmq_step(self):
        """The same example as an exec script (worker/examples/downgrade/downgrade.sh):
        hookmq-step saves the output of each step in HOOKMQ_STEPS_DIR, the worker collects the
        directory after exit 75 and brings it back on the retry; the private directories are
        removed after each run."""
        s = self.setup_("wkse")
        log = os.path.join(s.dir, "steps.log")
        tmp = os.path.join(s.dir, "tmp")
        os.mkdir(tmp)
        script = os.path.join(hqtest.SRC, "worker", "examples", "downgrade", "downgrade.sh")
        c = s.consumer("c", "exec", options={"argv": [script, log, "2"]}, delays=["200ms"],
                       max_attempts=5)
        s.apply()
        path = os.path.dirname(hqtest.binary("hookmq-step")) + ":" + os.environ["PATH"]
        w = s.worker(c, env={"PATH": path, "TMPDIR": tmp})
        try:
            eid = s.publish('{"user":"u4"}', msg_id="%s-4" % s.prefix)
            ev = self.check_downgrade_ran_once(w, log, eid)
            self.assertIn("mail server unavailable (run 1 of send-email)", ev[0]["error"])
            # every run's steps directory removed (the worker keeps its crash ledger there)
            self.assertEqual([f for f in os.listdir(tmp) if f.startswith("hookmq-steps-")], [])
            self.assertTrue(any(f.endswith(".inflight") for f in os.listdir(tmp)))
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)

    def test_exec_parked_then_redriven(self):
        s = self.setup_("wksx")
        log = os.path.join(s.dir, "steps.log")
        script = os.path.join(hqtest.SRC, "worker", "examples", "downgrade", "downgrade.sh")
        c = s.consumer("c", "exec", options={"argv": [script, log, "2"]}, delays=["200ms"],
                       max_attempts=2)
        s.apply()
        path = os.path.dirname(hqtest.binary("hookmq-step")) + ":" + os.environ["PATH"]
        w = s.worker(c, env={"PATH": path})
        try:
            eid = s.publish('{"user":"u5"}', msg_id="%s-5" % s.prefix)
            s.wait_depth(c.dlq, 1)
            h = s.peek(c.dlq)[0]["properties"]["headers"]
            self.assertEqual(sorted(h["hookmq-steps"]), ["downgrade-user", "load-user"], h)
            r = dlx("-c", s.config, "redrive", c.name, "--all")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            hqtest.wait_for(lambda: w.metric("hookmq_worker_verdicts_total", verdict="ack") == 1,
                            30, what="the redriven event processed")
            self.assertEqual(runs(log, eid),
                             {"load-user": 1, "downgrade-user": 1, "send-email": 3})
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)


    def test_http_receiver_steps(self):
        s = self.setup_("wksh")
        port = hqtest.free_port()
        srv = DowngradeReceiver(port)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        self.addCleanup(srv.server_close)
        self.addCleanup(srv.shutdown)
        c = s.consumer("c", "http", options={"url": "http://127.0.0.1:%d/hook" % port},
                       delays=["200ms"], max_attempts=5)
        s.apply()
        w = s.worker(c)
        try:
            eid = s.publish('{"user":"u6"}', msg_id="%s-6" % s.prefix)
            hqtest.wait_for(lambda: w.metric("hookmq_worker_verdicts_total", verdict="ack") == 1,
                            30, what="the event processed")
            self.assertEqual(srv.count(eid),
                             {"load-user": 1, "downgrade-user": 1, "send-email": 3})
            self.assertEqual(srv.seen_steps, [[], ["downgrade-user", "load-user"],
                                              ["downgrade-user", "load-user"]])
            ev = sorted((e for e in w.events() if e["event_id"] == eid), key=lambda e: e["ts"])
            self.assertEqual([e["verdict"] for e in ev], ["retry", "retry", "ack"])
            self.assertEqual(w.stop(), 0)
        finally:
            wkfixture.stop_all(w)


    def test_hookmq_step_cli(self):
        """hookmq-step on its own: a saved step is printed without running the command; a
        failing command saves nothing and passes its status on; bad use exits 2."""
        import tempfile
        d = tempfile.mkdtemp(prefix="hq-step-")
        exe = hqtest.binary("hookmq-step")
        env = dict(os.environ, HOOKMQ_STEPS_DIR=d)

        def step(*args, e=env):
            return subprocess.run([exe] + list(args), capture_output=True, env=e, timeout=30)

        r = step("load-user", "--", "sh", "-c", "printf partial; exit 3")
        self.assertEqual(r.returncode, 3)
        self.assertEqual(os.listdir(d), [])  # nothing saved, no temporary file left
        r = step("load-user", "--", "sh", "-c", "printf 'u\\0x'")
        self.assertEqual((r.returncode, r.stdout), (0, b"u\0x"))
        self.assertEqual(os.listdir(d), ["load-user"])
        r = step("load-user", "--", "sh", "-c", "echo ran >&2; exit 9")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, b"u\0x", b""))  # not run
        r = step("killed", "--", "sh", "-c", "kill -TERM $$")
        self.assertEqual(r.returncode, 128 + 15)
        self.assertEqual(step("x", "--", "/nonexistent/prog").returncode, 127)
        for bad in ([".hidden", "--", "true"], ["a/b", "--", "true"], ["a", "true"], []):
            self.assertEqual(step(*bad).returncode, 2, bad)
        e = dict(env)
        del e["HOOKMQ_STEPS_DIR"]
        r = step("a", "--", "true", e=e)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"HOOKMQ_STEPS_DIR is not set", r.stderr)
        self.assertEqual(sorted(os.listdir(d)), ["load-user"])


if __name__ == "__main__":
    unittest.main()
