"""Idle keep-alive connections (issue 11, item 8): CivetWeb serves a connection on one thread
for as long as it stays open, so idle keep-alive clients could hold every HTTP thread (the
default 256) and leave none for a provider. The gateway closes a connection that stays idle
keep_alive_timeout_ms (default 1 s) after a request, counts and logs the moment every thread
is busy, and a provider still gets 202 within its own timeout (10 s, GitHub's) while 1,000
idle keep-alive connections are open. Loopback only, bounded (1,000 sockets; the test needs
about 2,100 file descriptors and raises its soft limit)."""
import json
import random
import resource
import socket
import time
import unittest

import hqtest
from gwfixture import Gateway, SECRETS

P = "hk%d" % random.randint(1000, 9999)
GH = SECRETS["github"]
SOURCES = '  { name = "%s-gh"; scheme = "github"; secrets = [ "%s" ]; }' % (P, GH)
IDLE = 1000
THREADS = 256  # the default of gateway.threads
PROVIDER_TIMEOUT = 10.0


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


class IdleKeepAlive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 2 * IDLE + 200
        if soft < want:
            if hard != resource.RLIM_INFINITY and hard < want:
                raise unittest.SkipTest("needs %d file descriptors, the hard limit is %d"
                                        % (want, hard))
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # the gateway inherits it
        cls.gw = Gateway(SOURCES)
        cls.gw.apply()
        cls.gw.start()

    @classmethod
    def tearDownClass(cls):
        alive = cls.gw.proc.alive()
        rc = cls.gw.stop()
        assert alive, "gateway died:\n" + cls.gw.proc.output()[-3000:]
        assert rc == 0, "gateway exit code %r" % rc

    def test_provider_gets_202_while_1000_idle_keepalive_connections_are_open(self):
        m = self.gw.metrics()
        self.assertEqual(metric(m, "hookmq_gateway_http_threads"), THREADS)
        # 1,000 clients, each sends one complete keep-alive request and then stays silent
        idle = []
        try:
            for _ in range(IDLE):
                s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                idle.append(s)
            # every thread holds one of them (the hostile condition is real), and it is counted
            hqtest.wait_for(lambda: metric(self.gw.metrics(), "hookmq_gateway_http_threads_busy")
                            == THREADS, timeout=30, what="every HTTP thread busy")
            self.assertGreater(metric(self.gw.metrics(),
                                      "hookmq_gateway_http_threads_exhausted_total"), 0)
            # a provider arrives now, behind the queued idle clients
            body = json.dumps({"n": time.time_ns()}).encode()
            t0 = time.monotonic()
            st, _, b = self.gw.post(P + "-gh", body, hqtest.sign_github(GH, body),
                                    timeout=PROVIDER_TIMEOUT)
            took = time.monotonic() - t0
            open_now = sum(1 for s in idle if s.fileno() >= 0)
            print("\n%d idle keep-alive connections, %d threads: the provider got %d after "
                  "%.2f s" % (open_now, THREADS, st, took))
            self.assertEqual(st, 202, b)
            self.assertLess(took, PROVIDER_TIMEOUT)
        finally:
            for s in idle:
                s.close()
        # the connections are given back: no thread stays held
        hqtest.wait_for(lambda: metric(self.gw.metrics(), "hookmq_gateway_http_threads_busy")
                        <= 1, timeout=30, what="threads released")
        hqtest.wait_for(lambda: "every HTTP thread holds a connection" in self.gw.proc.output(),
                        timeout=10, what="the busy-threads warning in the log")


if __name__ == "__main__":
    unittest.main(verbosity=2)
