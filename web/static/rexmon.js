/* rexmon pages: overview filter and auto-refresh, interactive graphs with uPlot. No framework. */
(function () {
  "use strict";

  // -- overview ---------------------------------------------------------------------------------
  function applyFilter() {
    var box = document.getElementById("filter");
    if (!box) return;
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    var problemsOnly = document.getElementById("problems-only").checked;
    var pressed = Array.prototype.map.call(
      document.querySelectorAll(".count[aria-pressed=true]"), function (b) { return b.dataset.state; });
    document.querySelectorAll("section.slurper").forEach(function (sec) {
      var shown = 0;
      sec.querySelectorAll("li.metric").forEach(function (li) {
        var text = (li.dataset.id + " " + li.dataset.state).toLowerCase();
        var ok = words.every(function (w) { return text.indexOf(w) >= 0; });
        if (problemsOnly && li.dataset.state === "ok") ok = false;
        if (pressed.length && pressed.indexOf(li.dataset.state) < 0) ok = false;
        li.classList.toggle("hidden", !ok);
        if (ok) shown++;
      });
      sec.classList.toggle("hidden", shown === 0);
    });
  }

  function setupOverview() {
    var body = document.getElementById("overview-body");
    if (!body) return;
    var box = document.getElementById("filter");
    box.addEventListener("input", applyFilter);
    document.getElementById("problems-only").addEventListener("change", applyFilter);
    body.addEventListener("click", function (ev) {
      var btn = ev.target.closest(".count");
      if (!btn) return;
      btn.setAttribute("aria-pressed", btn.getAttribute("aria-pressed") === "true" ? "false" : "true");
      applyFilter();
    });
    var status = document.getElementById("refresh-status");
    var every = parseInt(status.dataset.interval, 10) * 1000;
    setInterval(function () {
      var pressed = Array.prototype.map.call(
        document.querySelectorAll(".count[aria-pressed=true]"), function (b) { return b.dataset.state; });
      fetch(body.dataset.refreshUrl, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          body.innerHTML = html;
          pressed.forEach(function (s) {
            var b = body.querySelector('.count[data-state="' + s + '"]');
            if (b) b.setAttribute("aria-pressed", "true");
          });
          applyFilter();
          status.textContent = "refreshed " + new Date().toLocaleTimeString();
        })
        .catch(function (e) { status.textContent = "refresh failed (" + e.message + "), retrying"; });
    }, every);
    applyFilter();
  }

  // -- interactive graph ----------------------------------------------------------------------------
  var BAND_FILL = { "outage": "rgba(127,127,127,0.25)", "at-risk": "rgba(255,153,0,0.25)" };
  var RULE_STROKE = { "warning": "#e0a000", "critical": "#d00000" };

  function drawAnnotations(u, notes) {
    var ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
    ctx.save();
    notes.bands.forEach(function (b) {
      var x0 = Math.max(u.valToPos(b.start, "x", true), u.bbox.left);
      var x1 = Math.min(u.valToPos(b.end, "x", true), u.bbox.left + u.bbox.width);
      if (x1 <= x0) return;
      ctx.fillStyle = BAND_FILL[b.severity] || BAND_FILL.outage;
      ctx.fillRect(x0, top, x1 - x0, height);
    });
    notes.thresholds.forEach(function (t) {
      var y = u.valToPos(t.value, "y", true);
      if (y < top || y > top + height) return;
      ctx.strokeStyle = RULE_STROKE[t.level] || "#000";
      ctx.lineWidth = 1.5 * devicePixelRatio;
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
    });
    ctx.restore();
  }

  // uPlot scales to the data alone; widen the y axis so every threshold line is on the graph
  function yRange(min, max, notes) {
    notes.thresholds.forEach(function (t) {
      min = min == null ? t.value : Math.min(min, t.value);
      max = max == null ? t.value : Math.max(max, t.value);
    });
    if (min == null || max == null) return [0, 1];
    var pad = (max - min) * 0.05 || Math.abs(max) * 0.05 || 1;
    return [min - pad, max + pad];
  }

  function legendFor(el, notes) {
    var list = el.parentNode.querySelector(".chart-legend");
    if (!list) { list = document.createElement("ul"); list.className = "chart-legend"; el.after(list); }
    list.textContent = "";
    notes.bands.forEach(function (b) {
      var li = document.createElement("li");
      li.textContent = "▮ " + b.label;  // textContent: reasons are user text, never HTML
      li.style.color = b.severity === "at-risk" ? "#b36b00" : "#555";
      list.appendChild(li);
    });
    notes.thresholds.forEach(function (t) {
      var li = document.createElement("li");
      li.textContent = "┅ " + t.label;
      li.style.color = RULE_STROKE[t.level];
      list.appendChild(li);
    });
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (body) { if (!r.ok) throw new Error(body.error || r.status); return body; });
    });
  }

  function setupChart(el) {
    var home = [parseInt(el.dataset.start, 10), parseInt(el.dataset.end, 10)];
    var notes = { bands: [], thresholds: [] };
    var u = null, loading = false;

    function load(start, end) {
      start = Math.floor(start); end = Math.ceil(end);
      var q = "?start=" + start + "&end=" + end;
      loading = true;
      return Promise.all([getJSON(el.dataset.series + q), getJSON(el.dataset.annotations + q)])
        .then(function (res) {
          notes = res[1];
          var data = [res[0].times, res[0].values];
          if (!u) u = make(data); else u.setData(data, false);
          u.setScale("x", { min: start, max: end });
          el.dataset.xmin = start; el.dataset.xmax = end;
          legendFor(el, notes);
        })
        .catch(function (e) { el.textContent = "cannot load the series: " + e.message; })
        .finally(function () { loading = false; });
    }

    function make(data) {
      var opts = {
        width: Math.max(el.clientWidth - 2, 300), height: 300,
        cursor: { drag: { x: true, y: false } },
        // the pages state times in UTC; the graph's axis follows them, not the browser's zone
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
        scales: { x: { time: true }, y: { range: function (u, min, max) { return yRange(min, max, notes); } } },
        series: [{}, { label: el.dataset.label, stroke: "#1f77b4", width: 2, spanGaps: false }],
        hooks: {
          draw: [function (u) { drawAnnotations(u, notes); }],
          setSelect: [function (u) {
            if (u.select.width < 2) return;
            var min = u.posToVal(u.select.left, "x"), max = u.posToVal(u.select.left + u.select.width, "x");
            u.setSelect({ left: 0, width: 0 }, false);
            load(min, max);
          }],
        },
      };
      opts.cursor.bind = { dblclick: function () { return function () { load(home[0], home[1]); return null; }; } };
      var chart = new uPlot(opts, data, el);
      window.rexmonChart = chart;
      return chart;
    }

    document.querySelectorAll("[data-pan]").forEach(function (b) {
      b.addEventListener("click", function () {
        if (!u || loading) return;
        var min = u.scales.x.min, max = u.scales.x.max, shift = (max - min) * parseFloat(b.dataset.pan);
        load(min + shift, max + shift);
      });
    });
    document.querySelectorAll("[data-zoom]").forEach(function (b) {
      b.addEventListener("click", function () {
        if (!u || loading) return;
        var min = u.scales.x.min, max = u.scales.x.max, half = (max - min) * parseFloat(b.dataset.zoom) / 2;
        var mid = (min + max) / 2;
        load(mid - half, mid + half);
      });
    });
    window.addEventListener("resize", function () { if (u) u.setSize({ width: Math.max(el.clientWidth - 2, 300), height: 300 }); });
    load(home[0], home[1]);
  }

  function setupCharts() {
    var el = document.getElementById("chart");
    if (!el) return;
    if (typeof uPlot === "undefined") {
      var s = document.createElement("script");
      s.src = "/static/vendor/uPlot.iife.min.js";
      s.onload = function () { setupChart(el); };
      s.onerror = function () { el.textContent = "uPlot is not installed (run make)"; };
      document.head.appendChild(s);
    } else {
      setupChart(el);
    }
  }

  setupOverview();
  setupCharts();
})();
