"""console_fixture: start a hookmq-console with a generated config and talk to it as a browser
does (session cookie, CSRF token) for the console's system tests (python3 standard library
only).

Password hashes are made here with hashlib (PBKDF2-SHA256, 100000 iterations, the format of
docs/console.md), independently of the C code."""
import base64
import hashlib
import http.client
import json
import os
import tempfile
import urllib.parse

import hqtest


def pbkdf2_hash(password, iterations=100000, salt=None):
    salt = salt or os.urandom(16)
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
    return "$pbkdf2-sha256$i=%d$%s$%s" % (iterations, b64(salt), b64(dk))


# name -> (password, role)
USERS = {"ops": ("pw-ops-Zq81", "operator"), "ro": ("pw-ro-Kd07", "viewer")}


class Console:
    def __init__(self, users=None, extra="", archive_dir=None, workdir=None, base=None):
        """extra: more console keys; base: the config text before the archive and console
        groups (default: the test broker and a log group)."""
        self.workdir = workdir or tempfile.mkdtemp(prefix="hq-cs-")
        self.port = hqtest.free_port()
        self.users = dict(users or USERS)
        self.hashes = {n: pbkdf2_hash(pw) for n, (pw, _r) in self.users.items()}
        self.archive_dir = archive_dir or os.path.join(self.workdir, "archive")
        os.makedirs(self.archive_dir, exist_ok=True)
        self.config = os.path.join(self.workdir, "hookmq.conf")
        ulines = ",\n".join('    { name = "%s"; password_hash = "%s"; role = "%s"; }'
                            % (n, self.hashes[n], r) for n, (_pw, r) in self.users.items())
        if base is None:
            base = ('broker = { uris = [ "%s" ]; heartbeat_s = 5; };\n'
                    'log = { format = "text"; level = "info"; };\n' % hqtest.AMQP_URI)
        hqtest.write_config(self.config, base + """
archive = { dir = "%s"; };
console = {
  listen = "127.0.0.1:%d";
  users = (
%s
  );
  %s
};
""" % (self.archive_dir, self.port, ulines, extra))
        self.proc = None

    def start(self):
        self.proc = hqtest.Proc([hqtest.binary("hookmq-console"), "-c", self.config],
                                name="console", workdir=self.workdir)
        hqtest.wait_http(self.port, proc=self.proc)
        return self

    def stop(self):
        if self.proc and self.proc.alive():
            return self.proc.stop()
        return None

    def output(self):
        return self.proc.output() if self.proc else ""

    # ---- HTTP
    def request(self, method, path, body=b"", headers=None, session=None):
        h = dict(headers or {})
        if session is not None:
            h["Cookie"] = "hq_session=" + session.token
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            hdrs = [(k.lower(), v) for k, v in r.getheaders()]
            return r.status, hdrs, r.read()
        finally:
            c.close()

    def login_raw(self, user, password):
        body = urllib.parse.urlencode({"user": user, "password": password}).encode()
        return self.request("POST", "/login", body,
                            {"Content-Type": "application/x-www-form-urlencoded"})

    def login(self, user):
        st, hdrs, body = self.login_raw(user, self.users[user][0])
        assert st == 303, (st, body)
        cookie = [v for k, v in hdrs if k == "set-cookie"]
        assert len(cookie) == 1, hdrs
        tok = cookie[0].split(";")[0].split("=", 1)[1]
        s = Session(tok, cookie[0])
        st, _h, b = self.request("GET", "/api/session", session=s)
        assert st == 200, (st, b)
        s.info = json.loads(b)
        s.csrf = s.info["csrf"]
        return s

    def get_json(self, path, session, ok=200):
        st, _h, b = self.request("GET", path, session=session)
        assert st == ok, (path, st, b)
        return json.loads(b)

    def post(self, path, session, obj=None, csrf=True, token=None):
        h = {"Content-Type": "application/json"}
        if csrf:
            h["X-CSRF-Token"] = token if token is not None else session.csrf
        return self.request("POST", path, json.dumps(obj or {}).encode(), h, session=session)


class Session:
    def __init__(self, token, set_cookie):
        self.token = token
        self.set_cookie = set_cookie
        self.csrf = None
        self.info = None


def header(hdrs, name):
    vals = [v for k, v in hdrs if k == name.lower()]
    return vals[0] if vals else None
