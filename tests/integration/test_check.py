"""--check on every program (docs/interface.md: every program has --check to validate a config and
exit; 0 ok, 2 usage or configuration error with `file:line: message`).

For hookmq-gateway, -worker, -archive, -replay, -dlx and -send: the example config and a
generated one are valid (exit 0, one `PATH: ok (...)` line on stdout); a syntax error and a
semantic error (unknown key, out-of-range value) exit 2 naming `file:line`. The worker with
--consumer also loads the consumer's handler as at start-up, without init: an unknown consumer,
a plugin with a bad ABI, one without the entry symbol and a missing .so exit 2; the ack test
plugin and a built-in exit 0. The broker URI of the generated config points at a closed port:
--check must connect to nothing. Needs no broker; bounded (a few seconds)."""
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

import hqtest
from wkfixture import plugin

EXAMPLE = os.path.join(hqtest.SRC, "conf", "hookmq.conf.example")
PROGRAMS = ("hookmq-gateway", "hookmq-worker", "hookmq-archive", "hookmq-replay", "hookmq-dlx",
            "hookmq-send")


def closed_port():
    """A loopback port nothing listens on (bound, never listened, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Check(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="hq-check-")
        cls.adir = os.path.join(cls.dir, "archive")
        cls.good = hqtest.write_config(os.path.join(cls.dir, "good.conf"), """
