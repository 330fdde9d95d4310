/* MCR trace viewer: draws the trace data inlined in #mcr-data.
 *
 * Plain JS, no dependencies, no network. Every string that comes from a trace
 * (model output, tool output, file names) reaches the page through textContent
 * or setAttribute on a fixed attribute -- never innerHTML -- so it is shown as
 * text and never run. Python (traces/view.py) prepares the data; this only draws.
 */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("mcr-data").textContent);
  var video = document.getElementById("video");
  var rowsById = {};
  var marksById = {};
  var spansById = {};

  // ---------------------------------------------------------------- helpers
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function fmtSpan(span) { return span.start.toFixed(1) + "–" + span.end.toFixed(1) + " s"; }
  function fmtInt(n) { return Number(n || 0).toLocaleString("en-US"); }

  function niceStep(range, maxTicks) {
    var steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    for (var i = 0; i < steps.length; i++) if (range / steps[i] <= maxTicks) return steps[i];
    return Math.ceil(range / maxTicks);
  }

  // ------------------------------------------------------------- selection
  function select(id, seek) {
    document.querySelectorAll(".selected").forEach(function (n) { n.classList.remove("selected"); });
    var row = rowsById[id];
    if (row) row.classList.add("selected");
    (marksById[id] || []).forEach(function (m) { m.classList.add("selected"); });
    var span = spansById[id];
    if (seek && span) seekTo(span.start);
  }

  function seekTo(seconds) {
    video.currentTime = seconds;
    video.dataset.seekedTo = String(seconds);
  }

  // ---------------------------------------------------------------- header
  function renderHeader() {
    document.getElementById("question").textContent = data.question || "(no question)";
    var facts = document.getElementById("facts");
    data.options.forEach(function (opt, i) { facts.appendChild(el("span", "chip option", String.fromCharCode(65 + i) + ". " + opt)); });
    facts.appendChild(el("span", "chip", "policy: " + (data.policy || "?")));
    if (data.tools.length) facts.appendChild(el("span", "chip", "tools: " + data.tools.join(", ")));
    var end = data.end;
    if (end) {
      var verdict = el("span", "chip " + (end.accepted ? "good" : "bad"),
        end.accepted ? "answer: " + end.answer + (end.option ? " (" + end.option + ")" : "") : "no accepted answer: " + end.stop_reason);
      facts.appendChild(verdict);
      facts.appendChild(el("span", "chip", end.steps + " steps · " + end.tool_calls + " tool calls · " + Number(end.elapsed_s || 0).toFixed(1) + " s"));
    } else {
      facts.appendChild(el("span", "chip bad", "unfinished episode (no episode_end)"));
    }
    facts.appendChild(el("span", "chip muted", data.trace));
  }

  // ----------------------------------------------------------------- video
  function renderVideo() {
    var note = document.getElementById("video-note");
    if (data.video.src) {
      video.setAttribute("src", data.video.src);
      note.textContent = data.video.embedded ? "video embedded in this file" : data.video.note;
    } else {
      video.hidden = true;
      note.textContent = "video not available (" + data.video.note + ")";
    }
  }

  // -------------------------------------------------------------- timeline
  function renderTimeline() {
    var marks = [], parts = [], lanes = [];
    data.steps.forEach(function (g) {
      g.rows.forEach(function (r) {
        if (r.span) marks.push(r);
        r.parts.forEach(function (p) { parts.push({ row: r, part: p }); });
        if ((r.span || r.parts.length) && lanes.indexOf(r.lane) < 0) lanes.push(r.lane);
      });
    });
    var host = document.getElementById("timeline");
    var ends = marks.map(function (m) { return m.span.end; }).concat(parts.map(function (p) { return p.part.end; }));
    var duration = data.duration || Math.max.apply(null, ends.concat([1]));
    var W = Math.max(320, Math.round(host.clientWidth || 600)), L = 92, R = 14, LANE = 24, TOP = 8, AXIS = 22;
    var H = TOP + Math.max(1, lanes.length) * LANE + AXIS;
    var x = function (t) { return L + (Math.min(Math.max(t, 0), duration) / duration) * (W - L - R); };
    var width = function (a, b, min) { return Math.max(min, x(b) - x(a)); };
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "timeline", role: "img" });
    root.appendChild(svg("title", {}, "Timeline of observed and grounded spans"));
    var step = niceStep(duration, Math.max(4, Math.floor((W - L) / 60)));
    for (var t = 0; t <= duration + 1e-9; t += step) {
      root.appendChild(svg("line", { x1: x(t), x2: x(t), y1: TOP, y2: H - AXIS + 4, class: "grid" }));
      root.appendChild(svg("text", { x: x(t), y: H - 6, class: "tick" }, (Math.round(t * 10) / 10) + "s"));
    }
    marks.filter(function (m) { return m.evidence; }).forEach(function (m) {
      root.appendChild(svg("rect", { x: x(m.span.start), y: TOP - 2, width: width(m.span.start, m.span.end, 2),
        height: lanes.length * LANE + 2, class: "evidence-band" }));
    });
    lanes.forEach(function (lane, i) {
      root.appendChild(svg("text", { x: 4, y: TOP + i * LANE + 16, class: "lane-label" }, lane.replace("_", " ")));
    });
    function addMark(row, span, cls, inset, tip) {
      var rect = svg("rect", { x: x(span.start), y: TOP + lanes.indexOf(row.lane) * LANE + inset,
        width: width(span.start, span.end, 3), height: LANE - 2 * inset, rx: 3, class: cls, "data-id": row.id });
      rect.appendChild(svg("title", {}, tip));
      rect.addEventListener("click", function (ev) { ev.stopPropagation(); select(row.id, false); seekTo(span.start); scrollToRow(row.id); });
      (marksById[row.id] = marksById[row.id] || []).push(rect);
      root.appendChild(rect);
    }
    marks.forEach(function (m) {
      addMark(m, m.span, "mark kind-" + m.kind + (m.evidence ? " evidence" : ""), 3,
        m.id + " " + m.label + " [" + fmtSpan(m.span) + "]: " + m.text.slice(0, 120));
    });
    parts.forEach(function (p) {
      addMark(p.row, p.part, "part kind-" + p.row.kind + (p.row.evidence ? " evidence" : ""), 6, p.row.id + " [" + fmtSpan(p.part) + "] " + p.part.label.slice(0, 120));
    });
    var head = svg("line", { x1: L, x2: L, y1: TOP - 4, y2: H - AXIS + 6, class: "playhead" });
    root.appendChild(head);
    video.addEventListener("timeupdate", function () {
      head.setAttribute("x1", x(video.currentTime)); head.setAttribute("x2", x(video.currentTime));
    });
    root.addEventListener("click", function (ev) {
      var box = root.getBoundingClientRect();
      var px = (ev.clientX - box.left) / box.width * W;
      if (px >= L) seekTo((px - L) / (W - L - R) * duration);
    });
    if (!lanes.length) host.appendChild(el("p", "muted", "No entry in this trace has a time span."));
    host.appendChild(root);
  }

  function scrollToRow(id) {
    var row = rowsById[id];
    if (row) row.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  // ------------------------------------------------------------ token chart
  function renderChart() {
    var host = document.getElementById("chart");
    var calls = data.calls;
    // scored: tokens of candidate replies scored on forks of the prompt (not prompt, not reply); see mcr/usage.py
    var ran = function (c) { return c.cached_tokens + c.prefilled_tokens + (c.scored_tokens || 0) + c.generated_tokens; };
    var total = calls.reduce(function (s, c) { return s + ran(c); }, 0);
    if (!calls.length || total === 0) {
      host.appendChild(el("p", "muted", calls.length ? "This policy reported no token usage (e.g. a scripted plan)." : "No model calls recorded."));
      return;
    }
    var W = Math.max(320, Math.round(host.clientWidth || 600)), H = 150, L = 52, B = 24, T = 10;
    var max = Math.max.apply(null, calls.map(ran));
    var y = function (v) { return H - B - (v / max) * (H - B - T); };
    var slot = (W - L) / calls.length;
    var bw = Math.min(48, slot * 0.6);
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img" });
    root.appendChild(svg("title", {}, "Reused, prefilled, scored and generated tokens per model call"));
    [0, max / 2, max].forEach(function (v) {
      root.appendChild(svg("line", { x1: L, x2: W, y1: y(v), y2: y(v), class: "grid" }));
      root.appendChild(svg("text", { x: L - 6, y: y(v) + 4, class: "tick end" }, fmtInt(Math.round(v))));
    });
    calls.forEach(function (c, i) {
      var cx = L + slot * i + (slot - bw) / 2, base = 0;
      [["reused", c.cached_tokens], ["prefilled", c.prefilled_tokens], ["scored", c.scored_tokens || 0],
        ["generated", c.generated_tokens]].forEach(function (part) {
        if (!part[1]) return;
        var r = svg("rect", { x: cx, y: y(base + part[1]), width: bw, height: y(base) - y(base + part[1]), class: "bar " + part[0] });
        r.appendChild(svg("title", {}, "step " + c.step + ": " + fmtInt(part[1]) + " " + part[0] + " tokens"));
        root.appendChild(r);
        base += part[1];
      });
      root.appendChild(svg("text", { x: cx + bw / 2, y: H - 8, class: "tick" }, "step " + c.step));
    });
    host.appendChild(root);
    var legend = el("div", "legend");
    var anyScored = calls.some(function (c) { return c.scored_tokens; });
    (anyScored ? ["reused", "prefilled", "scored", "generated"] : ["reused", "prefilled", "generated"]).forEach(function (k) {
      var item = el("span", "legend-item"); item.appendChild(el("i", "swatch " + k)); item.appendChild(document.createTextNode(k));
      legend.appendChild(item);
    });
    var reused = calls.reduce(function (s, c) { return s + c.cached_tokens; }, 0);
    var prompt = calls.reduce(function (s, c) { return s + c.cached_tokens + c.prefilled_tokens; }, 0);
    legend.appendChild(el("span", "reuse", (prompt ? Math.round(100 * reused / prompt) : 0) + "% of prompt tokens came from the cache"));
    host.appendChild(legend);

    var table = document.getElementById("calls");
    var head = el("tr");
    ["step", "prompt", "reused", "prefilled", "scored", "generated", "cache", "latency"].forEach(function (h) { head.appendChild(el("th", "", h)); });
    table.appendChild(head);
    calls.forEach(function (c) {
      var tr = el("tr");
      [c.step, fmtInt(c.prompt_tokens), fmtInt(c.cached_tokens), fmtInt(c.prefilled_tokens), fmtInt(c.scored_tokens || 0), fmtInt(c.generated_tokens),
        (c.cache_bytes / 1048576).toFixed(1) + " MiB", c.latency_s.toFixed(2) + " s"].forEach(function (v) { tr.appendChild(el("td", "", v)); });
      table.appendChild(tr);
    });
  }

  // ----------------------------------------------------------------- steps
  function renderImages(row, body) {
    if (!row.images.length) return;
    var strip = el("div", "images");
    row.images.forEach(function (image) {
      var fig = el("figure");
      if (image.src) {
        var img = el("img");
        img.setAttribute("src", image.src);
        img.setAttribute("alt", image.caption);
        img.setAttribute("loading", "lazy");
        if (image.span) img.addEventListener("click", function () { seekTo(image.span.start); });
        fig.appendChild(img);
      } else {
        fig.appendChild(el("div", "missing", image.note));
      }
      fig.appendChild(el("figcaption", "", image.caption));
      strip.appendChild(fig);
    });
    body.appendChild(strip);
  }

  function renderRow(row) {
    spansById[row.id] = row.span;
    var cls = "entry kind-" + row.kind + (row.evidence ? " evidence" : "") + (row.ok === false ? " bad" : "") + (row.ok === true ? " good" : "");
    var item = el("details", cls);
    item.dataset.id = row.id;
    var summary = el("summary");
    summary.appendChild(el("span", "eid", row.id));
    summary.appendChild(el("span", "badge", row.label));
    summary.appendChild(el("span", "text", row.text));
    var chips = el("span", "chips");
    if (row.span) chips.appendChild(el("span", "span-chip", fmtSpan(row.span)));
    if (row.evidence) chips.appendChild(el("span", "ev-chip", "evidence"));
    if (row.images.length) chips.appendChild(el("span", "img-chip", row.images.length + " img"));
    summary.appendChild(chips);
    summary.addEventListener("click", function () { select(row.id, true); });
    item.appendChild(summary);
    var body = el("div", "body");
    renderImages(row, body);
    if (row.parts.length) {
      var list = el("div", "parts");
      row.parts.slice(0, 200).forEach(function (p) {
        var item = el("button", "part-line");
        item.type = "button";
        item.appendChild(el("span", "span-chip", fmtSpan(p)));
        item.appendChild(el("span", "", p.label));
        item.addEventListener("click", function () { seekTo(p.start); });
        list.appendChild(item);
      });
      body.appendChild(list);
    }
    if (row.refs.length) body.appendChild(el("div", "refs", "relies on: " + row.refs.join(", ")));
    body.appendChild(el("pre", "detail", row.detail));
    item.appendChild(body);
    rowsById[row.id] = item;
    return item;
  }

  function renderSteps() {
    var host = document.getElementById("steps");
    data.steps.forEach(function (group) {
      var section = el("section", "step");
      var head = el("div", "step-head");
      head.appendChild(el("span", "step-no", group.step === 0 ? "Start" : "Step " + group.step));
      group.calls.forEach(function (c) {
        if (c.prompt_tokens || c.generated_tokens) {
          head.appendChild(el("span", "usage", fmtInt(c.prompt_tokens) + " prompt · " + fmtInt(c.cached_tokens) + " reused · " +
            fmtInt(c.prefilled_tokens) + " prefilled · " + (c.scored_tokens ? fmtInt(c.scored_tokens) + " scored · " : "") +
            fmtInt(c.generated_tokens) + " generated · " + c.latency_s.toFixed(2) + " s"));
        }
      });
      section.appendChild(head);
      group.notes.forEach(function (n) { section.appendChild(el("div", "note", n)); });
      group.rows.forEach(function (row) { section.appendChild(renderRow(row)); });
      group.calls.forEach(function (c) {
        if (c.raw_output === null || c.raw_output === undefined) return;
        var raw = el("details", "raw");
        raw.appendChild(el("summary", "", "raw model output (step " + c.step + ")"));
        raw.appendChild(el("pre", "detail", c.raw_output));
        section.appendChild(raw);
      });
      host.appendChild(section);
    });
  }

  // ------------------------------------------------------------------ diff
  function renderDiff() {
    var diff = data.diff;
    if (!diff) return;
    document.getElementById("tabs").hidden = false;
    var host = document.getElementById("diff");
    host.appendChild(el("p", "diff-note" + (diff.first === null ? " good" : ""), diff.note));
    var table = el("table", "diff-table");
    var head = el("tr");
    ["#", diff.a_name, diff.b_name, "differs at"].forEach(function (h) { head.appendChild(el("th", "", h)); });
    table.appendChild(head);
    diff.rows.forEach(function (r) {
      var tr = el("tr", r.same ? "same" : "differs");
      if (r.index === diff.first) { tr.classList.add("first-diff"); tr.id = "first-diff"; }
      var idx = el("td", "idx", r.index);
      if (!r.same) idx.setAttribute("title", "differs at " + r.where);
      tr.appendChild(idx);
      tr.appendChild(el("td", r.a === null ? "absent" : "", r.a === null ? "(no event)" : r.a));
      tr.appendChild(el("td", r.b === null ? "absent" : "", r.b === null ? "(no event)" : r.b));
      tr.appendChild(el("td", "where", r.same ? "" : r.where));
      table.appendChild(tr);
    });
    host.appendChild(table);
  }

  function showTab(name) {
    document.getElementById("episode").hidden = name !== "episode";
    document.getElementById("diff").hidden = name !== "diff";
    document.querySelectorAll(".tab").forEach(function (b) { b.classList.toggle("active", b.dataset.tab === name); });
    var first = document.getElementById("first-diff");
    if (name === "diff" && first) first.scrollIntoView({ block: "center" });
  }

  renderHeader();
  renderVideo();
  renderSteps();
  renderTimeline();
  renderChart();
  renderDiff();
  document.querySelectorAll(".tab").forEach(function (b) {
    b.addEventListener("click", function () { showTab(b.dataset.tab); });
  });
  if (data.diff && location.hash === "#diff") showTab("diff");
  document.body.dataset.ready = "true";
})();
