/* hookmq console: the event page (/events/<id>?source=S). Everything from the event (headers,
 * body, errors) is shown with textContent. */
"use strict";

window.eventPage = {
  body: null,

  kvRows: function (table, obj) {
    var tbody = document.querySelector("#" + table + " tbody");
    tbody.replaceChildren();
    Object.keys(obj || {}).sort().forEach(function (k) {
      var v = obj[k];
      var tr = document.createElement("tr");
      tr.appendChild(hq.el("th", k));
      tr.appendChild(hq.el("td", typeof v === "string" ? v : JSON.stringify(v)));
      tbody.appendChild(tr);
    });
  },

  decode: function (b64) {
    var bin = atob(b64 || "");
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  },

  /* the body as text: UTF-8 when it is, else each byte shown as \xHH */
  text: function (bytes) {
    try {
      return { utf8: true, text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
    } catch (e) {
      var s = "";
      for (var i = 0; i < bytes.length; i++) {
        var c = bytes[i];
        s += (c >= 0x20 && c < 0x7f) || c === 0x0a ? String.fromCharCode(c)
          : "\\x" + (c < 16 ? "0" : "") + c.toString(16);
      }
      return { utf8: false, text: s };
    }
  },

  show: function (pretty) {
    var b = window.eventPage.body;
    var out = b.text;
    if (pretty && b.utf8) {
      try { out = JSON.stringify(JSON.parse(b.text), null, 2); } catch (e) { out = b.text; }
    }
    document.getElementById("body").textContent = out;
  },

  render: function (r) {
    var ev = r.event;
    var page = window.eventPage;
    document.getElementById("ev-status").textContent = r.status;
    document.getElementById("ev-status").className = "badge " + r.status;
    var dl = document.getElementById("summary");
    dl.replaceChildren();
    if (ev) {
      [["Source", ev.source], ["Type", ev.type], ["Routing key", ev.routing_key],
       ["Received", ev.received_at], ["Size", ev.size + " bytes"],
       ["Copies in the archive", ev.copies]].forEach(function (p) {
        dl.appendChild(hq.el("dt", p[0]));
        dl.appendChild(hq.el("dd", p[1]));
      });
      page.kvRows("properties", ev.properties);
      page.kvRows("headers", ev.headers);
      var bytes = page.decode(ev.body_b64);
      page.body = page.text(bytes);
      document.getElementById("body-info").textContent =
        page.body.utf8 ? "" : "(not UTF-8: bytes shown as \\xHH)";
      page.show(true);
      var a = document.getElementById("download");
      a.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
    } else {
      dl.appendChild(hq.el("dt", "Event"));
      dl.appendChild(hq.el("dd", "no event record in the archive (only its lifecycle records)"));
    }
    var tbody = document.querySelector("#history tbody");
    tbody.replaceChildren();
    r.history.forEach(function (h) {
      var tr = document.createElement("tr");
      tr.appendChild(hq.el("td", h.at));
      tr.appendChild(hq.el("td", h.kind === "received" ? "gateway" : h.consumer));
      tr.appendChild(hq.el("td", h.attempt ? "#" + h.attempt : ""));
      tr.appendChild(hq.el("td", h.kind === "received" ? "received" : h.verdict));
      var d = [];
      if (h.type) d.push("type " + h.type);
      if (h.tier) d.push("tier " + h.tier);
      if (h.error) d.push("error: " + h.error);
      if (h.by) d.push("by " + h.by);
      tr.appendChild(hq.el("td", d.join("  ")));
      tbody.appendChild(tr);
    });
    page.actions(r, ev ? ev.source : null);
    document.getElementById("detail").hidden = false;
  },

  /* operators: a redrive button per consumer whose last outcome was dead-lettering, and a link
   * to replay the event */
  actions: function (r, source) {
    var id = document.getElementById("ev-id").textContent;
    var last = {};
    if (!source || hq.session.role !== "operator" || hq.session.read_only) return;
    r.history.forEach(function (h) { if (h.kind === "lifecycle") last[h.consumer] = h.verdict; });
    var p = document.getElementById("redrive-buttons");
    p.replaceChildren();
    Object.keys(last).sort().forEach(function (consumer) {
      if (last[consumer] !== "dead_lettered") return;
      var b = hq.el("button", "Redrive to " + consumer);
      b.type = "button";
      b.addEventListener("click", function () {
        hq.api("POST", "/api/dlq/" + encodeURIComponent(consumer) + "/redrive",
               { filter: { id: id, source: source } }).then(function (res) {
          document.getElementById("result").textContent = res.redriven
            ? "redriven to " + consumer : "not parked in " + consumer + " any more";
          b.disabled = true;
        }).catch(function (e) { hq.showError(e.message); });
      });
      p.appendChild(b);
      p.appendChild(document.createTextNode(" "));
    });
    /* replay this one event (id and source) to a consumer picked on the replay page */
    var rl = hq.el("a", "Replay to a consumer");
    rl.id = "replay-link";
    rl.href = "/replay?id=" + encodeURIComponent(id) + "&source=" + encodeURIComponent(source);
    p.appendChild(rl);
    document.getElementById("actions").hidden = !p.firstChild;
  },

  init: function () {
    var id = decodeURIComponent(window.location.pathname.slice("/events/".length));
    var source = new URLSearchParams(window.location.search).get("source");
    document.getElementById("ev-id").textContent = id;
    document.title = "hookmq console: event " + id;
    document.getElementById("view-pretty").addEventListener("click", function () { window.eventPage.show(true); });
    document.getElementById("view-raw").addEventListener("click", function () { window.eventPage.show(false); });
    var path = "/api/events/" + encodeURIComponent(id) + (source ? "?source=" + encodeURIComponent(source) : "");
    hq.api("GET", path).then(window.eventPage.render).catch(function (e) {
      if (e.status === 409 && e.body && e.body.sources) {
        var ul = document.getElementById("sources");
        e.body.sources.forEach(function (s) {
          var li = document.createElement("li");
          li.appendChild(hq.eventLink({ id: id, source: s }));
          li.appendChild(document.createTextNode(" from " + s));
          ul.appendChild(li);
        });
        document.getElementById("sources-choice").hidden = false;
      } else {
        hq.showError(e.message);
      }
    });
  }
};
