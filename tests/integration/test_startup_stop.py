"""A program that a SIGTERM stops while it retries an unreachable broker at start-up exits 0: it
stopped as asked (core's hq_exit_code_run, docs/architecture.md). hookmq-archive run and
hookmq-worker; neither needs the test broker: their config names a port nothing listens on."""
import os
import tempfile
import unittest

import archive_fixture as af
import hqtest
import wkfixture


def unreachable_uri():
    return "amqp://guest:guest@127.0.0.1:%d/%%2f" % hqtest.free_port()


class StartupStop(unittest.TestCase):
    def test_archive_stopped_while_retrying_exits_0(self):
        ar = af.Archive(uri=unreachable_uri())
        ar.start(wait=False)
        try:
            hqtest.wait_for(lambda: "broker unreachable at start-up, retrying" in ar.output()
                            or not ar.proc.alive(), 30, what="hookmq-archive retrying")
            self.assertTrue(ar.proc.alive(), ar.output())
            self.assertEqual(ar.stop(), 0, ar.output())
        finally:
            ar.kill9()

    def test_worker_stopped_while_retrying_exits_0(self):
        d = tempfile.mkdtemp(prefix="hq-ss-")
        conf = hqtest.write_config(os.path.join(d, "hookmq.conf"), """
broker = { uris = [ "%s" ]; };
consumers = ( { name = "stopme"; bindings = [ "#" ]; handler = "%s"; } );
log = { format = "text"; level = "info"; };
""" % (unreachable_uri(), wkfixture.plugin("ack")))
        p = hqtest.Proc([wkfixture.worker_binary(), "-c", conf, "--consumer", "stopme"],
                        name="worker", workdir=d)
        try:
            # logged by the start-up check's connect, after the signals are blocked: a SIGTERM
            # from now on is taken by the check's wait between two tries
            hqtest.wait_for(lambda: "broker connect failed" in p.output() or not p.alive(), 30,
                            what="hookmq-worker retrying at start-up")
            self.assertTrue(p.alive(), p.output())
            self.assertEqual(p.stop(), 0, p.output())
        finally:
            if p.alive():
                p.kill9()


if __name__ == "__main__":
    unittest.main(verbosity=2)
