"""Scale-out on a 3-node RabbitMQ cluster (ctest label `cluster`, not in the default run).

Starts its own cluster with scripts/cluster (c1..c3@localhost, AMQP 5731-5733; with
HQ_BROKER_VERSION=4.0 c1-40..c3-40@localhost in the Debian 13 chroot, AMQP 5761-5763; ports
from HQ_CLUSTER_PORT_BASE and HQ_CLUSTER_MGMT_BASE as in scripts/cluster), applies the
topology with quorum queues, runs a gateway, a worker (test plugin `record`) and the archive
logger with broker.uris listing all three nodes, and sends a bounded load of signed webhooks
from a few threads (127.0.0.1 only). Under that load it stops the node the gateway is
connected to, brings it back, then stops the node holding the leader of the work queue and
brings it back. Then it audits by (source, id):
  - every id answered 2xx was processed (in the record file) or is in the DLQ,
  - and is in the archive;
  - no id shows up that was not answered 2xx (ids with no answer at all are reported apart);
  - duplicates (processed twice, archived twice) are counted and reported, never silent.
It prints one summary row (docs/scaling.md holds the table).
"""
import base64
import collections
import concurrent.futures
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

NODES = (1, 2, 3)
# the broker version and the ports, with scripts/cluster's defaults (it reads the same variables)
VERSION = os.environ.get("HQ_BROKER_VERSION", "3.10")
_V40 = VERSION == "4.0"
PORT_BASE = int(os.environ.get("HQ_CLUSTER_PORT_BASE", "5760" if _V40 else "5730"))
MGMT_BASE = int(os.environ.get("HQ_CLUSTER_MGMT_BASE", "15760" if _V40 else "15730"))
AMQP = {n: PORT_BASE + n for n in NODES}
MGMT = {n: MGMT_BASE + n for n in NODES}
# hqtest's helpers talk to one broker: point them at node 1 (whatever a single-broker
# environment says)
os.environ["HQ_BROKER_PORT"] = str(AMQP[1])
os.environ["HQ_BROKER_MGMT_PORT"] = str(MGMT[1])
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import hqtest  # noqa: E402

SCRIPT = os.path.join(hqtest.SRC, "scripts", "cluster")
CLUSTER_DIR = os.environ.get("HQ_CLUSTER_DIR", os.path.join(hqtest.BUILD, "cluster-test"))
SECRET = "cluster-gh-secret"
SOURCES = ("clgh", "clgh2")
CONSUMER = "clwork"
WORK_Q = "hookmq." + CONSUMER
DLQ = WORK_Q + ".dlq"
MAX_EVENTS = 2400     # hard cap on requests (~200 s). The faults were over after 550-1160
                      # requests (3.10) and 640-760 (4.0) at load average 5-13; the load
                      # must outlast them
