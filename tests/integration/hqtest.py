"""hqtest: shared helpers for hookmq's system tests (python3 standard library only).

Every test talks to the private RabbitMQ node started by the ctest `broker` fixture
(scripts/broker; ports in HQ_BROKER_PORT / HQ_BROKER_MGMT_PORT) and runs the real hookmq
binaries from HQ_BUILD_DIR. Traffic goes to 127.0.0.1 only and every loop is bounded.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

SRC = os.environ.get("HQ_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("HQ_BUILD_DIR", os.path.join(SRC, "build"))
AMQP_PORT = int(os.environ.get("HQ_BROKER_PORT", "5699"))
MGMT_PORT = int(os.environ.get("HQ_BROKER_MGMT_PORT", "15699"))
AMQP_URI = "amqp://guest:guest@127.0.0.1:%d/%%2f" % AMQP_PORT
EXCHANGE = "hookmq.events"
# the RabbitMQ version of the test broker (scripts/broker: 3.10 on the host, 4.0 in a chroot)
BROKER_VERSION = os.environ.get("HQ_BROKER_VERSION", "3.10")
BROKER_MAJOR = int(BROKER_VERSION.split(".")[0])
# what hookmq-dlx apply adds to the queues it reads without consuming (DLQs, archive,
# unrouted) on this broker: RabbitMQ 4 would drop their messages after 20 returns
NO_DELIVERY_LIMIT = {"x-delivery-limit": -1} if BROKER_MAJOR >= 4 else {}


def binary(name):
    for sub in ("gateway", "worker", "archive", "replay", "tools", "dlx", "console",
                "tests/integration", "bench", "."):
        p = os.path.join(BUILD, sub, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(name)


# ---- management API -------------------------------------------------------------------

def mgmt(method, path, body=None, ok=(200, 201, 204), timeout=30):
    url = "http://127.0.0.1:%d/api%s" % (MGMT_PORT, path)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        status = e.code
    if status not in ok:
        raise RuntimeError("%s %s -> %d %s" % (method, path, status, raw[:300]))
    return json.loads(raw) if raw else None


def q(name):
    return urllib.parse.quote(name, safe="")


def declare_queue(name, bindings=(), exchange=EXCHANGE, arguments=None):
    """A classic test queue bound to exchange with the given routing keys."""
    mgmt("PUT", "/queues/%2f/" + q(name),
         {"durable": True, "auto_delete": False, "arguments": arguments or {}})
    for rk in bindings:
        mgmt("POST", "/bindings/%%2f/e/%s/q/%s" % (q(exchange), q(name)), {"routing_key": rk})


def delete_queue(name):
    mgmt("DELETE", "/queues/%2f/" + q(name), ok=(200, 204, 404))


def delete_exchange(name):
    mgmt("DELETE", "/exchanges/%2f/" + q(name), ok=(200, 204, 404))


def queue_info(name):
    return mgmt("GET", "/queues/%2f/" + q(name), ok=(200,))


def purge(name):
    mgmt("DELETE", "/queues/%2f/" + q(name) + "/contents", ok=(200, 204, 404))


def get_messages(name, count=100000):
    """Consume (ack) up to count messages through the management API. Payloads come back as
    bytes in m['body']."""
    out = []
    while len(out) < count:
        batch = mgmt("POST", "/queues/%2f/" + q(name) + "/get",
                     {"count": min(count - len(out), 5000), "ackmode": "ack_requeue_false",
                      "encoding": "base64", "truncate": 64 << 20}, ok=(200,), timeout=120)
        if not batch:
            break
        for m in batch:
            m["body"] = base64.b64decode(m["payload"])
        out.extend(batch)
    return out


def wait_for(pred, timeout=30.0, interval=0.2, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.0fs waiting for %s (last: %r)" % (timeout, what, last))


def queue_depth(name):
    """Ready messages as counted by a passive declare-like GET (the API's figure lags a few
    seconds, so poll with wait_for)."""
    return queue_info(name).get("messages", 0)


# ---- broker control ---------------------------------------------------------------------

def broker(cmd, *args):
    return subprocess.run([os.path.join(SRC, "scripts", "broker"), cmd] + list(args),
                          check=True, capture_output=True, text=True, timeout=240)


# ---- processes --------------------------------------------------------------------------

_ports_given = set()


def free_port():
    """A port for a program of the test to listen on: free now, never handed out twice in one
    test process, and below the kernel's ephemeral range, so an outgoing connection (of a
    broker, a client, a test running beside this one) cannot take it before the program
    binds it. (Port 0 would hand out an ephemeral port, which is exactly what such a
    connection uses.)"""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randrange(max(1024, low - 4000), low)
        if port in _ports_given:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        _ports_given.add(port)
        return port
    raise AssertionError("no free port below %d" % low)


class Proc:
    """A hookmq program run in the background with its output in a log file."""

    def __init__(self, argv, env=None, name="proc", workdir=None):
        self.name = name
        self.workdir = workdir or tempfile.mkdtemp(prefix="hq-")
        self.log_path = os.path.join(self.workdir, name + ".log")
        self.log = open(self.log_path, "ab")
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=e)

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, timeout=30):
        self.signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("did not exit within %ds after SIGTERM" % timeout)
        finally:
            self.log.close()

    def kill9(self):
        self.p.kill()
        self.p.wait()
        self.log.close()


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def run_dlx_apply(config):
    r = subprocess.run([binary("hookmq-dlx"), "apply", "-c", config], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("hookmq-dlx apply failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr))
    return r


# ---- HTTP -------------------------------------------------------------------------------

def http_request(port, method, path, body=b"", headers=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        c.close()


def wait_http(port, path="/healthz", timeout=20, proc=None):
    """Wait until GET path answers 200. With proc, fail at once (with its output) if that
    program exits first, instead of waiting out the timeout."""
    def ok():
        if proc is not None and not proc.alive():
            raise AssertionError("%s exited (%s) before http://127.0.0.1:%d%s answered:\n%s"
                                 % (proc.name, proc.p.returncode, port, path, proc.output()))
        try:
            return http_request(port, "GET", path, timeout=2)[0] == 200
        except OSError:
            return False
    wait_for(ok, timeout, what="http://127.0.0.1:%d%s" % (port, path))


# ---- signing (independent of the C code) ------------------------------------------------

def hmac_hex(key, msg, alg=hashlib.sha256):
    return hmac.new(key if isinstance(key, bytes) else key.encode(), msg, alg).hexdigest()


def hmac_b64(key, msg, alg=hashlib.sha256):
    return base64.b64encode(hmac.new(key if isinstance(key, bytes) else key.encode(), msg, alg).digest()).decode()


def sign_github(secret, body, event="push", delivery=None):
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or "d-%d" % time.time_ns(),
            "X-Hub-Signature-256": "sha256=" + hmac_hex(secret, body),
            "Content-Type": "application/json"}


def sign_linear(secret, body, delivery=None):
    """Linear: hex HMAC-SHA256 of the body (which carries webhookTimestamp, in ms)."""
    return {"Linear-Signature": hmac_hex(secret, body), "Linear-Event": "Issue",
            "Linear-Delivery": delivery or "ld-%d" % time.time_ns(),
            "Content-Type": "application/json"}


def sign_stripe(secret, body, ts=None):
    ts = int(time.time()) if ts is None else ts
    return {"Stripe-Signature": "t=%d,v1=%s" % (ts, hmac_hex(secret, b"%d." % ts + body)),
            "Content-Type": "application/json"}


def sign_standard(secret, body, msg_id, ts=None, prefix="webhook"):
    ts = int(time.time()) if ts is None else ts
    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    sig = hmac_b64(key, b"%s.%d." % (msg_id.encode(), ts) + body)
    return {prefix + "-id": msg_id, prefix + "-timestamp": str(ts),
            prefix + "-signature": "v1," + sig, "Content-Type": "application/json"}


def sign_shopify(secret, body, topic="orders/create", wid=None):
    return {"X-Shopify-Hmac-Sha256": hmac_b64(secret, body), "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": wid or "w-%d" % time.time_ns(),
            "X-Shopify-Shop-Domain": "example.myshopify.com", "Content-Type": "application/json"}


def sign_slack(secret, body, ts=None, ctype="application/json"):
    ts = int(time.time()) if ts is None else ts
    return {"X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": "v0=" + hmac_hex(secret, b"v0:%d:" % ts + body),
            "Content-Type": ctype}


def sign_gitlab(token, event="Push Hook", uuid=None):
    return {"X-Gitlab-Token": token, "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": uuid or "u-%d" % time.time_ns(), "Content-Type": "application/json"}


def sign_twilio_form(token, url, params):
    s = url + "".join(k + v for k, v in sorted(params.items()))
    body = urllib.parse.urlencode(params).encode()
    return body, {"X-Twilio-Signature": hmac_b64(token, s.encode(), hashlib.sha1),
                  "Content-Type": "application/x-www-form-urlencoded"}


def sign_paddle(secret, body, ts=None):
    ts = int(time.time()) if ts is None else ts
    return {"Paddle-Signature": "ts=%d;h1=%s" % (ts, hmac_hex(secret, b"%d:" % ts + body)),
            "Content-Type": "application/json"}


def sign_square(key, url, body):
    return {"x-square-hmacsha256-signature": hmac_b64(key, url.encode() + body),
            "Content-Type": "application/json"}


def sign_zoom(secret, body, ts=None):
    ts = int(time.time()) if ts is None else ts
    return {"x-zm-request-timestamp": str(ts),
            "x-zm-signature": "v0=" + hmac_hex(secret, b"v0:%d:" % ts + body),
            "Content-Type": "application/json"}


def mailgun_body(key, event="delivered", eid=None, ts=None, token=None):
    ts = str(int(time.time()) if ts is None else ts)
    token = token or "tok%d" % time.time_ns()
    sig = hmac_hex(key, (ts + token).encode())
    return json.dumps({"signature": {"timestamp": ts, "token": token, "signature": sig},
                       "event-data": {"event": event, "id": eid or "mg-%d" % time.time_ns()}}).encode()


def sign_hmac(secret, body, header="X-Signature", prefix="sha256=", alg=hashlib.sha256, enc="hex"):
    v = hmac_hex(secret, body, alg) if enc == "hex" else hmac_b64(secret, body, alg)
    return {header: prefix + v, "Content-Type": "application/json"}


def ensure_topology():
    """Run `hookmq-dlx apply` with a minimal config so the events exchange exists."""
    d = tempfile.mkdtemp(prefix="hq-topo-")
    path = write_config(os.path.join(d, "hookmq.conf"),
                        'broker = { uris = [ "%s" ]; };\nsources = ( { name = "t"; scheme = "none"; } );\n'
                        % AMQP_URI)
    run_dlx_apply(path)


def publish_via_api(routing_key, body, properties=None, exchange="amq.default"):
    """Publish one message through the management API (default exchange unless told), with
    AMQP properties given as the API expects them (message_id, content_type, timestamp,
    delivery_mode, headers: JSON numbers become integers, lists arrays, objects tables).
    Returns True when the broker routed it."""
    r = mgmt("POST", "/exchanges/%2f/" + q(exchange) + "/publish",
             {"properties": properties or {}, "routing_key": routing_key,
              "payload": base64.b64encode(body).decode(), "payload_encoding": "base64"}, ok=(200,))
    return bool(r and r.get("routed"))
