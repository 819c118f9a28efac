/* hookmq console: the consumers page (GET /api/consumers): each consumer's work, retry-tier
 * and DLQ queues with depth, consumer count and state against the config, as
 * `hookmq-dlx status` shows them. Text only (textContent). */
"use strict";

window.consumersPage = {
  load: function () {
    hq.showError("");
    return hq.api("GET", "/api/consumers").then(function (r) {
      var tbody = document.querySelector("#consumers tbody");
      tbody.replaceChildren();
      r.consumers.forEach(function (c) {
        c.queues.forEach(function (q, i) {
          var tr = document.createElement("tr");
          tr.appendChild(hq.el("td", i === 0 ? c.name : ""));
          var tdq = hq.el("td");
          if (q.kind === "dlq") {
            var a = hq.el("a", q.name);
            a.href = "/dlq/" + encodeURIComponent(c.name);
            tdq.appendChild(a);
          } else {
            tdq.textContent = q.name;
          }
          tr.appendChild(tdq);
          tr.appendChild(hq.el("td", q.kind));
          tr.appendChild(hq.el("td", q.messages === undefined ? "-" : q.messages));
          tr.appendChild(hq.el("td", q.consumers === undefined ? "-" : q.consumers));
          var td = hq.el("td");
          td.appendChild(hq.el("span", q.state, "badge " + (q.state === "ok" ? "processed" : "parked")));
          if (q.drift) td.appendChild(hq.el("div", q.drift));
          tr.appendChild(td);
          tbody.appendChild(tr);
        });
      });
      document.getElementById("summary").textContent =
        r.missing || r.drifted ? r.missing + " missing, " + r.drifted +
          " differing from the config (run hookmq-dlx apply)"
          : "every queue present and as configured";
    }).catch(function (e) { hq.showError(e.message); });
  },

  init: function () {
    document.getElementById("refresh").addEventListener("click", window.consumersPage.load);
    window.consumersPage.load();
  }
};
