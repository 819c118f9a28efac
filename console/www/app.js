/* hookmq console: shared helpers and the events page. Every value from the server is put in
 * the page with textContent (never innerHTML), so event data cannot become markup. */
"use strict";

var hq = {
  session: null,

  el: function (tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  },

  showError: function (msg) {
    var p = document.getElementById("error");
    if (!p) return;
    p.textContent = msg || "";
    p.hidden = !msg;
  },

  /* GET or POST JSON; a 401 sends the browser to the log-in page */
  api: function (method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: {} };
    if (method !== "GET" && hq.session) opts.headers["X-CSRF-Token"] = hq.session.csrf;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (r) {
      if (r.status === 401) {
        window.location.assign("/login");
        throw new Error("not logged in");
      }
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          var e = new Error(j.error || ("HTTP " + r.status));
          e.status = r.status;
          e.body = j;
          throw e;
        }
        return j;
      });
    });
  },

  start: function () {
    return hq.api("GET", "/api/session").then(function (s) {
      hq.session = s;
      document.getElementById("who").textContent = s.user + " (" + s.role + (s.read_only ? ", read-only" : "") + ")";
      document.getElementById("logout").addEventListener("click", function () {
        hq.api("POST", "/logout").catch(function () {}).then(function () {
          window.location.assign("/login");
        });
      });
      return s;
    });
  },

  badge: function (status) {
    return hq.el("span", status, "badge " + status);
  },

  eventLink: function (ev) {
    var a = hq.el("a", ev.id);
    a.href = "/events/" + encodeURIComponent(ev.id) + "?source=" + encodeURIComponent(ev.source);
    return a;
  }
};

/* ---- the events page */