THREADS = 4
PAUSE_S = 0.3         # per thread between requests: ~12 requests/s in all
GW_PUBLISHERS = 2     # gateway.publishers: connections the gateway keeps
DRAIN_S = 240         # how long the audit waits for processing and archiving to catch up


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def cluster(*args, timeout=300, check=True):
    env = dict(os.environ, HQ_CLUSTER_DIR=CLUSTER_DIR)
    r = subprocess.run([SCRIPT] + list(args), capture_output=True, text=True, timeout=timeout,
                       env=env)
    if check and r.returncode != 0:
        raise AssertionError("scripts/cluster %s failed (%d): %s%s"
                             % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def api(path, method="GET", body=None, timeout=10):
    """The management API of the first node that answers."""
    last = None
    for n in NODES:
        url = "http://127.0.0.1:%d/api%s" % (MGMT[n], path)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return json.loads(raw) if raw else None
        except (urllib.error.URLError, OSError) as e:
            last = e
            continue
    raise AssertionError("no node's management API answers (%s)" % last)


def node_num(name):
    """'c2@localhost' (3.10) or 'c2-40@localhost' (4.0) -> 2."""
    m = re.match(r"c(\d+)(?:-40)?@", name)
    if not m:
        raise AssertionError("not a node of this cluster: %r" % name)
    return int(m.group(1))


def gateway_nodes():
    """Nodes of the gateway's publisher connections (named 'hookmq-gateway pub-N')."""
    out = collections.Counter()
    for c in api("/connections") or []:
        name = (c.get("client_properties") or {}).get("connection_name", "")
        if name.startswith("hookmq-gateway") and "startup check" not in name and c.get("node"):
            out[c["node"]] += 1
    return out


def queue_leader(queue):
    try:
        d = api("/queues/%2f/" + hqtest.q(queue))
    except AssertionError:
        return None
    return d.get("leader") or None


class Sender:
    """Signed GitHub-style webhooks from a few threads, paced; remembers every answer."""

    def __init__(self, port):
        self.port = port
        self.lock = threading.Lock()
        self.status = {}          # (source, id) -> HTTP status, or None when no answer came
        self.stop = threading.Event()
        self.next = 0
        self.latency = []

    def take(self):
        with self.lock:
            if self.stop.is_set() or self.next >= MAX_EVENTS:
                return None
            self.next += 1
            return self.next

    def run_thread(self):
        while True:
            i = self.take()
            if i is None:
                return
            source = SOURCES[i % len(SOURCES)]
            eid = "cl-%05d" % i
            body = json.dumps({"n": i, "source": source, "pad": "x" * (i % 200)}).encode()
            headers = hqtest.sign_github(SECRET, body, "push", eid)
            t0 = time.time()
            try:
                st = hqtest.http_request(self.port, "POST", "/webhooks/" + source, body, headers,
                                         timeout=20)[0]
            except (OSError, http.client.HTTPException):
                st = None
            with self.lock:
                self.status[(source, eid)] = st
                self.latency.append(time.time() - t0)
            time.sleep(PAUSE_S)

    def start(self):
        self.ex = concurrent.futures.ThreadPoolExecutor(THREADS)
        self.futs = [self.ex.submit(self.run_thread) for _ in range(THREADS)]

    def join(self):
        for f in self.futs:
            f.result(timeout=120)
        self.ex.shutdown()

    def sent(self):
        with self.lock:
            return self.next


def read_records(path):
    """id -> times processed, from the record plugin's file ('<consumer> <id> <attempt>')."""
    out = collections.Counter()
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[0] == CONSUMER:
                    out[parts[1]] += 1
    except FileNotFoundError:
        pass
    return out


def read_archive(adir):
    """(source, id) -> times archived (event records), straight from the segment files."""
    out = collections.Counter()
    for root, _dirs, files in os.walk(adir):
        for fn in files:
            p = os.path.join(root, fn)
            if fn.endswith(".jsonl"):
                with open(p, "rb") as f:
                    data = f.read()
            elif fn.endswith(".jsonl.zst"):
                data = subprocess.run(["zstd", "-dcq", p], capture_output=True, timeout=60).stdout
            else:
                continue
            for line in data.splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line of an open segment
                if rec.get("kind", "event") == "event":
                    out[(rec.get("source"), rec.get("id"))] += 1
    return out


class ClusterScaleOut(unittest.TestCase):
    procs = []

    @classmethod
    def setUpClass(cls):
        t0 = time.time()
        cluster("reset")
        try:
            cluster("start", timeout=600)
        except BaseException:
            cluster("stop", check=False)  # tearDownClass does not run when this fails
            raise
        log("cluster up in %.0fs: %s" % (time.time() - t0,
                                          cluster("status", check=False).stdout.strip()))
        # the cluster runs the version asked for (4.0: Debian 13's 4.0.x from the chroot)
        cls.broker_version = api("/overview").get("rabbitmq_version", "?")
        log("RabbitMQ %s (HQ_BROKER_VERSION=%s)" % (cls.broker_version, VERSION))
        if not cls.broker_version.startswith(VERSION + "."):
            cluster("stop", check=False)
            raise AssertionError("HQ_BROKER_VERSION=%s but the cluster runs RabbitMQ %s"
                                 % (VERSION, cls.broker_version))

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("HQ_CLUSTER_KEEP") != "1":
            cluster("stop", check=False)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hq-cluster-")
        self.record = os.path.join(self.dir, "record.txt")
        self.adir = os.path.join(self.dir, "archive")
        self.gw_port = hqtest.free_port()
        self.gw_metrics_port = hqtest.free_port()
        uris = ", ".join('"amqp://guest:guest@127.0.0.1:%d/%%2f"' % AMQP[n] for n in NODES)
        srcs = ",\n".join('  { name = "%s"; scheme = "github"; secrets = [ "%s" ]; }' % (s, SECRET)
                          for s in SOURCES)
        self.config = hqtest.write_config(os.path.join(self.dir, "hookmq.conf"), """
broker = {
  uris = [ %s ];
  exchange = "hookmq.events";
  queue_type = "quorum";
  heartbeat_s = 5;
};
gateway = {
  listen = "127.0.0.1:%d";
  metrics_listen = "127.0.0.1:%d";
  publishers = %d;
  max_body_bytes = 65536;
  max_in_flight = 256;
  confirm_timeout_ms = 2000;
  spool_dir = "%s";
};
sources = (
%s
);
consumers = (
  { name = "%s"; bindings = [ "#" ]; handler = "%s";
    options = { file = "%s"; };
    prefetch = 8; concurrency = 2; metrics_listen = "127.0.0.1:%d";
    retry = { delays = [ "200ms", "1s" ]; max_attempts = 5; }; }
);
archive = { dir = "%s"; batch_max = 64; batch_ms = 20; metrics_listen = "127.0.0.1:%d"; };
log = { format = "text"; level = "info"; };
""" % (uris, self.gw_port, self.gw_metrics_port, GW_PUBLISHERS, os.path.join(self.dir, "spool"), srcs, CONSUMER,
            os.path.join(hqtest.BUILD, "tests", "handlers", "hq_handler_record.so"),
            self.record, hqtest.free_port(), self.adir, hqtest.free_port()))
        hqtest.run_dlx_apply(self.config)
        q = api("/queues/%2f/" + WORK_Q)
        self.assertEqual(q.get("type"), "quorum", q)
        self.archive = hqtest.Proc([hqtest.binary("hookmq-archive"), "run", "-c", self.config],
                                   name="archive", workdir=self.dir)
        self.worker = hqtest.Proc([hqtest.binary("hookmq-worker"), "-c", self.config,
                                   "--consumer", CONSUMER], name="worker", workdir=self.dir)
        self.gateway = hqtest.Proc([hqtest.binary("hookmq-gateway"), "-c", self.config],
                                   name="gateway", workdir=self.dir)
        self.procs = [self.gateway, self.worker, self.archive]
        hqtest.wait_for(lambda: "consuming" in self.archive.output() or not self.archive.alive(),
                        60, what="archive logger consuming")
        hqtest.wait_for(lambda: "consuming" in self.worker.output() or not self.worker.alive(),
                        60, what="worker consuming")
        hqtest.wait_http(self.gw_port, timeout=60)
        for p in self.procs:
            self.assertTrue(p.alive(), p.output())

    def tearDown(self):
        for p in self.procs:
            if p.alive():
                try:
                    p.stop(timeout=40)
                except AssertionError:
                    pass
        log("logs and state in %s" % self.dir)

    def wait_gateway_node(self, exclude=None, timeout=60):
        """The node most of the gateway's publisher connections are on, once the API lists
        all GW_PUBLISHERS of them (it lags a few seconds) and none is on `exclude`."""
        def find():
            c = gateway_nodes()
            if sum(c.values()) < GW_PUBLISHERS or (exclude and exclude in c):
                return None
            return c.most_common(1)[0][0]
        return hqtest.wait_for(find, timeout, interval=0.5, what="gateway connections in the API")

    def test_failover_under_load(self):
        t_start = time.time()
        sender = Sender(self.gw_port)
        sender.start()
        faults = []
        try:
            time.sleep(4)
            # 1. the node the gateway publishes through
            gw_node = self.wait_gateway_node()
            n = node_num(gw_node)
            log("stopping the gateway's node %s (gateway connections per node: %s; sent %d)"
                % (gw_node, dict(gateway_nodes()), sender.sent()))
            cluster("stop-node", str(n))
            new_node = self.wait_gateway_node(exclude=gw_node, timeout=90)
            log("gateway failed over: connections per node %s" % dict(gateway_nodes()))
            time.sleep(3)
            cluster("start-node", str(n), timeout=300)
            faults.append("gw:%s->%s" % (gw_node.split("@")[0], new_node.split("@")[0]))
            log("%s back (sent %d)" % (gw_node, sender.sent()))
            time.sleep(3)
            # 2. the leader of the work queue
            leader = hqtest.wait_for(lambda: queue_leader(WORK_Q), 60, interval=0.5,
                                     what="leader of %s" % WORK_Q)
            log("stopping the leader of %s: %s (sent %d)" % (WORK_Q, leader, sender.sent()))
            cluster("stop-node", str(node_num(leader)))
            new_leader = hqtest.wait_for(
                lambda: (lambda x: x if x and x != leader else None)(queue_leader(WORK_Q)),
                90, interval=0.5, what="a new leader of %s" % WORK_Q)
            log("new leader %s" % new_leader)
            time.sleep(3)
            cluster("start-node", str(node_num(leader)), timeout=300)
            faults.append("leader:%s->%s" % (leader.split("@")[0], new_leader.split("@")[0]))
            sent_at_last_fault = sender.sent()
            log("%s back (sent %d)" % (leader, sent_at_last_fault))
            time.sleep(4)
        finally:
            sender.stop.set()
            sender.join()
        load_s = time.time() - t_start
        for p in self.procs:
            self.assertTrue(p.alive(), "%s died:\n%s" % (p.log_path, p.output()[-3000:]))

        status = dict(sender.status)
        gw_spooled = self.gw_metric("hookmq_gateway_spooled_total")
        accepted = {k for k, st in status.items() if st is not None and 200 <= st < 300}
        refused = {k for k, st in status.items() if st is not None and not 200 <= st < 300}
        unanswered = {k for k, st in status.items() if st is None}
        ids = {eid: src for (src, eid) in status}

        # wait until every accepted id is processed or parked, and archived
        dlq_ids = collections.Counter()

        def settled():
            dlq_ids.clear()
            dlq_ids.update(self.dlq_peek())
            done = read_records(self.record)
            arch = read_archive(self.adir)
            return all((done[eid] or dlq_ids[eid]) and arch[(src, eid)] for (src, eid) in accepted)
        end = time.time() + DRAIN_S
        while time.time() < end and not settled():
            time.sleep(1)
        time.sleep(5)  # let late redeliveries (duplicates) land before counting them
        dlq_ids.clear()
        dlq_ids.update(self.dlq_peek())

        done = read_records(self.record)
        arch = read_archive(self.adir)
        lost_processing = sorted(k for k in accepted if not done[k[1]] and not dlq_ids[k[1]])
        lost_archive = sorted(k for k in accepted if not arch[k])
        seen = set(done) | set(dlq_ids) | {eid for (_s, eid) in arch}
        unexpected = sorted(eid for eid in seen if eid not in ids
                            or (ids[eid], eid) in refused)
        from_unanswered = sorted(eid for eid in seen if eid in ids and (ids[eid], eid) in unanswered)
        dup_processed = sum(c - 1 for c in done.values() if c > 1)
        dup_archived = sum(c - 1 for c in arch.values() if c > 1)
        lat = sorted(sender.latency)
        p99 = lat[int(len(lat) * 0.99) - 1] if lat else 0.0
        codes = collections.Counter(str(st) for st in status.values())

        row = ("| cluster | RabbitMQ %s | %s | sent %d | 2xx %d | non-2xx %d (%s) | no answer %d | processed %d "
               "| dlq %d | archived %d | lost %d | unexpected %d | dup processed %d "
               "| dup archived %d | spooled %d | p99 %.2fs | load %.0fs |"
               % (self.broker_version, ", ".join(faults), len(status), len(accepted), len(refused),
                  " ".join("%s:%d" % kv for kv in sorted(codes.items()) if kv[0] not in
                           ("200", "202")) or "-",
                  len(unanswered), sum(1 for k in accepted if done[k[1]]),
                  sum(1 for k in accepted if dlq_ids[k[1]]),
                  sum(1 for k in accepted if arch[k]),
                  len(set(lost_processing) | set(lost_archive)), len(unexpected),
                  dup_processed, dup_archived, gw_spooled, p99, load_s))
        print(row, flush=True)
        if from_unanswered:
            log("ids sent without an answer that did arrive (allowed): %d" % len(from_unanswered))
        self.assertGreater(len(accepted), 100, "too few accepted requests: %s" % codes)
        self.assertEqual(lost_processing, [], "accepted but neither processed nor in the DLQ")
        self.assertEqual(lost_archive, [], "accepted but not archived")
        self.assertEqual(unexpected, [], "ids that were not answered 2xx")
        self.assertEqual(len(faults), 2)
        self.assertLess(sent_at_last_fault, MAX_EVENTS,
                        "the load ended before the last node came back: raise MAX_EVENTS")

    def gw_metric(self, name):
        try:
            body = hqtest.http_request(self.gw_metrics_port, "GET", "/metrics", timeout=5)[2]
        except OSError:
            return -1
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return int(float(line.split()[1]))
        return -1

    def dlq_peek(self):
        """id -> copies in the DLQ, read back with requeue (the API's counts lag)."""
        out = collections.Counter()
        for m in api("/queues/%2f/" + hqtest.q(DLQ) + "/get", "POST",
                     {"count": 5000, "ackmode": "ack_requeue_true", "encoding": "auto",
                      "truncate": 1000}, timeout=60) or []:
            out[m["properties"].get("message_id")] += 1
        return out


if __name__ == "__main__":
    unittest.main(verbosity=2)
