"""hookmq-console: log-in, sessions and every permission check (docs/console.md, "Users and
roles"): no session, bad CSRF token, viewer vs operator, read_only, expired session, log-out,
the log-in rate limit, the cookie's flags, the security headers, the command line
(--check, --version, hash-password), and that no password or hash reaches the log."""
import json
import os
import re
import subprocess
import tempfile
import unittest

import hqtest
from console_fixture import Console, header

ACTIONS = ["/api/dlq/billing/redrive", "/api/dlq/billing/evt_1/edit", "/api/replays",
           "/api/replays/1/stop"]


class ConsoleAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cs = Console().start()

    @classmethod
    def tearDownClass(cls):
        out = cls.cs.output()
        assert cls.cs.stop() == 0, out
        # no password or hash ever reaches the log
        for name, (pw, _r) in cls.cs.users.items():
            assert pw not in out, name
            assert cls.cs.hashes[name] not in out, name
            assert cls.cs.hashes[name].split("$")[-1] not in out, name

    def test_no_session(self):
        for path in ["/api/session", "/api/events", "/api/events/x", "/api/consumers"]:
            st, _h, b = self.cs.request("GET", path)
            self.assertEqual(st, 401, path)
            self.assertIn("log in", json.loads(b)["error"])
        for path in ACTIONS + ["/logout"]:
            st, _h, _b = self.cs.request("POST", path, b"{}", {"X-CSRF-Token": "0" * 64})
            self.assertEqual(st, 401, path)
        # a forged cookie is no session either
        st, _h, _b = self.cs.request("GET", "/api/session", headers={"Cookie": "hq_session=" + "a" * 64})
        self.assertEqual(st, 401)
        # pages send the browser to the log-in page
        for path in ["/", "/events/evt_1"]:
            st, h, _b = self.cs.request("GET", path)
            self.assertEqual(st, 303, path)
            self.assertEqual(header(h, "location"), "/login")
        st, _h, b = self.cs.request("GET", "/login")
        self.assertEqual(st, 200)
        self.assertIn(b'action="/login"', b)

    def test_login_and_cookie(self):
        st, h, _b = self.cs.login_raw("ops", self.cs.users["ops"][0])
        self.assertEqual(st, 303)
        self.assertEqual(header(h, "location"), "/")
        cookie = header(h, "set-cookie")
        self.assertRegex(cookie, r"^hq_session=[0-9a-f]{64}; Path=/; Max-Age=28800; ")
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertNotIn("Secure", cookie)  # plain HTTP on loopback; see secure_cookie below
        s = self.cs.login("ops")
        self.assertEqual(s.info["user"], "ops")
        self.assertEqual(s.info["role"], "operator")
        self.assertRegex(s.csrf, r"^[0-9a-f]{64}$")
        self.assertFalse(s.info["read_only"])
        v = self.cs.login("ro")
        self.assertEqual(v.info["role"], "viewer")
        self.assertNotEqual(v.token, s.token)
        self.assertNotEqual(v.csrf, s.csrf)

    def test_wrong_credentials(self):
        for user, pw in [("ops", "wrong"), ("ops", ""), ("nobody", "pw-ops-Zq81"),
                         ("ro", self.cs.users["ops"][0])]:
            st, h, b = self.cs.login_raw(user, pw)
            self.assertIn(st, (400, 401), (user, st))
            self.assertIsNone(header(h, "set-cookie"))
            self.assertIn(b"<form", b)
        st, _h, _b = self.cs.login_raw("ops", "wrong")
        self.assertEqual(st, 401)

    def test_csrf(self):
        s = self.cs.login("ops")
        for path in ACTIONS + ["/logout"]:
            st, _h, b = self.cs.post(path, s, csrf=False)
            self.assertEqual(st, 403, (path, b))
            self.assertIn("X-CSRF-Token", json.loads(b)["error"])
            st, _h, b = self.cs.post(path, s, token="f" * 64)
            self.assertEqual(st, 403, (path, b))
            st, _h, b = self.cs.post(path, s, token=s.csrf[:-1])
            self.assertEqual(st, 403, (path, b))
        # another session's token does not do either
        other = self.cs.login("ops")
        st, _h, _b = self.cs.post("/logout", s, token=other.csrf)
        self.assertEqual(st, 403)
        # the session survived every refused log-out
        self.assertEqual(self.cs.get_json("/api/session", s)["user"], "ops")

    def test_viewer_vs_operator(self):
        v = self.cs.login("ro")
        o = self.cs.login("ops")
        for path in ACTIONS:
            st, _h, b = self.cs.post(path, v)
            self.assertEqual(st, 403, (path, b))
            self.assertIn("viewer", json.loads(b)["error"])
            st, _h, b = self.cs.post(path, o)
            self.assertNotIn(st, (401, 403), (path, b))
        self.assertIn("action refused: role viewer", self.cs.output())
        # actions are POST only
        st, _h, _b = self.cs.request("GET", ACTIONS[0], session=o)
        self.assertEqual(st, 405)
        # reading is for both roles
        for s in (v, o):
            self.assertEqual(self.cs.get_json("/api/events", s)["events"], [])

    def test_logout(self):
        s = self.cs.login("ro")
        st, h, _b = self.cs.post("/logout", s)
        self.assertEqual(st, 204)
        self.assertIn("Max-Age=0", header(h, "set-cookie"))
        st, _h, _b = self.cs.request("GET", "/api/session", session=s)
        self.assertEqual(st, 401)

    def test_security_headers(self):
        s = self.cs.login("ro")
        for path, sess in [("/", s), ("/events/e1", s), ("/login", None), ("/api/session", s),
                           ("/api/events", None), ("/static/app.js", None)]:
            st, h, _b = self.cs.request("GET", path, session=sess)
            self.assertIn(st, (200, 401), path)
            csp = header(h, "content-security-policy")
            self.assertTrue(csp.startswith("default-src 'self'"), csp)
            self.assertIn("frame-ancestors 'none'", csp)
            self.assertNotIn("unsafe-inline", csp)
            self.assertEqual(header(h, "x-frame-options"), "DENY")
            self.assertEqual(header(h, "x-content-type-options"), "nosniff")
        # the pages carry no inline script or style: the CSP would refuse it
        for path in ["/", "/events/e1"]:
            _st, _h, b = self.cs.request("GET", path, session=s)
            self.assertNotRegex(b.decode(), r"<script>|<script [^>]*>[^<]|<style| on[a-z]+=")


