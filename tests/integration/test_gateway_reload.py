"""SIGHUP rotates secrets without dropping requests; SIGTERM finishes in-flight requests."""
import json
import random
import signal
import threading
import time
import unittest

import hqtest
from gwfixture import Gateway

P = "rl%d" % random.randint(1000, 9999)
QUEUE = "test.reload.%s" % P
OLD, NEW = "old-secret-1", "new-secret-2"


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def sources(*secrets):
    return '  { name = "%s"; scheme = "github"; secrets = [ %s ]; }' % (
        P, ", ".join('"%s"' % s for s in secrets))


class Reload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        hqtest.ensure_topology()
        hqtest.delete_queue(QUEUE)
        hqtest.declare_queue(QUEUE, ["%s.#" % P])

    @classmethod
    def tearDownClass(cls):
        hqtest.delete_queue(QUEUE)

    def rewrite(self, gw, *secrets):
        text = open(gw.config).read()
        start = text.index("sources = (")
        end = text.index(");", start)
        hqtest.write_config(gw.config, text[:start] + "sources = (\n" + sources(*secrets) + "\n" + text[end:])

    def post(self, gw, secret, tag):
        body = json.dumps({"tag": tag, "n": time.time_ns()}).encode()
        return gw.post(P, body, hqtest.sign_github(secret, body, "push", "%s-%s" % (P, tag)))[0]

    def test_sighup_rotation_with_requests_in_flight(self):
        gw = Gateway(sources(OLD))
        gw.apply()
        gw.start()
        try:
            results, errors = [], []
            stop = threading.Event()

            def hammer(k):
                i = 0
                while not stop.is_set() and i < 2000:
                    i += 1
                    try:
                        results.append(self.post(gw, OLD, "h%d-%d" % (k, i)))
                    except OSError as e:
                        errors.append(str(e))

            ts = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
            for t in ts:
                t.start()
            # the load is on: every hammer thread has had answers
            hqtest.wait_for(lambda: len(results) + len(errors) >= 8, 30, what="load started")
            # step 1 of a rotation: both secrets valid; reload several times under load, each
            # reload done (its log line) before the next signal
            self.rewrite(gw, NEW, OLD)
            done = gw.proc.output().count("config reloaded")
            for i in range(5):
                gw.proc.signal(signal.SIGHUP)
                hqtest.wait_for(lambda: gw.proc.output().count("config reloaded") >= done + i + 1,
                                20, what="reload %d logged" % (i + 1))
            # requests keep being answered after the last reload
            after = len(results) + len(errors)
            hqtest.wait_for(lambda: len(results) + len(errors) >= after + 8, 30,
                            what="requests after the last reload")
            stop.set()
            for t in ts:
                t.join(timeout=60)
            self.assertEqual(errors, [])
            self.assertGreater(len(results), 20)
            self.assertEqual(set(results), {202}, "no request may fail while both secrets are valid")
            self.assertEqual(self.post(gw, NEW, "new-1"), 202)
            # step 2: the old secret is retired
            self.rewrite(gw, NEW)
            gw.proc.signal(signal.SIGHUP)
            hqtest.wait_for(lambda: self.post(gw, OLD, "old-%d" % time.time_ns()) == 401, 10,
                            what="old secret refused after reload")
            self.assertEqual(self.post(gw, NEW, "new-2"), 202)
            # a broken config is refused and the running one kept
            hqtest.write_config(gw.config, "this is not a config")
            gw.proc.signal(signal.SIGHUP)
            hqtest.wait_for(lambda: "reload failed" in gw.proc.output(), 20,
                            what="the broken config refused")
            self.assertTrue(gw.proc.alive())
            self.assertEqual(self.post(gw, NEW, "new-3"), 202)
            self.assertIn("reload failed", gw.proc.output())
        finally:
            self.assertEqual(gw.stop(), 0)

    def test_sigterm_finishes_in_flight(self):
        gw = Gateway(sources(OLD))
        gw.apply()
        gw.start()
        # a request whose body is still arriving when SIGTERM comes is still answered
        import socket
        body = json.dumps({"tag": "slow"}).encode()
        h = hqtest.sign_github(OLD, body, "push", "%s-slow" % P)
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=20)
        head = "POST /webhooks/%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n" % (P, len(body))
        head += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
        s.sendall(head.encode() + body[:5])
        # an HTTP thread holds the connection (its headers are already in the socket)
        hqtest.wait_for(lambda: (metric(gw.metrics(), "hookmq_gateway_http_threads_busy")
                                 or 0) >= 1,
                        20, what="the slow request taken by an HTTP thread")
        gw.proc.signal(signal.SIGTERM)
        hqtest.wait_for(lambda: "stopping: finishing in-flight requests" in gw.proc.output(), 20,
                        what="SIGTERM taken")
        # (the log line comes just before the stopping flag is set)
        hqtest.wait_for(lambda: hqtest.http_request(gw.port, "GET", "/readyz")[0] == 503, 10,
                        what="readyz 503 while draining")
        # draining: not ready any more (a load balancer takes it out), new webhooks get 503
        self.assertEqual(hqtest.http_request(gw.port, "GET", "/readyz")[0], 503)
        nb = json.dumps({"tag": "late"}).encode()
        st, hh, _ = gw.post(P, nb, hqtest.sign_github(OLD, nb, "push", "%s-late" % P))
        self.assertEqual(st, 503)
        self.assertIn("retry-after", hh)
        s.sendall(body[5:])
        resp = s.recv(4096)
        s.close()
        self.assertIn(b" 202 ", resp.split(b"\r\n")[0])
        self.assertEqual(gw.proc.p.wait(timeout=30), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
