/* hookmq console: a consumer's dead letters (GET /api/dlq/<consumer>): the parked events with
 * their failure, read and put back in order. Text only (textContent). */
"use strict";

window.dlqPage = {
  init: function () {
    var consumer = decodeURIComponent(window.location.pathname.slice("/dlq/".length));
    document.getElementById("consumer").textContent = consumer;
    document.title = "hookmq console: dead letters of " + consumer;
    hq.api("GET", "/api/dlq/" + encodeURIComponent(consumer)).then(function (r) {
      var tbody = document.querySelector("#dlq tbody");
      tbody.replaceChildren();
      r.messages.forEach(function (m) {
        var tr = document.createElement("tr");
        tr.appendChild(hq.el("td", m.failed_at || "?"));
        tr.appendChild(hq.el("td", m.source));
        tr.appendChild(hq.el("td", m.type));
        var td = hq.el("td");
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
  }
};