class ConsoleReadOnlyAndSecure(unittest.TestCase):
    def test_read_only_refuses_every_action(self):
        cs = Console(extra="read_only = true; secure_cookie = true;").start()
        try:
            st, h, _b = cs.login_raw("ops", cs.users["ops"][0])
            self.assertEqual(st, 303)
            self.assertIn("; Secure", header(h, "set-cookie"))
            o = cs.login("ops")
            self.assertTrue(o.info["read_only"])
            for path in ACTIONS:
                st, _h, b = cs.post(path, o)
                self.assertEqual(st, 403, (path, b))
                self.assertIn("read-only", json.loads(b)["error"])
            # reading and logging out still work
            self.assertEqual(cs.get_json("/api/events", o)["events"], [])
            st, _h, _b = cs.post("/logout", o)
            self.assertEqual(st, 204)
        finally:
            self.assertEqual(cs.stop(), 0)


class ConsoleExpiry(unittest.TestCase):
    def test_session_expires(self):
        cs = Console(extra='session_ttl = "2s";').start()
        try:
            s = cs.login("ops")
            self.assertIn("Max-Age=2;", s.set_cookie)
            hqtest.wait_for(lambda: cs.request("GET", "/api/session", session=s)[0] == 401, 20,
                            what="the session to expire")
            st, _h, _b = cs.post("/api/replays", s)
            self.assertEqual(st, 401)
            st, h, _b = cs.request("GET", "/", session=s)
            self.assertEqual(st, 303)
        finally:
            self.assertEqual(cs.stop(), 0)