broker = { uris = [ "amqp://guest:guest@127.0.0.1:%d/%%2f" ]; };
gateway = { listen = "127.0.0.1:%d"; };
sources = (
  { name = "gh"; scheme = "github"; secrets = [ "check-secret" ]; }
);
consumers = (
  { name = "ack"; bindings = [ "gh.#" ]; handler = "%s"; },
  { name = "badabi"; bindings = [ "gh.#" ]; handler = "%s"; },
  { name = "nosym"; bindings = [ "gh.#" ]; handler = "%s"; },
  { name = "missing"; bindings = [ "gh.#" ]; handler = "%s"; },
  { name = "builtin"; bindings = [ "gh.#" ]; handler = "log"; }
);
archive = { dir = "%s"; keep_days = 7; };
""" % (closed_port(), hqtest.free_port(), plugin("ack"), plugin("badabi"), plugin("nosym"),
       os.path.join(cls.dir, "no-such-plugin.so"), cls.adir))
        # a syntax error (trailing comma) on line 3
        cls.syntax = hqtest.write_config(os.path.join(cls.dir, "syntax.conf"),
                                         "# syntax error below\n"
                                         "broker = { exchange = \"hookmq.events\"; };\n"
                                         "sources = ( { name = \"gh\"; scheme = \"github\"; "
                                         "secrets = [ \"a\", ]; } );\n")
        # semantic errors: an unknown key on line 4, a value out of range on line 3
        cls.unknown = hqtest.write_config(os.path.join(cls.dir, "unknown.conf"),
                                          "broker = { exchange = \"hookmq.events\"; };\n"
                                          "consumers = (\n"
                                          "  { name = \"c\"; bindings = [ \"#\" ]; handler = \"log\";\n"
                                          "    retry = { delay = [ \"1s\" ]; }; }\n"
                                          ");\n")
        cls.range = hqtest.write_config(os.path.join(cls.dir, "range.conf"),
                                        "broker = { exchange = \"hookmq.events\"; };\n"
                                        "gateway = { listen = \"127.0.0.1:8080\";\n"
                                        "  max_in_flight = -5; };\n")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_prog(self, prog, *args, env=None):
        e = dict(os.environ)
        e.pop("HOOKMQ_CONFIG", None)
        e.update(env or {})
        return subprocess.run([hqtest.binary(prog)] + list(args), capture_output=True, text=True,
                              timeout=30, env=e, cwd=self.dir)

    def assert_ok(self, r, path, what=""):
        msg = "%s: exit %d\nstdout: %s\nstderr: %s" % (what, r.returncode, r.stdout, r.stderr)
        self.assertEqual(r.returncode, 0, msg)
        self.assertTrue(r.stdout.startswith(path + ": ok ("), msg)
        self.assertEqual(len(r.stdout.splitlines()), 1, msg)

    def assert_fails(self, r, needle, what=""):
        msg = "%s: exit %d\nstdout: %s\nstderr: %s" % (what, r.returncode, r.stdout, r.stderr)
        self.assertEqual(r.returncode, 2, msg)
        self.assertIn(needle, r.stderr, msg)
        self.assertNotIn(": ok (", r.stdout, msg)

    # ---- every program --------------------------------------------------------------------

    def test_valid_configs(self):
        for prog in PROGRAMS:
            for path in (EXAMPLE, self.good):
                with self.subTest(prog=prog, config=path):
                    r = self.run_prog(prog, "--check", "-c", path)
                    self.assert_ok(r, path, prog)
                    r = self.run_prog(prog, "-c", path, "--check")  # -c after as well
                    self.assert_ok(r, path, prog + " (-c first)")

    def test_config_errors_name_file_and_line(self):
        cases = ((self.syntax, 3, "syntax error"), (self.unknown, 4, "unknown key"),
                 (self.range, 3, "max_in_flight"))
        for prog in PROGRAMS:
            for path, line, text in cases:
                with self.subTest(prog=prog, config=os.path.basename(path)):
                    r = self.run_prog(prog, "--check", "-c", path)
                    self.assert_fails(r, "%s:%d: " % (path, line), prog)
                    self.assertIn(text, r.stderr)

    def test_missing_file(self):
        path = os.path.join(self.dir, "absent.conf")
        for prog in PROGRAMS:
            with self.subTest(prog=prog):
                self.assert_fails(self.run_prog(prog, "--check", "-c", path), path + ":0: ", prog)

    def test_config_from_environment(self):
        for prog in PROGRAMS:
            with self.subTest(prog=prog):
                r = self.run_prog(prog, "--check", env={"HOOKMQ_CONFIG": self.good})
                self.assert_ok(r, self.good, prog)

    def test_help_mentions_check(self):
        for prog in PROGRAMS:
            with self.subTest(prog=prog):
                r = self.run_prog(prog, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("--check", r.stdout)

    # ---- hookmq-worker: the consumer and its handler ---------------------------------------

    def worker(self, consumer):
        return self.run_prog("hookmq-worker", "-c", self.good, "--consumer", consumer, "--check")

    def test_worker_good_plugin(self):
        r = self.worker("ack")
        self.assert_ok(r, self.good, "ack plugin")
        self.assertIn("consumer ack", r.stdout)
        self.assertIn(plugin("ack"), r.stdout)

    def test_worker_builtin_handler(self):
        r = self.worker("builtin")
        self.assert_ok(r, self.good, "built-in")
        self.assertIn("handler log", r.stdout)

    def test_worker_unknown_consumer(self):
        r = self.worker("nope")
        self.assert_fails(r, "unknown consumer 'nope'")
        self.assertIn("ack", r.stderr)  # the consumers in the config are listed

    def test_worker_bad_abi(self):
        self.assert_fails(self.worker("badabi"), "ABI major 99", "badabi")

    def test_worker_no_entry_symbol(self):
        self.assert_fails(self.worker("nosym"), "no symbol hq_handler_get", "nosym")

    def test_worker_missing_plugin(self):
        self.assert_fails(self.worker("missing"), "cannot open", "missing .so")

    def test_worker_without_check_needs_consumer(self):
        r = self.run_prog("hookmq-worker", "-c", self.good)
        self.assertEqual(r.returncode, 2, r.stderr)

    # ---- the others' forms ------------------------------------------------------------------

    def test_archive_with_run(self):
        r = self.run_prog("hookmq-archive", "run", "--check", "-c", self.good)
        self.assert_ok(r, self.good, "run --check")
        self.assertIn(self.adir, r.stdout)
        self.assertFalse(os.path.exists(self.adir), "--check created archive.dir")
        self.assert_fails(self.run_prog("hookmq-archive", "query", "--check", "-c", self.good),
                          "--check")

    def test_dlx_forms(self):
        for args in (("--check", "-c", self.good), ("-c", self.good, "--check"),
                     ("apply", "--check", "-c", self.good), ("-c", self.good, "apply", "--check"),
                     ("definitions", "-c", self.good, "--check"),
                     ("policies", "--check", "-c", self.good)):
            with self.subTest(args=args):
                r = self.run_prog("hookmq-dlx", *args)
                self.assert_ok(r, self.good, " ".join(args))  # apply would need the broker
        self.assert_fails(self.run_prog("hookmq-dlx", "status", "--check", "-c", self.good),
                          "--check")

    def test_replay_forms(self):
        r = self.run_prog("hookmq-replay", "-c", self.good, "--check", "--to-consumer", "ack",
                          "--from", "-1h")
        self.assert_ok(r, self.good, "replay to a consumer")
        self.assertIn("consumer ack", r.stdout)
        r = self.run_prog("hookmq-replay", "-c", self.good, "--check", "--to-exchange", "--id", "x")
        self.assert_ok(r, self.good, "replay to the exchange")
        self.assert_fails(self.run_prog("hookmq-replay", "-c", self.good, "--check",
                                        "--to-consumer", "nope", "--from", "-1h"),
                          "no consumer named 'nope'")
        self.assert_fails(self.run_prog("hookmq-replay", "-c", self.good, "--check",
                                        "--to-exchange"), "--from")

    def test_send_forms(self):
        r = self.run_prog("hookmq-send", "-c", self.good, "--source", "gh", "--check")
        self.assert_ok(r, self.good, "send --source")
        self.assertIn("source gh", r.stdout)
        self.assert_fails(self.run_prog("hookmq-send", "-c", self.good, "--source", "nope",
                                        "--check"), "no source 'nope'")
        self.assert_fails(self.run_prog("hookmq-send", "-c", self.good, "--check", "--sample",
                                        "push"), "--check")


if __name__ == "__main__":
    unittest.main(verbosity=2)
