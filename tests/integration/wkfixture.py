"""wkfixture: hookmq-worker system-test helpers (python3 standard library only).

A Setup is one generated config with its own events exchange (hookmq.<prefix>.events) and
consumers named <prefix><suffix>, so tests can share the broker with other test files. It runs
`hookmq-dlx apply`, starts workers, publishes test events straight to its exchange through the
management API (with the headers the gateway would set), reads the workers' log lines and
/metrics, and deletes its queues and exchange at the end.
"""
import datetime
import os
import random
import re
import signal
import subprocess
import tempfile
import time
import unittest

import hqtest

FIELD_RE = re.compile(r'(\w[\w-]*)=("(?:[^"]*)"|\S+)')


def plugin(name):
    """Path of a test plugin built from tests/handlers/<name>.c."""
    p = os.path.join(hqtest.BUILD, "tests", "handlers", "hq_handler_%s.so" % name)
    if not os.path.exists(p):
        raise FileNotFoundError(p)
    return p


def worker_binary():
    return hqtest.binary("hookmq-worker")


def parse_log_line(line):
    """'2026-...Z info  hookmq-worker: event k=v ...' -> dict with ts (epoch seconds), level,
    msg and the fields; None for other lines."""
    m = re.match(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (\w+)\s+hookmq-worker: (.*)$', line)
    if not m:
        return None
    ts = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    rest = m.group(3)
    fm = FIELD_RE.search(rest)
    msg = rest[:fm.start()].strip() if fm else rest.strip()
    out = {"ts": ts, "level": m.group(2), "msg": msg}
    for k, v in FIELD_RE.findall(rest[len(msg):]):
        out[k] = v[1:-1] if v.startswith('"') else v
    return out


def opt_text(v):
    if isinstance(v, (list, tuple)):
        return "[ %s ]" % ", ".join(opt_text(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return '"%s"' % str(v).replace("\\", "\\\\").replace('"', '\\"')


class Consumer:
    def __init__(self, setup, suffix, handler, options=None, bindings=None, delays=("200ms",),
                 max_attempts=5, prefetch=4, concurrency=1, extra=""):
        self.setup = setup
        self.name = setup.prefix + suffix
        self.handler = handler
        self.options = options or {}
        self.bindings = bindings or ["#"]
        self.delays = list(delays)
        self.max_attempts = max_attempts
        self.prefetch = prefetch
        self.concurrency = concurrency
        self.extra = extra
        self.metrics_port = hqtest.free_port()

    @property
    def queue(self):
        return "hookmq." + self.name

    @property
    def dlq(self):
        return "hookmq.%s.dlq" % self.name

    def retry_queues(self):
        seen = []
        for d in self.delays:
            q = "hookmq.%s.retry.%s" % (self.name, d)
            if q not in seen:
                seen.append(q)
        return seen

    def text(self):
        opts = "".join(" %s = %s;" % (k, opt_text(v)) for k, v in self.options.items())
        return ('  { name = "%s"; bindings = [ %s ]; handler = "%s";\n'
                '    options = {%s };\n'
                '    prefetch = %d; concurrency = %d; metrics_listen = "127.0.0.1:%d";\n'
                '    retry = { delays = [ %s ]; max_attempts = %d; };\n'
                '    %s }' % (self.name, ", ".join('"%s"' % b for b in self.bindings),
                              self.handler, opts, self.prefetch, self.concurrency,
                              self.metrics_port, ", ".join('"%s"' % d for d in self.delays),
                              self.max_attempts, self.extra))


class Worker:
    """A running hookmq-worker for one consumer."""

    def __init__(self, setup, consumer, args=(), env=None, name=None):
        self.setup = setup
        self.consumer = consumer
        self.proc = hqtest.Proc([worker_binary(), "-c", setup.config, "--consumer",
                                 consumer.name] + list(args), env=env,
                                name=name or ("worker-%s-%d" % (consumer.name, time.time_ns())),
                                workdir=setup.dir)

    def wait_consuming(self, count=None, timeout=20):
        n = count or self.consumer.concurrency
        hqtest.wait_for(lambda: (not self.alive() and self.fail("exited early"))
                        or len(self.lines("consuming")) >= n,
                        timeout, interval=0.05, what="worker consuming")
        return self

    def fail(self, why):
        raise AssertionError("worker %s: %s (exit %s)\n%s" % (self.consumer.name, why,
                                                              self.proc.p.poll(), self.output()))

    def output(self):
        return self.proc.output()

    def alive(self):
        return self.proc.alive()

    def lines(self, msg=None):
        out = []
        for line in self.output().splitlines():
            d = parse_log_line(line)
            if d and (msg is None or d["msg"] == msg):
                out.append(d)
        return out

    def events(self):
        return self.lines("event")

    def metrics(self):
        """/metrics as {'name{labels}': value}."""
        st, _, body = hqtest.http_request(self.consumer.metrics_port, "GET", "/metrics")
        assert st == 200, st
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def metric(self, name, **labels):
        lab = {"consumer": self.consumer.name}
        lab.update(labels)
        key = name + "{" + ",".join('%s="%s"' % (k, v) for k, v in lab.items()) + "}"
        return self.metrics().get(key, 0.0)

    def stop(self, timeout=30):
        return self.proc.stop(timeout)

    def kill9(self):
        self.proc.kill9()

    def signal(self, sig):
        self.proc.signal(sig)

    def wait(self, timeout=30):
        try:
            return self.proc.p.wait(timeout=timeout)
        finally:
            if not self.proc.log.closed and self.proc.p.poll() is not None:
                self.proc.log.close()


class Setup:
    def __init__(self, tag, queue_type="quorum", heartbeat_s=5, vhost=None, log_level="info",
                 exchange=None, extra_uris=()):
        self.prefix = "%s%d" % (tag, random.randint(10000, 99999))
        self.own_exchange = exchange is None  # a shared one (hookmq.events) is never deleted
        self.exchange = exchange or "hookmq.%s.events" % self.prefix
        self.dir = tempfile.mkdtemp(prefix="hq-wk-")
        self.config = os.path.join(self.dir, "hookmq.conf")
        self.queue_type = queue_type
        self.heartbeat_s = heartbeat_s
        self.vhost = vhost
        self.log_level = log_level
        self.consumers = []
        self.extra_uris = list(extra_uris)  # tried before the test broker (dead nodes)

    @property
    def vhost_path(self):
        return hqtest.q(self.vhost) if self.vhost else "%2f"

    def uri(self):
        return "amqp://guest:guest@127.0.0.1:%d/%s" % (hqtest.AMQP_PORT, self.vhost_path)

    def consumer(self, suffix, handler, **kw):
        c = Consumer(self, suffix, handler, **kw)
        self.consumers.append(c)
        return c

    def write(self):
        text = ('broker = {\n  uris = [ "%s" ];\n  exchange = "%s";\n  queue_type = "%s";\n'
                '  heartbeat_s = %d;\n};\nconsumers = (\n%s\n);\n'
                'log = { format = "text"; level = "%s"; };\n'
                % ('", "'.join(self.extra_uris + [self.uri()]), self.exchange, self.queue_type, self.heartbeat_s,
                   ",\n".join(c.text() for c in self.consumers), self.log_level))
        hqtest.write_config(self.config, text)
        return self.config

    def apply(self):
        self.write()
        if self.vhost:
            hqtest.mgmt("PUT", "/vhosts/" + self.vhost_path, {})
            hqtest.mgmt("PUT", "/permissions/%s/guest" % self.vhost_path,
                        {"configure": ".*", "write": ".*", "read": ".*"})
        hqtest.run_dlx_apply(self.config)
        return self

    def worker(self, consumer, wait=True, args=(), env=None):
        w = Worker(self, consumer, args=args, env=env)
        if wait:
            w.wait_consuming()
        return w

    def run_worker(self, consumer, args=(), timeout=30):
        """Run hookmq-worker to completion: (exit status, output)."""
        r = subprocess.run([worker_binary(), "-c", self.config, "--consumer",
                            consumer.name if isinstance(consumer, Consumer) else consumer]
                           + list(args), capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr

    # ---- broker side

    def publish(self, body, msg_id=None, source="src", etype="thing.happened", routing_key=None,
                headers=None, exchange=None):
        """Publish one event like the gateway does (persistent, hookmq-* headers)."""
        msg_id = msg_id or "ev-%d" % time.time_ns()
        h = {"hookmq-source": source, "hookmq-event-type": etype,
             "hookmq-received-at": int(time.time() * 1000), "hookmq-scheme": "none"}
        h.update(headers or {})
        r = hqtest.mgmt("POST", "/exchanges/%s/%s/publish" % (self.vhost_path,
                                                              hqtest.q(exchange or self.exchange)),
                        {"properties": {"message_id": msg_id, "delivery_mode": 2,
                                        "content_type": "application/json",
                                        "timestamp": int(time.time()), "headers": h},
                         "routing_key": routing_key or "%s.%s" % (source, etype),
                         "payload": body if isinstance(body, str) else body.decode(),
                         "payload_encoding": "string"}, ok=(200,))
        assert r.get("routed"), r
        return msg_id

    def queue_info(self, name):
        return hqtest.mgmt("GET", "/queues/%s/%s" % (self.vhost_path, hqtest.q(name)), ok=(200,))

    def depth(self, name):
        """Ready messages now. Counted by reading them back (requeued), since the management
        API's `messages` figure lags about 5 s. Do not use it on a work queue that must not see
        redeliveries."""
        return len(self.peek(name, 1000))

    def wait_depth(self, name, n, timeout=30):
        return hqtest.wait_for(lambda: self.depth(name) == n or None, timeout, interval=0.2,
                               what="%s to hold %d messages" % (name, n))

    def peek(self, name, count=100):
        """Messages of a queue, requeued (reading them does not remove them)."""
        out = hqtest.mgmt("POST", "/queues/%s/%s/get" % (self.vhost_path, hqtest.q(name)),
                          {"count": count, "ackmode": "ack_requeue_true", "encoding": "auto",
                           "truncate": 100000}, ok=(200,))
        return out or []

    def take(self, name, count=100):
        return hqtest.mgmt("POST", "/queues/%s/%s/get" % (self.vhost_path, hqtest.q(name)),
                           {"count": count, "ackmode": "ack_requeue_false", "encoding": "auto",
                            "truncate": 100000}, ok=(200,)) or []

    def connections(self, consumer):
        """The management API's records of the consumer's slot connections (the API lists a
        new connection with its properties after a few seconds: poll)."""
        return [x for x in hqtest.mgmt("GET", "/connections")
                if x.get("client_properties", {}).get("connection_name", "")
                .startswith("hookmq-worker %s #" % consumer.name)]

    def delete_queue(self, name):
        hqtest.mgmt("DELETE", "/queues/%s/%s" % (self.vhost_path, hqtest.q(name)),
                    ok=(200, 204, 404))

    def cleanup(self):
        for c in self.consumers:
            for qn in [c.queue, c.dlq] + c.retry_queues():
                self.delete_queue(qn)
        if self.own_exchange:
            hqtest.mgmt("DELETE", "/exchanges/%s/%s" % (self.vhost_path,
                                                        hqtest.q(self.exchange)),
                        ok=(200, 204, 404))
        if self.vhost:
            hqtest.mgmt("DELETE", "/vhosts/" + self.vhost_path, ok=(200, 204, 404))


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def read_lines(path):
    try:
        with open(path) as f:
            return [l.split() for l in f.read().splitlines() if l.strip()]
    except FileNotFoundError:
        return []


def stop_all(*workers):
    for w in workers:
        if w is not None and w.alive():
            try:
                w.stop(timeout=15)
            except AssertionError:
                pass
        elif w is not None and not w.proc.log.closed:
            w.proc.log.close()


def kill_group(sig=signal.SIGKILL, *workers):
    for w in workers:
        if w is not None and w.alive():
            w.proc.p.send_signal(sig)


class SetupCase(unittest.TestCase):
    """A test class whose tests each make their own Setup with self.setup_(tag, ...): every
    Setup of the class is cleaned up (queues, exchange, vhost) when the class ends."""

    @classmethod
    def setUpClass(cls):
        cls.setups = []

    @classmethod
    def tearDownClass(cls):
        for s in cls.setups:
            s.cleanup()

    def setup_(self, tag, **kw):
        s = Setup(tag, **kw)
        self.setups.append(s)
        return s
