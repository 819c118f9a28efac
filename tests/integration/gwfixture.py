"""gwfixture: start a hookmq-gateway with a generated config for a system test."""
import json
import os
import tempfile
import time

import hqtest

SECRETS = {
    "github": "gh-secret",
    "stripe": "whsec_stripe_test",
    "standard": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "shopify": "shop-secret",
    "slack": "slack-signing-secret",
    "gitlab": "gitlab-token",
    "twilio": "twilio-auth-token",
    "paddle": "pdl_ntfset_test",
    "square": "square-signature-key",
    "zoom": "zoom-secret-token",
    "mailgun": "mailgun-signing-key",
    "hmac": "generic-key",
    "token": "bearer-token-1",
    "basic": "user:pa55",
    "linear": "lin_wh_signing_secret",
}


def messages_through_marker(gw, source, secret, queue):
    """Post a correctly signed GitHub-style event to source (the marker), and return the ids of
    the messages of queue up to and including it. The gateway answers 202 once the broker has
    confirmed the marker, so whatever was published before it is ahead of it in the queue."""
    body = json.dumps({"marker": time.time_ns()}).encode()
    did = "marker-%d" % time.time_ns()
    st, _, rb = gw.post(source, body, hqtest.sign_github(secret, body, "push", did))
    assert st == 202, (st, rb)
    got = []

    def through():
        got.extend(m["properties"]["message_id"] for m in hqtest.get_messages(queue))
        return did in got
    hqtest.wait_for(through, 10, what="the marker event in %s" % queue)
    return got, did


def public_url(prefix, scheme):
    """The `url` (required) of the twilio and square sources of sources_block: what the
    provider signs, whatever address the request is posted to."""
    return "https://hooks.example.com/webhooks/%s-%s" % (prefix, scheme)


def sources_block(prefix, extra=""):
    """One source per scheme, named <prefix>-<scheme>."""
    lines = []
    for scheme, secret in SECRETS.items():
        opts = ""
        if scheme == "hmac":
            opts = ' header = "X-Signature"; algorithm = "sha256"; encoding = "hex"; prefix = "sha256=";'
        if scheme in ("twilio", "square"):
            opts = ' url = "%s";' % public_url(prefix, scheme)
        lines.append('  { name = "%s-%s"; scheme = "%s"; secrets = [ "%s" ];%s },'
                     % (prefix, scheme, scheme, secret, opts))
    lines.append('  { name = "%s-none"; scheme = "none"; },' % prefix)
    body = "\n".join(lines) + ("\n" + extra if extra else "")
    return body.rstrip().rstrip(",")


class Gateway:
    def __init__(self, sources, gateway_extra="", spool=True, workdir=None, confirm_timeout_ms=2000,
                 max_in_flight=1024, env=None, uris=None):
        self.workdir = workdir or tempfile.mkdtemp(prefix="hq-gw-")
        self.port = hqtest.free_port()
        self.metrics_port = hqtest.free_port()
        self.spool_dir = os.path.join(self.workdir, "spool") if spool else None
        uris = uris or [hqtest.AMQP_URI]
        self.config = os.path.join(self.workdir, "hookmq.conf")
        hqtest.write_config(self.config, """
broker = {
  uris = [ %s ];
  exchange = "hookmq.events";
  heartbeat_s = 5;
};
gateway = {
  listen = "127.0.0.1:%d";
  metrics_listen = "127.0.0.1:%d";
  max_body_bytes = 1048576;
  max_in_flight = %d;
  confirm_timeout_ms = %d;
  %s
  trusted_proxies = [ "127.0.0.2/32" ];
  %s
};
sources = (
%s
);
log = { format = "text"; level = "info"; };
""" % (", ".join('"%s"' % u for u in uris), self.port, self.metrics_port, max_in_flight,
       confirm_timeout_ms, ('spool_dir = "%s";' % self.spool_dir) if spool else "", gateway_extra,
       sources))
        self.env = env or {}
        self.proc = None

    def apply(self):
        hqtest.run_dlx_apply(self.config)

    def start(self, wait=True):
        self.proc = hqtest.Proc([hqtest.binary("hookmq-gateway"), "-c", self.config], env=self.env,
                                name="gateway", workdir=self.workdir)
        if wait:
            hqtest.wait_http(self.port, proc=self.proc)
        return self

    def post(self, source, body, headers, path=None, timeout=30):
        return hqtest.http_request(self.port, "POST", path or "/webhooks/" + source, body, headers,
                                   timeout=timeout)

    def metrics(self):
        return hqtest.http_request(self.metrics_port, "GET", "/metrics")[2].decode()

    def stop(self):
        if self.proc and self.proc.alive():
            return self.proc.stop()
        return None
