"""hookmq-dlx apply / definitions / policies against the test broker.

apply creates every object of the topology table in docs/interface.md (checked through the
management API), a second apply changes nothing, an existing queue of the wrong type is a conflict
(exit 3, nothing touched), an unreachable broker is exit 1, a bad config is exit 2 with
file:line. Names are unique per run (own events exchange and consumers) so the test can share
the broker with others; hookmq's fixed objects (hookmq.unrouted, hookmq.lifecycle,
hookmq.archive) may already exist."""
import json
import os
import random
import re
import subprocess
import tempfile
import unittest

import hqtest

P = "dlx%d" % random.randint(1000, 9999)
EXCHANGE = "hookmq.%s.events" % P
C1 = "%sbill" % P   # consumer names: [a-z0-9_-]
C2 = "%scrm" % P


def config(consumers, queue_type="quorum", uri=None, exchange=EXCHANGE):
    lines = ['broker = {',
             '  uris = [ "%s" ];' % (uri or hqtest.AMQP_URI),
             '  exchange = "%s";' % exchange,
             '  queue_type = "%s";' % queue_type,
             '  heartbeat_s = 10;',
             '};',
             'consumers = (']
    for i, (name, bindings, delays) in enumerate(consumers):
        lines.append('  { name = "%s"; bindings = [ %s ]; handler = "log";' %
                     (name, ", ".join('"%s"' % b for b in bindings)))
        lines.append('    retry = { delays = [ %s ]; max_attempts = 5; }; }%s' %
                     (", ".join('"%s"' % d for d in delays), "," if i + 1 < len(consumers) else ""))
    lines.append(');')
    return "\n".join(lines) + "\n"


def dlx(*args, timeout=120):
    return subprocess.run([hqtest.binary("hookmq-dlx")] + list(args), capture_output=True,
                          text=True, timeout=timeout)


def snapshot(names):
    """What the management API says about our objects, without volatile fields."""
    out = {}
    for q in names:
        info = hqtest.queue_info(q)
        out["queue " + q] = {k: info.get(k) for k in ("type", "durable", "auto_delete", "arguments")}
        out["bindings " + q] = sorted((b["source"], b["routing_key"]) for b in
                                      hqtest.mgmt("GET", "/queues/%2f/" + hqtest.q(q) + "/bindings"))
    ex = hqtest.mgmt("GET", "/exchanges/%2f/" + hqtest.q(EXCHANGE))
    out["exchange"] = {k: ex.get(k) for k in ("type", "durable", "auto_delete", "internal", "arguments")}
    return out


class DlxTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="hq-dlx-")
        cls.created_queues = set()

    @classmethod
    def tearDownClass(cls):
        for q in sorted(cls.created_queues):
            hqtest.delete_queue(q)
        hqtest.delete_exchange(EXCHANGE)

    def write(self, name, text):
        return hqtest.write_config(os.path.join(self.dir, name), text)

    def our_queues(self, consumers):
        names = []
        for name, _, delays in consumers:
            names.append("hookmq." + name)
            names += ["hookmq.%s.retry.%s" % (name, d) for d in delays]
            names.append("hookmq.%s.dlq" % name)
        self.created_queues.update(names)
        return names

    def test_1_apply_creates_then_changes_nothing(self):
        # "60s" and "1m" are one tier, named 1m
        consumers = [(C1, ["stripe.invoice.#", "stripe.charge.*"], ["10s", "60s", "1m"]),
                     (C2, ["github.#"], ["200ms"])]
        cfg = self.write("apply.conf", config(consumers))
        r = dlx("apply", "-c", cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        queues = self.our_queues([(C1, None, ["10s", "1m"]), (C2, None, ["200ms"])])
        for q in queues:
            self.assertRegex(r.stdout, r"queue +%s +created" % re.escape(q))
        self.assertRegex(r.stdout, r"exchange +%s +topic +created" % re.escape(EXCHANGE))
        self.assertNotIn(".retry.60s", r.stdout)
        m = re.search(r"apply: (\d+) created", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertGreaterEqual(int(m.group(1)), 1 + len(queues) + 3)

        # exchange: topic, durable, alternate-exchange
        ex = hqtest.mgmt("GET", "/exchanges/%2f/" + hqtest.q(EXCHANGE))
        self.assertEqual(ex["type"], "topic")
        self.assertTrue(ex["durable"])
        self.assertEqual(ex["arguments"], {"alternate-exchange": "hookmq.unrouted"})
        self.assertEqual(hqtest.mgmt("GET", "/exchanges/%2f/hookmq.unrouted")["type"], "fanout")
        self.assertEqual(hqtest.mgmt("GET", "/exchanges/%2f/hookmq.lifecycle")["type"], "topic")

        # work queue
        w = hqtest.queue_info("hookmq." + C1)
        self.assertEqual(w["type"], "quorum")
        self.assertTrue(w["durable"])
        self.assertEqual(w["arguments"], {
            "x-queue-type": "quorum", "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "hookmq.%s.dlq" % C1,
            "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
            "x-delivery-limit": 20})
        # retry tiers
        for name, ttl in (("10s", 10000), ("1m", 60000)):
            rq = hqtest.queue_info("hookmq.%s.retry.%s" % (C1, name))
            self.assertEqual(rq["arguments"], {
                "x-queue-type": "quorum", "x-message-ttl": ttl, "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": "hookmq." + C1,
                "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
        self.assertEqual(hqtest.queue_info("hookmq.%s.retry.200ms" % C2)["arguments"]["x-message-ttl"], 200)
        # DLQ, archive, unrouted
        # (4.x: without a delivery limit, which RabbitMQ 4 would otherwise set to 20)
        self.assertEqual(hqtest.queue_info("hookmq.%s.dlq" % C1)["arguments"],
                         dict({"x-queue-type": "quorum"}, **hqtest.NO_DELIVERY_LIMIT))
        for q in ("hookmq.archive", "hookmq.unrouted"):
            info = hqtest.queue_info(q)
            self.assertEqual(info["type"], "quorum")
            self.assertEqual(info["arguments"].get("x-delivery-limit"),
                             hqtest.NO_DELIVERY_LIMIT.get("x-delivery-limit"), q)

        # bindings
        def binds(q):
            return sorted((b["source"], b["routing_key"]) for b in
                          hqtest.mgmt("GET", "/queues/%2f/" + hqtest.q(q) + "/bindings")
                          if b["source"] != "")
        self.assertEqual(binds("hookmq." + C1),
                         [(EXCHANGE, "stripe.charge.*"), (EXCHANGE, "stripe.invoice.#")])
        self.assertEqual(binds("hookmq." + C2), [(EXCHANGE, "github.#")])
        self.assertEqual(binds("hookmq.%s.retry.10s" % C1), [])   # default exchange only
        self.assertEqual(binds("hookmq.%s.dlq" % C1), [])
        self.assertIn((EXCHANGE, "#"), binds("hookmq.archive"))
        self.assertIn(("hookmq.lifecycle", "#"), binds("hookmq.archive"))
        self.assertIn(("hookmq.unrouted", ""), binds("hookmq.unrouted"))

        # apply again: nothing created, nothing changed
        before = snapshot(queues + ["hookmq.archive", "hookmq.unrouted"])
        r2 = dlx("-c", cfg, "apply")   # -c before the subcommand works too
        self.assertEqual(r2.returncode, 0, r2.stdout + r2.stderr)
        self.assertIn("apply: 0 created", r2.stdout)
        self.assertNotRegex(r2.stdout, r"\bcreated\n")
        for q in queues:
            self.assertRegex(r2.stdout, r"queue +%s +exists" % re.escape(q))
        self.assertEqual(snapshot(queues + ["hookmq.archive", "hookmq.unrouted"]), before)

    def test_2_conflict(self):
        name = "%sconf" % P
        queue = "hookmq." + name
        self.created_queues.add(queue)
        # someone created the work queue by hand as a classic queue
        hqtest.mgmt("PUT", "/queues/%2f/" + queue, {"durable": True, "auto_delete": False, "arguments": {}})
        consumers = [(name, ["x.#"], ["5s"])]
        self.our_queues(consumers)
        r = dlx("apply", "-c", self.write("conflict.conf", config(consumers)))
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"queue +%s +CONFLICT" % re.escape(queue))
        self.assertIn(queue, r.stderr)
        self.assertIn("x-queue-type", r.stderr)
        self.assertIn("quorum", r.stderr)
        self.assertIn("delete it in the management UI after draining it", r.stderr)
        # 3.x reports the type as not set, 4.x as 'classic': either way it is named
        self.assertIn("a classic queue", r.stderr)
        # the other objects were still checked / created, and the queue was left alone
        self.assertRegex(r.stdout, r"queue +hookmq\.%s\.dlq +(created|exists)" % re.escape(name))
        info = hqtest.queue_info(queue)
        self.assertEqual(info["type"], "classic")
        # untouched: 4.x lists the type it defaulted to among the arguments, 3.x nothing
        self.assertEqual(info["arguments"], {"x-queue-type": "classic"} if hqtest.BROKER_MAJOR >= 4
                         else {})

    def test_3_unreachable(self):
        port = hqtest.free_port()
        cfg = self.write("down.conf", config([(C1, ["a"], ["1s"])],
                                             uri="amqp://guest:guest@127.0.0.1:%d/%%2f" % port))
        r = dlx("apply", "-c", cfg, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("cannot connect", r.stderr)
        self.assertIn("127.0.0.1:%d" % port, r.stderr)

    def test_4_bad_config(self):
        text = config([(C1, ["a"], ["1s"])]).replace('queue_type = "quorum";', 'queue_type = ;')
        line = text.splitlines().index("  queue_type = ;") + 1
        path = self.write("bad.conf", text)
        r = dlx("apply", "-c", path)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"%s:%d: " % (re.escape(path), line))
        # a value the loader rejects (not a syntax error) is a config error too
        r = dlx("definitions", "-c", self.write("bad2.conf", config([(C1, ["a"], ["1s"])],
                                                                     queue_type="stream")))
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r"bad2\.conf:\d+: ")
        r = dlx("apply", "-c", os.path.join(self.dir, "missing.conf"))
        self.assertEqual(r.returncode, 2)

    def test_5_definitions_import(self):
        """The definitions JSON imports in the management API and creates exactly what apply
        would: apply afterwards finds everything existing and equivalent."""
        name = "%simp" % P
        consumers = [(name, ["imp.#"], ["2s", "30s"])]
        queues = self.our_queues(consumers)
        cfg = self.write("imp.conf", config(consumers))
        # for the broker they are imported into (on 4.x the DLQ disables its delivery limit)
        r = dlx("definitions", "--broker-version", hqtest.BROKER_VERSION, "-c", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        defs = json.loads(r.stdout)
        self.assertEqual(set(defs), {"exchanges", "queues", "bindings"})
        qnames = [q["name"] for q in defs["queues"]]
        for q in queues:
            self.assertIn(q, qnames)
        hqtest.mgmt("POST", "/definitions", defs)
        self.assertEqual(hqtest.queue_info("hookmq.%s.retry.30s" % name)["arguments"]["x-message-ttl"], 30000)
        r = dlx("apply", "-c", cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("apply: 0 created", r.stdout)

    def test_6_policies_and_cli(self):
        cfg = self.write("pol.conf", config([(C1, ["a.#"], ["10s"])]))
        r = dlx("policies", "-c", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("rabbitmqctl set_policy --vhost '/' --apply-to queues", r.stdout)
        self.assertIn("'^hookmq\\.%s\\.retry\\.10s$'" % C1, r.stdout)
        self.assertIn('"message-ttl":10000', r.stdout)
        self.assertIn('"delivery-limit":20', r.stdout)
        r = dlx("definitions", "--policy-managed", "-c", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        args = {q["name"]: q["arguments"] for q in json.loads(r.stdout)["queues"]}
        self.assertEqual(args["hookmq." + C1], {"x-queue-type": "quorum"})

        # the version they target: 3.10 by default, 4.x disables the DLQ's delivery limit
        dl = "'^hookmq\\.%s\\.dlq$' '{\"delivery-limit\":-1}'" % C1
        self.assertNotIn(dl, r.stdout)
        for v in ("4.0", "4.1.2", "--broker-version=4.0"):
            argv = ["policies", "-c", cfg] + ([v] if v.startswith("--") else ["--broker-version", v])
            r = dlx(*argv)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(dl, r.stdout)
        r = dlx("definitions", "--broker-version", "4.0", "-c", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        args = {q["name"]: q["arguments"] for q in json.loads(r.stdout)["queues"]}
        self.assertEqual(args["hookmq.%s.dlq" % C1], {"x-queue-type": "quorum",
                                                      "x-delivery-limit": -1})
        self.assertEqual(args["hookmq." + C1]["x-delivery-limit"], 20)
        r = dlx("definitions", "--broker-version", "3.10", "-c", cfg)
        args = {q["name"]: q["arguments"] for q in json.loads(r.stdout)["queues"]}
        self.assertEqual(args["hookmq.%s.dlq" % C1], {"x-queue-type": "quorum"})
        for argv in (["apply", "--broker-version", "4.0", "-c", cfg],
                     ["policies", "--broker-version", "four", "-c", cfg],
                     ["policies", "--broker-version"]):
            r = dlx(*argv)
            self.assertEqual(r.returncode, 2, argv)
            self.assertIn("--broker-version", r.stderr)

        r = dlx("--help")
        self.assertEqual(r.returncode, 0)
        for sub in ("apply", "definitions", "policies"):
            self.assertIn(sub, r.stdout)
        r = dlx("--version")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("hookmq-dlx "))
        for argv in (["frobnicate", "-c", cfg], [], ["apply", "extra", "-c", cfg], ["apply", "-c"],
                     ["apply", "--bogus", "-c", cfg]):
            r = dlx(*argv)
            self.assertEqual(r.returncode, 2, argv)
            self.assertIn("usage:", r.stderr)

    def test_7_queues_declared_before_rabbitmq_4(self):
        """A DLQ declared on 3.x (no x-delivery-limit) on a 4.x broker: apply accepts it,
        warns and prints the policy; status flags it; with that policy, reading it 25 times
        (past RabbitMQ 4's default limit of 20) keeps its message."""
        if hqtest.BROKER_MAJOR < 4:
            self.skipTest("RabbitMQ %s has no default delivery limit" % hqtest.BROKER_VERSION)
        name = "%supg" % P
        dlq = "hookmq.%s.dlq" % name
        consumers = [(name, ["upg.#"], ["1s"])]
        self.our_queues(consumers)
        # what apply declared on 3.x: a quorum DLQ without the argument
        hqtest.mgmt("PUT", "/queues/%2f/" + hqtest.q(dlq),
                    {"durable": True, "auto_delete": False,
                     "arguments": {"x-queue-type": "quorum"}})
        cfg = self.write("upg.conf", config(consumers))
        r = dlx("apply", "-c", cfg)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"queue +%s +exists, DELIVERY LIMIT \(needs a policy\)"
                         % re.escape(dlq))
        self.assertIn("WARNING: 1 queue declared before the broker ran RabbitMQ 4", r.stderr)
        pol = [line for line in r.stderr.splitlines() if line.startswith("rabbitmqctl set_policy")]
        self.assertEqual(len(pol), 1, r.stderr)
        self.assertIn("'^hookmq\\.%s\\.dlq$' '{\"delivery-limit\":-1}'" % name, pol[0])
        self.assertEqual(hqtest.queue_info(dlq)["arguments"], {"x-queue-type": "quorum"})
        r = dlx("status", "-c", cfg)
        self.assertIn("LIMIT?", r.stdout)
        self.assertIn("queue %s keeps RabbitMQ 4's delivery limit" % dlq, r.stdout)

        # the policy apply printed, set through the management API
        hqtest.mgmt("PUT", "/policies/%2f/" + hqtest.q(dlq),
                    {"pattern": "^hookmq\\.%s\\.dlq$" % name, "apply-to": "queues",
                     "priority": 10, "definition": {"delivery-limit": -1}})
        self.addCleanup(hqtest.mgmt, "DELETE", "/policies/%2f/" + hqtest.q(dlq))
        hqtest.wait_for(lambda: hqtest.queue_info(dlq).get("policy") == dlq, 30,
                        what="the policy on " + dlq)
        self.assertTrue(hqtest.publish_via_api(dlq, b"parked", {"message_id": "m-upg",
                                                                "delivery_mode": 2}))
        hqtest.wait_for(lambda: hqtest.queue_depth(dlq) == 1, 30, what="the parked message")
        for n in range(25):
            r = dlx("list", name, "-c", cfg, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([json.loads(x)["id"] for x in r.stdout.splitlines() if x.strip()],
                             ["m-upg"], "list %d" % n)


if __name__ == "__main__":
    unittest.main(verbosity=2)
