/* hookmq console: the replay page (/replay). Pick a window, filters, a target consumer and a
 * rate; a dry run shows the count and a sample; a replay runs in the console
 * (POST /api/replays), its progress is polled (GET /api/replays/<n>) until it ends, and it can
 * be stopped (POST /api/replays/<n>/stop). Everything from the server goes in with
 * textContent. /replay?id=ID&source=S (from an event's page) fills the form. */
"use strict";

window.replayPage = {
  current: null,
  timer: null,
  FIELDS: ["from", "to", "source", "type", "id", "grep", "consumer"],

  request: function (dry) {
    var body = { dry_run: dry };
    window.replayPage.FIELDS.forEach(function (k) {
      var v = document.getElementById("r-" + k).value.trim();
      if (v) body[k] = v;
    });
    var rate = document.getElementById("r-rate").value.trim();
    if (rate) body.rate = Number(rate);
    return body;
  },

  dryRun: function () {
    var page = window.replayPage;
    hq.showError("");
    hq.api("POST", "/api/replays", page.request(true)).then(function (r) {
      document.getElementById("dry-count").textContent = r.count + " event" + (r.count === 1 ? "" : "s") +
        " would be replayed to " + r.consumer + " as " + r.replay_id +
        (r.earlier ? " (" + r.earlier + " already confirmed by an earlier run)" : "") +
        (r.not_matching_bindings ? "; " + r.not_matching_bindings + " not matching its bindings" : "") +
        (/already completed/.test(r.message || "") ? ". " + r.message : "");
      var tbody = document.querySelector("#sample tbody");
      tbody.replaceChildren();
      r.sample.forEach(function (ev) {
        /* the events page's row (received, source, type, id as a link), the routing key last */
        var tr = events.row(ev);
        tr.replaceChild(hq.el("td", ev.routing_key), tr.lastChild);
        tbody.appendChild(tr);
      });
      document.getElementById("dry").hidden = false;
    }).catch(function (e) { hq.showError(e.message); });
  },

  start: function () {
    var page = window.replayPage;
    hq.showError("");
    hq.api("POST", "/api/replays", page.request(false)).then(function (r) {
      page.show(r);
      page.list();
    }).catch(function (e) { hq.showError(e.message); });
  },

  show: function (r) {
    var page = window.replayPage;
    page.current = r.n;
    document.getElementById("cur-n").textContent = "#" + r.n + " " + r.replay_id;
    var st = document.getElementById("cur-state");
    st.textContent = r.state;
    st.className = "badge " + r.state;
    var dl = document.getElementById("summary");
    dl.replaceChildren();
    [["Target consumer", r.consumer], ["Started by", r.user], ["Started", r.started_at],
     ["Ended", r.ended_at || ""], ["Matched", r.matched], ["Published", r.published],
     ["Confirmed", r.confirmed], ["Done (with earlier runs)", r.done + " / " + r.matched],
     ["Failed", r.failed], ["Stopped by", r.stopped_by || ""], ["Error", r.error || ""]
    ].forEach(function (p) {
      dl.appendChild(hq.el("dt", p[0]));
      dl.appendChild(hq.el("dd", p[1], p[0] === "Error" ? "error" : null));
    });
    var ul = document.getElementById("cur-messages");
    ul.replaceChildren();
    r.messages.forEach(function (m) { ul.appendChild(hq.el("li", m)); });
    document.getElementById("stop").hidden = r.state !== "running" || !page.operator();
    document.getElementById("current").hidden = false;
    if (page.timer) clearTimeout(page.timer);
    page.timer = r.state === "running" ? setTimeout(page.poll, 1000) : null;
  },

  poll: function () {
    var page = window.replayPage;
    hq.api("GET", "/api/replays/" + page.current).then(function (r) {
      page.show(r);
      if (r.state !== "running") page.list();
    }).catch(function (e) { hq.showError(e.message); });
  },

  stop: function () {
    var page = window.replayPage;
    hq.api("POST", "/api/replays/" + page.current + "/stop").then(page.show)
      .catch(function (e) { hq.showError(e.message); });
  },

  list: function () {
    hq.api("GET", "/api/replays").then(function (r) {
      var tbody = document.querySelector("#replays tbody");
      tbody.replaceChildren();
      r.replays.forEach(function (x) {
        var tr = document.createElement("tr");
        var td = hq.el("td");
        var a = hq.el("a", "#" + x.n);
        a.href = "#";
        a.addEventListener("click", function (e) {
          e.preventDefault();
          window.replayPage.show(x);
        });
        td.appendChild(a);
        tr.appendChild(td);
        tr.appendChild(hq.el("td", x.replay_id));
        tr.appendChild(hq.el("td", x.user));
        tr.appendChild(hq.el("td", x.consumer));
        td = hq.el("td");
        td.appendChild(hq.badge(x.state));
        tr.appendChild(td);
        tr.appendChild(hq.el("td", x.done + " / " + x.matched));
        tr.appendChild(hq.el("td", x.started_at));
        tbody.appendChild(tr);
      });
    }).catch(function (e) { hq.showError(e.message); });
  },

  operator: function () {
    return hq.session.role === "operator" && !hq.session.read_only;
  },

  init: function () {
    var page = window.replayPage;
    var url = new URLSearchParams(window.location.search);
    page.FIELDS.forEach(function (k) {
      if (url.get(k)) document.getElementById("r-" + k).value = url.get(k);
    });
    document.getElementById("filters").addEventListener("submit", function (e) {
      e.preventDefault();
      page.dryRun();
    });
    document.getElementById("start").addEventListener("click", function () {
      if (document.getElementById("filters").reportValidity()) page.start();
    });
    document.getElementById("stop").addEventListener("click", page.stop);
    if (!page.operator()) {
      document.getElementById("dry-run").disabled = true;
      document.getElementById("start").disabled = true;
      document.getElementById("readonly-note").hidden = false;
    }
    hq.api("GET", "/api/consumers").then(function (r) {
      var dl = document.getElementById("consumer-names");
      r.consumers.forEach(function (c) {
        var o = document.createElement("option");
        o.value = c.name;
        dl.appendChild(o);
      });
    }).catch(function () { /* names are a convenience: the broker may be away */ });
    page.list();
  }
};
