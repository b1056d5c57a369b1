// The draw-a-digit page: strokes on a canvas, sent to /v1/predict while drawing (at most one request
// in flight; the latest drawing always gets read), the ten probabilities as bars, the 28x28 view.
"use strict";
const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const $ = (id) => document.getElementById(id);
let drawing = false, dirty = false, inFlight = false, hasInk = false, last = null;
let mode = "digit";  // "digit": /v1/predict on a square pad; "number": /v1/read on a wide one
// The page's empty 28x28 view (black, as the model sees a blank pad): shown again on Clear, so the
// view is never an image without a source (a broken-image icon and its alt text).
const EMPTY_VIEW = $("view").getAttribute("src");

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  hasInk = false;
  show(null);
}

function point(e) {
  const r = pad.getBoundingClientRect();
  return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
}

function stroke(from, to) {
  ctx.strokeStyle = "#111";
  ctx.lineWidth = pad.height / 14;  // about a pen's width on a 28-pixel digit
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0], to[1]);
  ctx.stroke();
  hasInk = true;
}

pad.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  drawing = true;
  last = point(e);
  stroke(last, last);
  $("photo").hidden = true;
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const p = point(e);
  stroke(last, p);
  last = p;
  requestRead();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { if (drawing) { drawing = false; requestRead(); } });
}
$("clear").addEventListener("click", () => { clearPad(); if (mode === "number") showNumber(null); });

function requestRead() {
  dirty = true;
  if (!inFlight) readPad();
}

// body[data-busy] is "1" while an answer is pending, so scripts (and tests) can wait for the final one.
function readPad() {
  if (!hasInk) return;
  dirty = false;
  inFlight = true;
  document.body.dataset.busy = "1";
  pad.toBlob((blob) => send(blob, "image/png").finally(() => {
    inFlight = false;
    if (dirty) readPad(); else document.body.dataset.busy = "0";
  }), "image/png");
}

async function send(body, type) {
  try {
    const opts = { method: "POST", body };
    if (type) opts.headers = { "Content-Type": type };
    const url = mode === "number" ? "/v1/read" : "/v1/predict?preprocessed=true";
    const res = await fetch(url, opts);
    const data = await res.json();
    const r = (data.results || [])[0];
    if (!res.ok && !r) throw new Error(data.error || res.statusText);
    if (mode === "number") showNumber(r); else show(r);
  } catch (err) {
    $("status").textContent = "could not read: " + err.message;
  }
}

function show(r) {
  $("status").textContent = r && r.error ? r.error : "";
  const probs = r && r.probabilities && r.probabilities.length ? r.probabilities : new Array(10).fill(0);
  const best = r && r.digit !== null && r.digit !== undefined ? r.digit : null;
  $("answer").textContent = best === null ? (r && r.no_digit ? "–" : "?") : String(best);
  $("confidence").textContent = !r ? "draw a digit" : r.error ? "unreadable" : r.no_digit ? "no digit found"
    : (100 * r.confidence).toFixed(1) + "% sure" + (r.uncertain ? " (uncertain)" : "");
  if (r && r.preprocessed) $("view").src = r.preprocessed; else if (!r) $("view").src = EMPTY_VIEW;
  document.querySelectorAll("#bars li").forEach((li, d) => {
    li.querySelector(".fill").style.width = (100 * probs[d]).toFixed(1) + "%";
    li.querySelector(".pct").textContent = (100 * probs[d]).toFixed(1) + "%";
    li.classList.toggle("top", d === best);
  });
}

function showNumber(r) {
  $("status").textContent = r && r.error ? r.error : "";
  const digits = r && r.digits ? r.digits : [];
  $("answer").textContent = !r ? "?" : r.error ? "?" : digits.length ? r.text : "–";
  $("confidence").textContent = !r ? "write a number" : r.error ? "unreadable"
    : digits.length ? digits.map((d) => (100 * d.confidence).toFixed(0) + "%").join(" · ") : "no digits found";
}

function setMode(m) {
  mode = m;
  document.body.classList.toggle("number", m === "number");
  $("mode-digit").setAttribute("aria-pressed", String(m === "digit"));
  $("mode-number").setAttribute("aria-pressed", String(m === "number"));
  pad.width = m === "number" ? 700 : 280;
  pad.height = m === "number" ? 250 : 280;
  clearPad();
  if (m === "number") showNumber(null);
}
$("mode-digit").addEventListener("click", () => setMode("digit"));
$("mode-number").addEventListener("click", () => setMode("number"));

function readFile(file) {
  if (!file) return;
  const photo = $("photo");
  photo.src = URL.createObjectURL(file);
  photo.hidden = false;
  const form = new FormData();
  form.append("file", file, file.name);
  document.body.dataset.busy = "1";
  send(form, null).finally(() => { document.body.dataset.busy = "0"; });
}
$("file").addEventListener("change", (e) => readFile(e.target.files[0]));
document.addEventListener("dragover", (e) => { e.preventDefault(); $("drop").hidden = false; });
document.addEventListener("dragleave", (e) => { if (!e.relatedTarget) $("drop").hidden = true; });
document.addEventListener("drop", (e) => {
  e.preventDefault();
  $("drop").hidden = true;
  readFile(e.dataTransfer.files[0]);
});

(function init() {
  const bars = $("bars");
  for (let d = 0; d < 10; d++) {
    const li = document.createElement("li");
    li.dataset.digit = d;
    li.innerHTML = `<span>${d}</span><span class="track"><span class="fill"></span></span><span class="pct">0.0%</span>`;
    bars.appendChild(li);
  }
  clearPad();
  document.body.dataset.busy = "0";
  fetch("/v1/model").then((r) => r.json()).then((m) => {
    const acc = m.metrics && m.metrics.test ? `, ${(100 * m.metrics.test.accuracy).toFixed(2)}% on MNIST` : "";
    $("model").textContent = `model: ${m.arch} (${m.backend})${acc}`;
  }).catch(() => {});
})();
