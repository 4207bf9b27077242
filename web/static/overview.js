/* The overview: filter on the server (the page holds only what is open), lazy groups, a refresh that
   fetches only the parts that changed (web/views.py overview_changes). No framework. */
(function () {
  "use strict";
  var root = document.getElementById("console");
  if (!root) return;
  var form = document.getElementById("console-filter");
  var box = document.getElementById("console-q");
  var problems = document.getElementById("console-problems");
  var stateField = document.getElementById("console-state");
  var status = document.getElementById("console-status");
  var opened = {};  // groups the user opened: kept open (and filled) across refreshes

  // sparklines: an <img class="spark" data-src> gets its src only once it scrolls into view
  var seen = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      if (!e.isIntersecting) return;
      seen.unobserve(e.target);
      e.target.src = e.target.dataset.src;
    });
  }, { rootMargin: "100px 0px" }) : null;

  function watch(el) {
    el.querySelectorAll("img.spark[data-src]:not([src])").forEach(function (img) {
      if (seen) seen.observe(img); else img.src = img.dataset.src;
    });
  }

  function params() {
    var p = new URLSearchParams();
    if (box.value.trim()) p.set("q", box.value.trim());
    if (problems.checked) p.set("problems", "1");
    if (stateField.value) p.set("state", stateField.value);
    return p;
  }

  function markPressed() {
    var on = stateField.value ? stateField.value.split(",") : [];
    root.querySelectorAll(".count").forEach(function (a) {
      a.setAttribute("aria-pressed", on.indexOf(a.dataset.state) >= 0 ? "true" : "false");
      a.setAttribute("role", "button");
    });
  }

  function fill(details) {
    var body = details.querySelector(":scope > .lazy");
    if (!body || body.dataset.loaded) return;
    body.dataset.loaded = "1";
    fetch(body.dataset.src + "?" + params().toString(), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) { body.innerHTML = html; watch(body); })
      .catch(function (e) { body.dataset.loaded = ""; body.textContent = "could not load (" + e.message + ")"; });
  }

  function reopen() {  // folded slurpers first: their groups appear once they are filled
    root.querySelectorAll("section.slurper.folded, li.group").forEach(function (el) {
      var d = el.querySelector(":scope > details");
      var key = el.dataset.key || "slurper:" + el.dataset.slurper;
      if (d && opened[key] && !d.open) { d.open = true; fill(d); }
    });
  }

  function apply(answer, full) {
    var parts = {};
    root.querySelectorAll(".part").forEach(function (el) { parts[el.dataset.part] = el; });
    var order = answer.order, changed = answer.parts;
    var frag = document.createDocumentFragment();
    order.forEach(function (pid) {
      var el = parts[pid];
      if (!el || pid in changed) {
        el = document.createElement("div");
        el.className = "part";
        el.dataset.part = pid;
        el.innerHTML = changed[pid] || "";
      }
      frag.appendChild(el);
    });
    root.innerHTML = "";
    if (seen) seen.disconnect();
    root.appendChild(frag);
    watch(root);
    root.dataset.version = answer.version;
    markPressed();
    reopen();
    status.textContent = (full ? "updated " : "refreshed ") + new Date().toLocaleTimeString() + " (" +
      Object.keys(changed).length + " of " + order.length + " parts changed)";
  }

  function load(full) {
    var p = params();
    if (!full) p.set("since", root.dataset.version || "");
    return fetch(root.dataset.changesUrl + "?" + p.toString(), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (answer) { apply(answer, full); })
      .catch(function (e) { status.textContent = "refresh failed (" + e.message + "), retrying"; });
  }

  function refilter() {
    var p = params().toString();
    history.replaceState(null, "", p ? "?" + p : location.pathname);
    opened = {};
    load(true);
  }

  var timer = null;
  box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refilter, 300); });
  problems.addEventListener("change", refilter);
  form.addEventListener("submit", function (ev) { ev.preventDefault(); refilter(); });
  root.addEventListener("click", function (ev) {
    var all = ev.target.closest(".load-all");
    if (all) {
      ev.preventDefault();
      var body = all.closest(".lazy");
      fetch(all.dataset.src, { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) { body.innerHTML = html; })
        .catch(function (e) { all.textContent = "could not load (" + e.message + ")"; });
      return;
    }
    var a = ev.target.closest(".count");
    if (!a) return;
    ev.preventDefault();
    var on = stateField.value ? stateField.value.split(",") : [];
    var i = on.indexOf(a.dataset.state);
    if (i >= 0) on.splice(i, 1); else on.push(a.dataset.state);
    stateField.value = on.join(",");
    refilter();
  });
  root.addEventListener("toggle", function (ev) {
    var d = ev.target;
    if (!d.matches || !d.querySelector(":scope > .lazy")) return;
    var key = d.parentNode.dataset.key || "slurper:" + d.parentNode.dataset.slurper;
    if (d.open) { opened[key] = true; fill(d); } else { delete opened[key]; }
  }, true);
  document.querySelector(".filter-go").classList.add("hidden");
  markPressed();
  watch(root);
  setInterval(function () { load(false); }, parseInt(status.dataset.interval, 10) * 1000);
})();
