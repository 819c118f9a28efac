"""archive_fixture: hookmq-archive system-test helpers (python3 standard library only).

An Archive is one generated config with its own archive directory; it runs `hookmq-dlx apply`,
starts/kills the logger, runs `hookmq-archive query|history|stats` and reads /metrics. Events
are told apart from other test files' traffic (hookmq.archive is shared) by a unique source
prefix.
"""
import base64
import json
import os
import random
import string
import subprocess
import tempfile
import time

import hqtest

HOUR_MS = 3600 * 1000


def prefix(tag):
    return "%s%s" % (tag, "".join(random.choice(string.ascii_lowercase) for _ in range(5)))


def now_ms():
    return int(time.time() * 1000)


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def body_bytes(rec):
    """The exact body bytes of an archive record (dict)."""
    if "body" in rec:
        assert "body_b64" not in rec, rec
        return rec["body"].encode("utf-8")
    return base64.b64decode(rec["body_b64"], validate=True)


def segment_base(adir, ms, seq=0):
    t = time.gmtime(ms // 1000)
    base = os.path.join(adir, "%04d" % t.tm_year, "%02d" % t.tm_mon, "%02d" % t.tm_mday,
                        "%02d" % t.tm_hour)
    return base + (".%d" % seq if seq else "")


def record_line(source, eid, received_at, body, etype="test", kind="event"):
    """An archive record line as hookmq-archive writes it (for hand-made segments)."""
    rec = {"kind": kind, "received_at": received_at, "source": source, "type": etype, "id": eid,
           "routing_key": "%s.%s" % (source, etype),
           "properties": {"message_id": eid, "content_type": "application/json"},
           "headers": {"hookmq-source": source, "hookmq-event-type": etype,
                       "hookmq-received-at": received_at}}
    try:
        rec["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        rec["body_b64"] = base64.b64encode(body).decode()
    return json.dumps(rec, separators=(",", ":"), ensure_ascii=False)


class Archive:
    def __init__(self, batch_max=64, batch_ms=20, keep_days=90, uri=None, workdir=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="hq-ar-")
        self.dir = os.path.join(self.workdir, "archive")
        self.metrics_port = hqtest.free_port()
        self.config = os.path.join(self.workdir, "hookmq.conf")
        self.proc = None
        self.write_config(batch_max, batch_ms, keep_days, uri or hqtest.AMQP_URI)

    def write_config(self, batch_max, batch_ms, keep_days, uri):
        hqtest.write_config(self.config, """
broker = { uris = [ "%s" ]; heartbeat_s = 5; };
sources = ( { name = "t"; scheme = "none"; } );
archive = {
  dir = "%s";
  keep_days = %d;
  metrics_listen = "127.0.0.1:%d";
  batch_max = %d;
  batch_ms = %d;
};
log = { format = "text"; level = "info"; };
""" % (uri, self.dir, keep_days, self.metrics_port, batch_max, batch_ms))

    def apply(self):
        hqtest.run_dlx_apply(self.config)

    def binary(self):
        return hqtest.binary("hookmq-archive")

    def start(self, *args, wait=True):
        log = os.path.join(self.workdir, "archive.log")
        self.log_offset = os.path.getsize(log) if os.path.exists(log) else 0
        self.proc = hqtest.Proc([self.binary(), "run", "-c", self.config] + list(args),
                                name="archive", workdir=self.workdir)
        if wait:
            hqtest.wait_for(lambda: "consuming" in self.output() or not self.proc.alive(),
                            30, what="hookmq-archive consuming")
            assert self.proc.alive(), self.output()
        return self.proc

    def stop(self):
        if self.proc and self.proc.alive():
            return self.proc.stop()
        return None

    def kill9(self):
        if self.proc and self.proc.alive():
            self.proc.kill9()

    def output(self):
        """The log of the current run."""
        return self.proc.output()[self.log_offset:] if self.proc else ""

    # ---- metrics
    def metrics(self):
        return hqtest.http_request(self.metrics_port, "GET", "/metrics", timeout=5)[2].decode()

    def metric(self, name, **labels):
        lab = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        want = "%s{%s}" % (name, lab) if lab else name
        for line in self.metrics().splitlines():
            if line.startswith("#"):
                continue
            k, _, v = line.rpartition(" ")
            if k == want:
                return float(v)
        return None

    # ---- queries
    def run(self, *args, timeout=120):
        r = subprocess.run([self.binary()] + list(args) + ["-c", self.config],
                           capture_output=True, timeout=timeout)
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")

    def query(self, *args):
        rc, out, err = self.run("query", *args)
        assert rc == 0, (rc, err)
        return [json.loads(l) for l in out.splitlines() if l.strip()], err

    def wait_count(self, n, *args, timeout=60):
        last = []

        def ok():
            last[:] = self.query(*args)[0]
            return len(last) >= n
        hqtest.wait_for(ok, timeout, interval=0.3, what="%d archived records (%s)" % (n, args))
        return list(last)

    def segments(self):
        out = []
        for root, _dirs, files in os.walk(self.dir):
            for f in files:
                if f != ".lock":
                    out.append(os.path.relpath(os.path.join(root, f), self.dir))
        return sorted(out)


def publish_event(source, eid, received_at, body=b"{}", etype="test", headers=None,
                  exchange=hqtest.EXCHANGE, vhost="%2f"):
    """One event as the gateway would publish it, through the management API."""
    h = {"hookmq-source": source, "hookmq-event-type": etype, "hookmq-received-at": received_at}
    h.update(headers or {})
    props = {"message_id": eid, "content_type": "application/json", "delivery_mode": 2,
             "timestamp": received_at // 1000, "headers": h}
    r = hqtest.mgmt("POST", "/exchanges/%s/%s/publish" % (vhost, hqtest.q(exchange)),
                    {"properties": props, "routing_key": "%s.%s" % (source, etype.replace("/", ".")),
                     "payload": base64.b64encode(body).decode(), "payload_encoding": "base64"},
                    ok=(200,))
    assert r and r.get("routed"), r


def publish_lifecycle(source, eid, consumer, verdict, attempt, at, tier=None, error=None,
                      with_headers=True, vhost="%2f", message_id=None, extra=None):
    """A lifecycle record as a worker publishes it (hq_lc_encode), to hookmq.lifecycle. extra:
    more members (a step record's "step" and "size")."""
    rec = {"source": source, "id": eid, "consumer": consumer, "attempt": attempt,
           "verdict": verdict, "tier": tier, "error": error, "at": at}
    rec.update(extra or {})
    body = json.dumps(rec, separators=(",", ":")).encode()
    props = {"message_id": message_id or "lc-%d-%d" % (at, random.randint(0, 1 << 30)),
             "content_type": "application/json", "delivery_mode": 2, "timestamp": at // 1000}
    if with_headers:
        props["headers"] = {"hookmq-source": source, "hookmq-event-id": eid,
                            "hookmq-consumer": consumer, "hookmq-verdict": verdict}
    r = hqtest.mgmt("POST", "/exchanges/%s/hookmq.lifecycle/publish" % vhost,
                    {"properties": props, "routing_key": "%s.%s" % (consumer, verdict),
                     "payload": base64.b64encode(body).decode(), "payload_encoding": "base64"},
                    ok=(200,))
    assert r and r.get("routed"), r
    return props["message_id"]


def make_vhost(name):
    hqtest.mgmt("PUT", "/vhosts/" + hqtest.q(name), {})
    hqtest.mgmt("PUT", "/permissions/%s/guest" % hqtest.q(name),
                {"configure": ".*", "write": ".*", "read": ".*"})
    return "amqp://guest:guest@127.0.0.1:%d/%s" % (hqtest.AMQP_PORT, hqtest.q(name))


def delete_vhost(name):
    hqtest.mgmt("DELETE", "/vhosts/" + hqtest.q(name), ok=(200, 204, 404))
