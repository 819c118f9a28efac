/* hookmq console: the sources page (GET /api/sources): per configured source, the requests by
 * HTTP status and the verification failures by reason from the gateway's metrics, or the
 * events archived per source when the gateway's metrics cannot be read. Text only
 * (textContent). */
"use strict";

window.sourcesPage = {
  counts: function (obj) {
    var keys = Object.keys(obj || {});
    if (!keys.length) return "-";
    return keys.sort().map(function (k) { return k + ": " + obj[k]; }).join(", ");
  },

  load: function () {
    hq.showError("");
    return hq.api("GET", "/api/sources").then(function (r) {
      var metrics = r.origin === "metrics";
      var tbody = document.querySelector("#sources tbody");
      tbody.replaceChildren();
      document.getElementById("origin").textContent = metrics
        ? "From the gateway's metrics (counted since the gateway started)."
        : "From the archive: events archived from " + r.from + " to " + r.to +
          " (the gateway's metrics are not configured or not readable; requests that were refused are not archived).";
      document.getElementById("origin").dataset.origin = r.origin;
      var me = document.getElementById("metrics-error");
      me.textContent = r.metrics_error ? "Gateway metrics: " + r.metrics_error : "";
      me.hidden = !r.metrics_error;
      document.getElementById("h-requests").textContent = metrics ? "Requests by HTTP status" : "Events archived";
      document.getElementById("h-failures").hidden = !metrics;
      r.sources.forEach(function (s) {
        var tr = document.createElement("tr");
        tr.dataset.source = s.name;
        tr.appendChild(hq.el("td", s.name));
        tr.appendChild(hq.el("td", s.scheme));
        if (metrics) {
          tr.appendChild(hq.el("td", s.total + " (" + window.sourcesPage.counts(s.requests) + ")", "requests"));
          tr.appendChild(hq.el("td", s.failures + " (" + window.sourcesPage.counts(s.verification_failures) + ")", "failures"));
        } else {
          tr.appendChild(hq.el("td", s.events, "requests"));
        }
        tbody.appendChild(tr);
      });
    }).catch(function (e) { hq.showError(e.message); });
  },

  init: function () {
    document.getElementById("refresh").addEventListener("click", window.sourcesPage.load);
    window.sourcesPage.load();
  }
};