var events = {
  next: null,
  keys: {},
  rows: 0,
  timer: null,
  MAX_ROWS: 500,

  params: function (cursor) {
    var q = new URLSearchParams();
    ["id", "source", "type", "from", "to", "grep"].forEach(function (k) {
      var v = document.getElementById("f-" + k).value.trim();
      if (v) q.set(k, v);
    });
    if (cursor) q.set("cursor", cursor);
    return q;
  },

  row: function (ev) {
    var tr = document.createElement("tr");
    tr.dataset.key = events.key(ev);
    tr.appendChild(hq.el("td", ev.received_at));
    tr.appendChild(hq.el("td", ev.source));
    tr.appendChild(hq.el("td", ev.type));
    var td = hq.el("td");
    td.appendChild(hq.eventLink(ev));
    tr.appendChild(td);
    td = hq.el("td");
    td.appendChild(hq.badge(ev.status));
    tr.appendChild(td);
    return tr;
  },

  key: function (ev) { return ev.source + "\u0000" + ev.id; },

  hex: function (s) {
    return Array.from(new TextEncoder().encode(s), function (b) {
      return (b < 16 ? "0" : "") + b.toString(16);
    }).join("");
  },

  /* the key of ev in the form of a cursor (console/events.c): the live tail's "after" */
  cursorOf: function (ev) {
    return "v1." + ev.received_at_ms + "." + events.hex(ev.source) + "." + events.hex(ev.id);
  },

  /* the newest of evs (they come newest first) above the current top */
  raiseTop: function (evs) {
    if (evs.length && (!events.topEv || events.cmp(evs[0], events.topEv) > 0)) events.topEv = evs[0];
    events.top = events.topEv ? events.cursorOf(events.topEv) : null;
  },

  cmp: function (a, b) {
    if (a.received_at_ms !== b.received_at_ms) return a.received_at_ms < b.received_at_ms ? -1 : 1;
    var x = events.hex(a.source), y = events.hex(b.source);
    if (x !== y) return x < y ? -1 : 1;
    x = events.hex(a.id); y = events.hex(b.id);
    return x < y ? -1 : x > y ? 1 : 0;
  },

  load: function (append) {
    var q = events.params(append ? events.next : null);
    var tbody = document.querySelector("#events tbody");
    hq.showError("");
    /* keep the filters in the address, so a search can be bookmarked */
    if (!append) {
      var qs = events.params(null).toString();
      history.replaceState(null, "", qs ? "/?" + qs : "/");
    }
    return hq.api("GET", "/api/events?" + q.toString()).then(function (r) {
      if (!append) {
        tbody.replaceChildren();
        events.keys = {};
        events.rows = 0;
      }
      r.events.forEach(function (ev) {
        events.keys[events.key(ev)] = true;
        tbody.appendChild(events.row(ev));
        events.rows++;
      });
      events.next = r.next;
      if (!append) {
        events.topEv = null;
        events.raiseTop(r.events);
      }
      document.getElementById("more").hidden = !r.next;
      document.getElementById("empty").hidden = events.rows > 0;
    }).catch(function (e) { hq.showError(e.message); });
  },

  /* live tail: ask for the events above the newest one shown (after=top) every POLL_MS, one
   * request at a time, backing off to BACKOFF_MAX_MS after errors, paused while the tab is
   * hidden; new rows go on top and the table keeps at most MAX_ROWS */
  top: null,
  topEv: null,
  busy: false,
  delay: 0,
  POLL_MS: 2000,
  BACKOFF_MAX_MS: 60000,

  poll: function () {
    events.timer = null;
    if (!document.getElementById("live").checked) return;
    if (document.hidden) return; /* visibilitychange starts it again */
    if (events.busy) return;
    events.busy = true;
    var q = events.params(null);
    if (events.top) q.set("after", events.top);
    q.set("limit", "100");
    var tbody = document.querySelector("#events tbody");
    hq.api("GET", "/api/events?" + q.toString()).then(function (r) {
      var fresh = r.events.filter(function (ev) { return !events.keys[events.key(ev)]; });
      fresh.reverse().forEach(function (ev) {
        events.keys[events.key(ev)] = true;
        var tr = events.row(ev);
        tr.className = "new";
        tbody.insertBefore(tr, tbody.firstChild);
        events.rows++;
      });
      events.raiseTop(r.events);
      while (events.rows > events.MAX_ROWS && tbody.lastChild) {
        delete events.keys[tbody.lastChild.dataset.key];
        tbody.removeChild(tbody.lastChild);
        events.rows--;
      }
      document.getElementById("empty").hidden = events.rows > 0;
      events.delay = events.POLL_MS;
      hq.showError("");
    }).catch(function (e) {
      events.delay = Math.min(Math.max(events.delay, events.POLL_MS) * 2, events.BACKOFF_MAX_MS);
      hq.showError("Live tail: " + e.message);
    }).then(function () {
      events.busy = false;
      events.schedule();
    });
  },

  schedule: function () {
    if (events.timer) clearTimeout(events.timer);
    events.timer = null;
    if (document.getElementById("live").checked && !document.hidden)
      events.timer = setTimeout(events.poll, events.delay || events.POLL_MS);
  },

  init: function () {
    var url = new URLSearchParams(window.location.search);
    ["id", "source", "type", "from", "to", "grep"].forEach(function (k) {
      if (url.get(k)) document.getElementById("f-" + k).value = url.get(k);
    });
    document.getElementById("filters").addEventListener("submit", function (e) {
      e.preventDefault();
      events.load(false);
    });
    document.getElementById("more").addEventListener("click", function () { events.load(true); });
    document.getElementById("live").addEventListener("change", function () {
      events.delay = events.POLL_MS;
      events.schedule();
    });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) events.delay = 1;
      events.schedule();
    });
    events.load(false);
  }
};

document.addEventListener("DOMContentLoaded", function () {
  hq.start().then(function () {
    var page = document.body.dataset.page;
    if (page === "events") events.init();
    else if (page === "event" && window.eventPage) window.eventPage.init();
    else if (page === "consumers" && window.consumersPage) window.consumersPage.init();
    else if (page === "sources" && window.sourcesPage) window.sourcesPage.init();
    else if (page === "dlq" && window.dlqPage) window.dlqPage.init();
    else if (page === "replay" && window.replayPage) window.replayPage.init();
  }).catch(function (e) { hq.showError(e.message); });
});
