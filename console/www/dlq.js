/* hookmq console: a consumer's dead letters (GET /api/dlq/<consumer>): the parked events with
 * their failure, read and put back in order; operators redrive a selection or all that match
 * a filter (POST /api/dlq/<consumer>/redrive). Text only (textContent). */
"use strict";

window.dlqPage = {
  consumer: null,

  load: function () {
    var page = window.dlqPage;
    return hq.api("GET", "/api/dlq/" + encodeURIComponent(page.consumer)).then(function (r) {
      var tbody = document.querySelector("#dlq tbody");
      tbody.replaceChildren();
      r.messages.forEach(function (m) {
        var tr = document.createElement("tr");
        var td = hq.el("td");
        var box = document.createElement("input");
        box.type = "checkbox";
        box.className = "pick";
        box.value = m.id;
        td.appendChild(box);
        tr.appendChild(td);
        tr.appendChild(hq.el("td", m.failed_at || "?"));
        tr.appendChild(hq.el("td", m.source));
        tr.appendChild(hq.el("td", m.type));
        td = hq.el("td");
        td.appendChild(hq.eventLink({ id: m.id, source: m.source }));
        tr.appendChild(td);
        tr.appendChild(hq.el("td", m.attempts));
        tr.appendChild(hq.el("td", m.redriven));
        tr.appendChild(hq.el("td", (m.reason ? m.reason + ": " : "") + m.last_error));
        tbody.appendChild(tr);
      });
      document.getElementById("summary").textContent = r.depth + " parked in " + r.queue +
        (r.more ? " (the first " + r.messages.length + " shown)" : "");
    }).catch(function (e) { hq.showError(e.message); });
  },

  redrive: function (body) {
    var page = window.dlqPage;
    hq.showError("");
    return hq.api("POST", "/api/dlq/" + encodeURIComponent(page.consumer) + "/redrive", body)
      .then(function (r) {
        document.getElementById("result").textContent =
          "redriven " + r.redriven + " of " + r.matched + " matching; " + r.left + " left";
        return page.load();
      }).catch(function (e) { hq.showError(e.message); });
  },

  init: function () {
    var page = window.dlqPage;
    page.consumer = decodeURIComponent(window.location.pathname.slice("/dlq/".length));
    document.getElementById("consumer").textContent = page.consumer;
    document.title = "hookmq console: dead letters of " + page.consumer;
    if (hq.session.role === "operator" && !hq.session.read_only) {
      document.getElementById("actions").hidden = false;
      document.getElementById("redrive-selected").addEventListener("click", function () {
        var ids = Array.from(document.querySelectorAll("#dlq input.pick:checked"), function (b) { return b.value; });
        if (ids.length) page.redrive({ ids: ids });
      });
      document.getElementById("redrive-filter").addEventListener("submit", function (e) {
        e.preventDefault();
        var f = {};
        var s = document.getElementById("rf-source").value.trim();
        var t = document.getElementById("rf-type").value.trim();
        if (s) f.source = s;
        if (t) f.type = t;
        page.redrive({ filter: f });
      });
    }
    page.load();
  }
};
