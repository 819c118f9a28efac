/* hookmq console: a consumer's dead letters (GET /api/dlq/<consumer>): the parked events with
 * their failure, read and put back in order; operators redrive a selection or all that match
 * a filter (POST /api/dlq/<consumer>/redrive). Text only (textContent). */
"use strict";

window.dlqPage = {
  consumer: null,
  operator: false,

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
        td = hq.el("td");
        if (page.operator) {
          var b = hq.el("button", "Edit", "edit");
          b.type = "button";
          b.dataset.id = m.id;
          b.addEventListener("click", function () { page.openEdit(m); });
          td.appendChild(b);
        }
        tr.appendChild(td);
        tbody.appendChild(tr);
      });
      document.getElementById("summary").textContent = r.depth + " parked in " + r.queue +
        (r.more ? " (the first " + r.messages.length + " shown)" : "");
    }).catch(function (e) { hq.showError(e.message); });
  },

  editing: null,

  /* the edit form, with the archived body when the archive has it */
  openEdit: function (m) {
    var page = window.dlqPage;
    page.editing = m;
    document.getElementById("edit-id").textContent = m.id;
    document.getElementById("edit-body").value = "";
    document.getElementById("edit-headers").value = "";
    document.getElementById("edit").hidden = false;
    hq.api("GET", "/api/events/" + encodeURIComponent(m.id) + "?source=" + encodeURIComponent(m.source))
      .then(function (r) {
        if (!r.event || page.editing !== m) return;
        var bin = atob(r.event.body_b64);
        var bytes = new Uint8Array(bin.length);
        for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
        try {
          document.getElementById("edit-body").value = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
        } catch (e) { /* not UTF-8: leave it empty (the body is kept unless replaced) */ }
      }).catch(function () { /* not archived: an empty form */ });
  },

  sendEdit: function () {
    var page = window.dlqPage;
    var m = page.editing;
    var req = {};
    var body = document.getElementById("edit-body").value;
    var headers = {};
    var nh = 0;
    if (!m) return;
    if (body !== "") req.body = body;
    document.getElementById("edit-headers").value.split("\n").forEach(function (line) {
      var i = line.indexOf(":");
      if (i > 0) { headers[line.slice(0, i).trim()] = line.slice(i + 1).trim(); nh++; }
    });
    if (nh) req.headers = headers;
    hq.showError("");
    hq.api("POST", "/api/dlq/" + encodeURIComponent(page.consumer) + "/" + encodeURIComponent(m.id) + "/edit", req)
      .then(function (r) {
        document.getElementById("result").textContent = r.summary;
        document.getElementById("edit").hidden = true;
        page.editing = null;
        return page.load();
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
    page.operator = hq.session.role === "operator" && !hq.session.read_only;
    if (page.operator) {
      document.getElementById("actions").hidden = false;
      document.getElementById("edit-form").addEventListener("submit", function (e) {
        e.preventDefault();
        page.sendEdit();
      });
      document.getElementById("edit-cancel").addEventListener("click", function () {
        document.getElementById("edit").hidden = true;
        page.editing = null;
      });
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