class ConsoleRateLimit(unittest.TestCase):
    def test_login_attempts_are_limited(self):
        cs = Console().start()
        try:
            for _ in range(5):
                st, _h, _b = cs.login_raw("ops", "guess")
                self.assertEqual(st, 401)
            # the sixth attempt is refused without checking, even with the right password
            st, h, b = cs.login_raw("ops", cs.users["ops"][0])
            self.assertEqual(st, 429, b)
            self.assertGreater(int(header(h, "retry-after")), 0)
            self.assertLessEqual(int(header(h, "retry-after")), 60)
            self.assertIsNone(header(h, "set-cookie"))
            # another name is not held up by them...
            self.assertEqual(cs.login("ro").info["user"], "ro")
            # ... until 20 failures came from this address: then every name waits
            for i in range(15):
                st, _h, _b = cs.login_raw("guess%d" % i, "guess")
                self.assertEqual(st, 401)
            st, _h, _b = cs.login_raw("ro", cs.users["ro"][0])
            self.assertEqual(st, 429)
            self.assertIn("too many failed attempts", cs.output())
        finally:
            self.assertEqual(cs.stop(), 0)


class ConsoleCommandLine(unittest.TestCase):
    def run_console(self, *args, stdin=b""):
        r = subprocess.run([hqtest.binary("hookmq-console")] + list(args), input=stdin,
                           capture_output=True, timeout=60)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def test_check_version_help(self):
        cs = Console()
        rc, out, _err = self.run_console("-c", cs.config, "--check")
        self.assertEqual(rc, 0)
        self.assertIn("ok (console on 127.0.0.1:%d, 2 users)" % cs.port, out)
        rc, out, _err = self.run_console("--version")
        self.assertEqual((rc, out.split()[0]), (0, "hookmq-console"))
        rc, out, _err = self.run_console("--help")
        self.assertEqual(rc, 0)
        self.assertIn("hash-password", out)
        rc, _out, err = self.run_console("--bogus")
        self.assertEqual(rc, 2)
        self.assertIn("unknown argument", err)

    def test_config_errors(self):
        d = tempfile.mkdtemp(prefix="hq-cs-")
        bad = hqtest.write_config(os.path.join(d, "bad.conf"),
                                  'console = {\n  users = ( { name = "a"; password_hash = "secret-pw";'
                                  ' role = "viewer"; } );\n};\n')
        rc, _out, err = self.run_console("-c", bad, "--check")
        self.assertEqual(rc, 2)
        self.assertRegex(err, r"bad.conf:2: console.users\[0\].password_hash: not a password hash")
        self.assertNotIn("secret-pw", err)
        nousers = hqtest.write_config(os.path.join(d, "nousers.conf"), 'console = { read_only = true; };\n')
        rc, _out, err = self.run_console("-c", nousers, "--check")
        self.assertEqual(rc, 2)
        self.assertIn("no users", err)

    def test_hash_password(self):
        rc, out, _err = self.run_console("hash-password", stdin=b"correct horse\n")
        self.assertEqual(rc, 0)
        h = out.strip()
        m = re.match(r"^\$pbkdf2-sha256\$i=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$", h)
        self.assertIsNotNone(m, h)
        self.assertGreaterEqual(int(m.group(1)), 600000)
        # the hash logs in (the C KDF against the config) and the password is not in it
        self.assertNotIn("correct horse", h)
        cs = Console(users={"cli": ("correct horse", "viewer")})
        cs.hashes["cli"] = h
        with open(cs.config) as f:
            text = f.read()
        text = re.sub(r'password_hash = "[^"]*"', 'password_hash = "%s"' % h.replace("\\", "\\\\"), text)
        hqtest.write_config(cs.config, text)
        cs.start()
        try:
            self.assertEqual(cs.login("cli").info["user"], "cli")
        finally:
            self.assertEqual(cs.stop(), 0)
        for bad in (b"", b"\n"):
            rc, out, err = self.run_console("hash-password", stdin=bad)
            self.assertEqual(rc, 2)
            self.assertEqual(out, "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
