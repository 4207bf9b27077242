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

  // -- values with units: the same rules as web/units.py format_value ---------------------------------
  var SI_UP = ["", "k", "M", "G", "T", "P", "E"], IEC_UP = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
  var SI_DOWN = ["m", "µ", "n", "p"];
  var SCALE_DOWN = ["s", "W", "V", "A", "Hz", "J", "B", "b"], NO_PREFIX = ["%", "°C", "K", "dB"];

  function digits(v, small) {
    var a = Math.abs(v);
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    if (a >= 1 || !small) return v.toFixed(2);
    return String(Number(v.toPrecision(3)));
  }

  function plain(v) { return v === Math.trunc(v) && Math.abs(v) < 1e15 ? String(v) : digits(v, true); }

  function join(num, prefix, unit) {
    if (!unit) return (num + " " + prefix).trim();
    if (unit.charAt(0) === "/") return prefix ? num + " " + prefix + unit : num + unit;
    return num + " " + prefix + unit;
  }

  // a unit with its own prefix (MiB, kB/s) in its base unit, so it takes one prefix: as web/units.py
  function unprefixed(v, unit, base) {
    var parts = unit.split("/"), m = /^([kKMGTPE])(i?)([Bb])$/.exec(parts[0]);
    if (!m) return [v, unit, base];
    var step = m[2] ? 1024 : 1000, exp = "kMGTPE".indexOf(m[1] === "K" ? "k" : m[1]) + 1;
    parts[0] = m[3];
    return [v * Math.pow(step, exp), parts.join("/"), step];
  }

  function formatValue(v, unit, base) {
    if (v == null) return "U";
    unit = unit || ""; base = base === 1024 ? 1024 : 1000;
    if (!isFinite(v)) return join(String(v), "", unit);
    var u = unprefixed(v, unit, base); v = u[0]; unit = u[1]; base = u[2];
    var a = Math.abs(v), head = unit.split("/")[0];
    if (NO_PREFIX.indexOf(head) >= 0 || a === 0) return join(plain(v), "", unit);
    if (a < 1) {
      if (SCALE_DOWN.indexOf(head) < 0 || base !== 1000) return join(digits(v, true), "", unit);
      var down = Math.min(SI_DOWN.length, Math.ceil(-Math.log10(a) / 3));
      return join(digits(v * Math.pow(1000, down), true), SI_DOWN[down - 1], unit);
    }
    var ups = base === 1024 ? IEC_UP : SI_UP;
    var exp = a >= base ? Math.min(ups.length - 1, Math.floor(Math.log(a) / Math.log(base) + 1e-12)) : 0;
    var scaled = v / Math.pow(base, exp), s = Math.abs(scaled);
    var rounded = Number(s.toFixed(s < 10 ? 2 : s < 100 ? 1 : 0));
    if (rounded >= base && exp < ups.length - 1) { exp += 1; scaled = v / Math.pow(base, exp); }
    if (exp === 0) return join(plain(v), "", unit);
    return join(digits(scaled, false), ups[exp], unit);
  }
  window.rexmonFormat = formatValue;

  // the axis is as wide as its longest label (uPlot's default 50 px cuts "7.24 MB/s" to "24 MB/s")
  function axisSize(u, values, axisIdx, cycleNum) {
    var axis = u.axes[axisIdx];
    if (cycleNum > 1) return axis._size;
    var size = axis.ticks.size + axis.gap + (axis.label ? 22 : 0);
    var longest = (values || []).reduce(function (acc, v) { return v && v.length > acc.length ? v : acc; }, "");
    if (longest) {
      u.ctx.font = axis.font[0];
      size += u.ctx.measureText(longest).width / devicePixelRatio;
    }
    return Math.ceil(size + 6);
  }

  // -- interactive graph ----------------------------------------------------------------------------
  var BAND_FILL = { "outage": "rgba(127,127,127,0.25)", "at-risk": "rgba(255,153,0,0.25)" };
  var RULE_STROKE = { "warning": "#8a5a00", "critical": "#c62828" };

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
      li.style.color = b.severity === "at-risk" ? "#8a5a00" : "#555";
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

  // the view in the address bar, so a reload or a shared link shows the same range and zone
  function keepView(start, end, home) {
    if (!window.history || !history.replaceState) return;
    var params = new URLSearchParams(location.search);
    if (start === home[0] && end === home[1] && params.get("period")) return;
    params.delete("period");
    params.set("start", String(start)); params.set("end", String(end));
    history.replaceState(null, "", location.pathname + "?" + params.toString() + location.hash);
  }

  function chartWidth(el) { return Math.max(el.clientWidth - 2, 200); }

  function setupChart(el) {
    var home = [parseInt(el.dataset.start, 10), parseInt(el.dataset.end, 10)];
    var notes = { bands: [], thresholds: [] };
    var unit = el.dataset.unit || "", base = parseInt(el.dataset.base || "1000", 10);
    var zone = el.dataset.tz || "UTC";
    var u = null, loading = false;
    function fmt(v) { return formatValue(v, unit, base); }

    function load(start, end) {
      start = Math.floor(start); end = Math.ceil(end);
      var q = "?start=" + start + "&end=" + end;
      loading = true;
      return Promise.all([getJSON(el.dataset.series + q), getJSON(el.dataset.annotations + q)])
        .then(function (res) {
          // Munin's negative: the partner's series, drawn mirrored below the axis in this chart
          if (!res[0].negative) return res;
          var url = el.dataset.series.replace(/\/[^\/]+\/series$/, "/" + encodeURIComponent(res[0].negative) + "/series");
          return getJSON(url + q).then(function (neg) { res.push(neg); return res; });
        })
        .then(function (res) {
          notes = res[1];
          if (res[0].unit != null && !el.dataset.unit) unit = res[0].unit;
          var data = [res[0].times, res[0].values];
          if (res[2]) {
            data.push(res[2].values.slice(0, res[0].times.length).map(function (v) { return v == null ? null : -v; }));
            el.dataset.negative = res[0].negative;
          }
          if (!u) u = make(data, res[2] ? res[0].negative : null); else u.setData(data, false);
          u.setScale("x", { min: start, max: end });
          el.dataset.xmin = start; el.dataset.xmax = end;
          keepView(start, end, home);
          legendFor(el, notes);
        })
        .catch(function (e) { el.textContent = "cannot load the series: " + e.message; })
        .finally(function () { loading = false; });
    }

    function yValues(u, ticks) {
      var out = ticks.map(fmt);
      el.dataset.yTicks = JSON.stringify(out);  // what the axis shows, for people and tests
      return out;
    }

    function make(data, negative) {
      var opts = {
        width: chartWidth(el), height: 300,
        cursor: { drag: { x: true, y: false } },
        // the axis is in the zone the page states (tz in the address), not the browser's
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), zone === "UTC" ? "Etc/UTC" : zone); },
        scales: { x: { time: true }, y: { range: function (u, min, max) { return yRange(min, max, notes); } } },
        axes: [
          { size: axisSize, values: function (u, ticks, axisIdx, space, incr) {
            var out = timeTicks(ticks, incr, zone);
            el.dataset.xTicks = JSON.stringify(out);
            return out;
          } },
          { size: axisSize, values: yValues, label: unit || undefined, labelSize: 18 },
        ],
        series: [
          { value: function (u, ts) { return ts == null ? "–" : fmtTime(ts, zone); } },
          { label: el.dataset.label, stroke: "#1f77b4", width: 2, spanGaps: false,
            value: function (u, v) { return v == null ? "–" : fmt(v); } },
        ].concat(negative ? [
          // mirrored below the axis as Munin draws it; the tooltip says the value as it is
          { label: negative + " (below the axis)", stroke: "#1f77b4", width: 1, dash: [4, 3], spanGaps: false,
            value: function (u, v) { return v == null ? "–" : fmt(-v); } },
        ] : []),
        hooks: {
          draw: [function (u) {
            drawAnnotations(u, notes);
            el.dataset.plotLeft = String(Math.round(u.bbox.left / devicePixelRatio));  // where the plot starts
          }],
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
    window.addEventListener("resize", function () { if (u) u.setSize({ width: chartWidth(el), height: 300 }); });
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

  // time axis labels as the page writes times (24 h, month-day), in the page's zone
  var partsCache = {};
  function timeParts(ts, zone) {
    var f = partsCache[zone];
    if (!f) {
      try {
        f = new Intl.DateTimeFormat("en-GB", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
          hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
      } catch (e) {
        f = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit",
          hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
      }
      partsCache[zone] = f;
    }
    var out = {};
    f.formatToParts(new Date(ts * 1e3)).forEach(function (p) { out[p.type] = p.value; });
    return out;
  }

  function timeTicks(ticks, incr, zone) {
    var lastDay = null;
    return ticks.map(function (ts) {
      var p = timeParts(ts, zone), day = p.month + "-" + p.day, hm = p.hour + ":" + p.minute;
      var label;
      if (incr >= 86400) label = day;
      else label = day !== lastDay ? hm + "\n" + day : hm;
      lastDay = day;
      return label;
    });
  }

  function fmtTime(ts, zone) {
    try {
      return new Date(ts * 1e3).toLocaleString("sv-SE", { timeZone: zone, hour12: false }).slice(0, 16) + " " + zone;
    } catch (e) { return new Date(ts * 1e3).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }
  }

  // -- zone picker: offer the browser's zone, apply a choice at once --------------------------------
  function setupZonePicker() {
    document.querySelectorAll("select[data-zone-picker]").forEach(function (sel) {
      var mine = "";
      try { mine = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { mine = ""; }
      if (mine && !Array.prototype.some.call(sel.options, function (o) { return o.value === mine; })) {
        var opt = document.createElement("option");
        opt.value = mine; opt.textContent = mine + " (this browser)";
        sel.appendChild(opt);
      } else if (mine) {
        Array.prototype.forEach.call(sel.options, function (o) {
          if (o.value === mine && o.textContent.indexOf("browser") < 0) o.textContent += " (this browser)";
        });
      }
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
  }

  setupOverview();
  setupZonePicker();
  setupCharts();
})();
