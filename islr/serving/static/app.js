// The live page: webcam or a video file -> MediaPipe Holistic (in the browser) -> landmarks in the
// model's layout -> classifier (onnxruntime-web in the browser, or the server over a WebSocket)
// -> top-3 signs and a running transcript. All files come from this server (static/vendor/).
import {
  LearnedSegmenter,
  StreamSegmenter,
  aspectCorrected,
  frameFromResults,
  frameSummary,
  layoutInfo,
  modelInput,
  rowMap,
  scoreWithVocabulary,
  segmenterInput,
  streamConfig,
  streamEvent,
  topK,
} from "./pipeline.js";
import { Enrolment } from "./enrol.js";

const TOP_K = 3; // of a whole video file
const MAX_SAMPLES = 200; // timing samples kept for the figures
// Python's MediaPipe solution stamps frame n at n * 33.333 ms whatever the video's frame rate;
// using the same clock for files keeps the landmark smoothing (time-based) identical.
const FILE_FRAME_MS = 1000 / 30;

const params = new URLSearchParams(location.search);
const options = {
  infer: params.get("infer") || "auto", // auto | browser | server
  mpCpu: params.get("mpcpu") || "auto", // auto | 1 | 0
  // overrides the served stream threshold (the server path sends it in WS /v1/stream's start)
  threshold: params.has("threshold") ? Number(params.get("threshold")) : null,
  camera: params.get("camera") !== "0",
};

const $ = (id) => document.getElementById(id);
const video = $("video");
const overlay = $("overlay");
const ctx = overlay.getContext("2d");

// Everything the page knows, readable from tests and the console.
const state = {
  phase: "loading", // loading | ready | error
  error: null,
  options,
  inferMode: null, // browser | server
  mpCpuInference: null,
  webglRenderer: null,
  model: null,
  source: null, // webcam | file | null
  frames: 0,
  framesWithPose: 0,
  framesWithHands: 0,
  framesDrawn: 0,
  predictions: 0,
  top: [],
  transcript: [], // {type: "sign", label, prob, start, end} or {type: "unknown", start, end, top}
  segment: "no sign",
  activity: "resting", // resting | signing
  stream: null, // the segmenter's settings in use (from GET /v1/model)
  segmenterKind: null, // learned | heuristic: which segments the in-browser path
  framesTagged: 0, // frames the learned segmenter tagged
  holisticMs: [],
  modelMs: [],
  delaysMs: [],
  firstPredictionAt: null,
  file: null,
  lastInput: null,
  lastLogits: null,
};
window.islrState = state;

let holistic = null;
let latestResults = null;
let meta = null;
let info = null;
let classifier = null;
let server = null;
let segmenter = null; // in-browser path; its settings come from GET /v1/model
let tagger = null; // the learned segmenter's model (BrowserTagger), when the server has one
let cameraStream = null;
let loopToken = 0;
let enrolment = null; // the "Add a sign" panel
let vocabulary = null; // GET /v1/vocabulary: the added signs the in-browser classifier scores

// ---------------------------------------------------------------------------------------- UI

function setStatus(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function fail(message) {
  state.phase = "error";
  state.error = message;
  setStatus(message, true);
  $("stage-note").textContent = "";
}

function pushSample(list, value) {
  list.push(value);
  if (list.length > MAX_SAMPLES) list.shift();
}

const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const fmt = (v, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : "–");

function showTop(top) {
  state.top = top;
  const list = $("top");
  list.replaceChildren(
    ...top.map(({ label, prob }) => {
      const li = document.createElement("li");
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.style.width = `${Math.round(prob * 100)}%`;
      const name = document.createElement("span");
      name.textContent = label;
      const pct = document.createElement("span");
      pct.textContent = `${Math.round(prob * 100)}%`;
      li.append(bar, name, pct);
      return li;
    }),
  );
}

function showSegment(text) {
  state.segment = text;
  $("segment-state").textContent = text;
}

function showActivity(activity) {
  state.activity = activity;
  const el = $("activity");
  el.textContent = activity;
  el.classList.toggle("signing", activity === "signing");
}

const guesses = (top) => top.map((t) => `${t.label} ${Math.round(t.prob * 100)}%`).join(", ");

/** One word per sign; a greyed "?" for a segment that is not a known sign (title: the guesses). */
function addToTranscript(entry) {
  state.transcript.push(entry);
  const el = $("transcript");
  if (state.transcript.length === 1) el.replaceChildren();
  el.classList.remove("muted");
  const word = document.createElement("span");
  if (entry.type === "sign") {
    word.className = "word";
    word.textContent = entry.label;
    word.title = `${Math.round(entry.prob * 100)}% (${entry.start.toFixed(1)}–${entry.end.toFixed(1)} s)`;
  } else {
    word.className = "word unknown";
    word.textContent = "?";
    word.title = `not a known sign; best guesses: ${guesses(entry.top)}`;
  }
  el.append(word);
}

/** A segmentation event, from the server or the in-browser segmenter (the same events). */
function showEvent(event) {
  enrolment?.onEvent(event);
  if (event.type === "partial") {
    showActivity("signing");
    showSegment("signing…");
  } else if (event.type === "sign") {
    showActivity("resting");
    addToTranscript({ type: "sign", label: event.label, prob: event.prob, start: event.start, end: event.end });
    showSegment(`sign: ${event.label}`);
  } else if (event.type === "unknown") {
    showActivity("resting");
    addToTranscript({ type: "unknown", start: event.start, end: event.end, top: event.top });
    showSegment(`not a known sign (${guesses(event.top.slice(0, 1))})`);
  } else if (event.type === "rest") {
    showActivity("resting");
  }
}

let lastStatsUpdate = 0;
let fpsWindow = [];
function updateStats(now) {
  fpsWindow.push(now);
  while (fpsWindow.length && now - fpsWindow[0] > 2000) fpsWindow.shift();
  if (now - lastStatsUpdate < 250) return;
  lastStatsUpdate = now;
  state.fps = fpsWindow.length > 1 ? (1000 * (fpsWindow.length - 1)) / (now - fpsWindow[0]) : 0;
  const rows = [
    ["source", state.source ?? "–"],
    ["classifier", state.inferMode === "browser" ? "in browser (onnxruntime-web, wasm)" : "server (WebSocket)"],
    ["MediaPipe", state.mpCpuInference ? "CPU inference" : "GPU (WebGL) inference"],
    ["model", meta ? `${meta.model ?? "?"} · ${meta.labels.length} signs · ${info.name}` : "–"],
    ["landmark fps", fmt(state.fps)],
    ["frames", `${state.frames} (hands in ${state.framesWithHands})`],
    ["Holistic ms/frame", fmt(mean(state.holisticMs))],
    ["model ms", fmt(mean(state.modelMs), 2)],
    ["frame → prediction ms", fmt(mean(state.delaysMs))],
  ];
  $("stats").replaceChildren(
    ...rows.flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      return [dt, dd];
    }),
  );
}

// ------------------------------------------------------------------------------- drawing

const COLORS = { pose: "#be4bdb", left_hand: "#fd7e14", right_hand: "#228be6", face: "#2f9e44" };
const UPPER_BODY = (a, b) => a < 23 && b < 23; // legs are rarely in frame when signing

function drawSkeleton(results, width, height) {
  if (overlay.width !== width || overlay.height !== height) {
    overlay.width = width;
    overlay.height = height;
  }
  ctx.clearRect(0, 0, width, height);
  const line = Math.max(2, width / 320);
  const connect = (landmarks, connections, color, keep = () => true) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = line;
    ctx.beginPath();
    for (const [a, b] of connections) {
      if (!keep(a, b) || !landmarks[a] || !landmarks[b]) continue;
      ctx.moveTo(landmarks[a].x * width, landmarks[a].y * height);
      ctx.lineTo(landmarks[b].x * width, landmarks[b].y * height);
    }
    ctx.stroke();
  };
  const dots = (landmarks, indices, color, r) => {
    ctx.fillStyle = color;
    for (const i of indices) {
      const p = landmarks[i];
      if (!p) continue;
      ctx.beginPath();
      ctx.arc(p.x * width, p.y * height, r, 0, 2 * Math.PI);
      ctx.fill();
    }
  };
  let drew = false;
  if (results.poseLandmarks) {
    connect(results.poseLandmarks, window.POSE_CONNECTIONS, COLORS.pose, UPPER_BODY);
    drew = true;
  }
  if (results.faceLandmarks) {
    const face = info.parts.find((p) => p.component === "face");
    if (face) dots(results.faceLandmarks, face.indices, COLORS.face, line * 0.8);
    drew = true;
  }
  for (const hand of ["left_hand", "right_hand"]) {
    const landmarks = results[hand === "left_hand" ? "leftHandLandmarks" : "rightHandLandmarks"];
    if (!landmarks) continue;
    connect(landmarks, window.HAND_CONNECTIONS, COLORS[hand]);
    dots(landmarks, landmarks.map((_, i) => i), COLORS[hand], line * 1.2);
    drew = true;
  }
  if (drew) state.framesDrawn += 1;
}

// ---------------------------------------------------------------------------- classifiers

/**
 * The learned sign segmenter (GET /v1/segmenter.onnx) in onnxruntime-web: the last `window` frames
 * -> the O/B/I probabilities of the frame `lookahead` back (as islr.inference.segmenter).
 */
class BrowserTagger {
  static async create(spec) {
    const ort = window.ort;
    const response = await fetch(new URL(spec.url.replace(/^\//, ""), document.baseURI));
    if (!response.ok) throw new Error(`GET ${spec.url}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    return new BrowserTagger(ort, session, spec);
  }

  constructor(ort, session, spec) {
    this.ort = ort;
    this.session = session;
    this.spec = spec;
    this.rows = rowMap(info, layoutInfo(spec.layout)); // the page's frames -> its points
    this.tag = (frames) => this.run(frames);
  }

  async run(frames) {
    const { n_coords: nCoords, input, output } = this.spec;
    const data = segmenterInput(frames, this.rows, meta.n_coords, nCoords);
    const tensor = new this.ort.Tensor("float32", data, [1, frames.length, this.rows.length, nCoords]);
    const out = (await this.session.run({ [input]: tensor }))[output].data;
    state.framesTagged += 1;
    return Array.from(out.subarray(out.length - 3));
  }
}

/**
 * The in-browser path's segmenter: the learned one when the served settings choose it and the
 * server serves it, else the heuristic (with ?infer=server the server segments).
 */
async function setUpSegmenter() {
  const spec = meta.segmenter;
  if (state.inferMode === "browser" && state.stream.segmenter === "learned" && spec) {
    tagger = await BrowserTagger.create(spec);
    state.segmenterKind = "learned";
    return new LearnedSegmenter(state.stream, spec.window, spec.lookahead);
  }
  tagger = null;
  state.segmenterKind = "heuristic";
  return new StreamSegmenter(state.stream);
}

/** The exported ONNX model run by onnxruntime-web (wasm backend, files served from vendor/). */
class BrowserClassifier {
  static async create(url) {
    const ort = window.ort;
    if (!ort) throw new Error("onnxruntime-web did not load (static/vendor/ort missing: run `make web`)");
    ort.env.wasm.wasmPaths = new URL("static/vendor/ort/", document.baseURI).href;
    // Threads need SharedArrayBuffer, which only cross-origin isolated pages get.
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
    ort.env.wasm.proxy = false;
    const response = await fetch(url);
    if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    return new BrowserClassifier(ort, session);
  }

  constructor(ort, session) {
    this.ort = ort;
    this.session = session;
    this.inputName = session.inputNames.includes("landmarks") ? "landmarks" : session.inputNames[0];
    this.outputName = session.outputNames.includes("logits") ? "logits" : session.outputNames[0];
    // the second output of models exported with one: scores the signs added on the page
    this.embeddingName = session.outputNames.includes("embedding") ? "embedding" : null;
  }

  /** frames: model-layout, aspect-corrected Float32Arrays -> {probs, labels, logits, ms}: the
   * probabilities over the known signs and the added ones (scoreWithVocabulary). */
  async classify(frames) {
    const nCoords = meta.n_coords;
    const input = modelInput(frames, meta.seq_len, info.nPoints * nCoords);
    const tensor = new this.ort.Tensor("float32", input, [1, meta.seq_len, info.nPoints, nCoords]);
    const t0 = performance.now();
    const out = await this.session.run({ [this.inputName]: tensor });
    const ms = performance.now() - t0;
    const logits = Array.from(out[this.outputName].data);
    const embedding = this.embeddingName ? Array.from(out[this.embeddingName].data) : null;
    state.lastInput = Array.from(input);
    state.lastLogits = logits;
    pushSample(state.modelMs, ms);
    const { labels, probs } = scoreWithVocabulary(logits, embedding, meta.labels.slice(0, logits.length), vocabulary);
    return { probs, labels, logits, ms, nKnown: logits.length };
  }
}

/** The server's classifier and segmenter, over WS /v1/stream (one JSON frame per message). */
class ServerStream {
  static async open() {
    const url = new URL("v1/stream", document.baseURI);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`cannot open the WebSocket ${url}`));
    });
    if (options.threshold !== null) ws.send(JSON.stringify({ start: { threshold: options.threshold } }));
    return new ServerStream(ws);
  }

  constructor(ws) {
    this.ws = ws;
    this.sentAt = [];
    ws.onmessage = (message) => this.onEvent(JSON.parse(message.data));
    ws.onclose = () => {
      if (state.phase !== "error") setStatus("The server closed the stream; reload the page.", true);
    };
  }

  /** One raw frame (model layout, MediaPipe's coordinates) of a width x height image at t s. */
  send(frame, t, t0, width, height) {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.sentAt.push(t0);
    if (this.sentAt.length > 64) this.sentAt.shift();
    // As POST /v1/predict: raw coordinates and the image size; the server does the aspect step.
    // t: the server's segmenter is time-based; without it the server would assume 30 fps.
    this.ws.send(JSON.stringify({ frame: pointsOf(frame), t, image_width: width, image_height: height }));
  }

  reset() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ reset: true }));
  }

  /** End of a file: the server reports the open segment. */
  flush() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ flush: true }));
  }

  onEvent(event) {
    const now = performance.now();
    if (event.top) {
      if (this.sentAt.length) pushSample(state.delaysMs, now - this.sentAt[this.sentAt.length - 1]);
      onPrediction(normaliseTop(event.top), now);
    }
    if (event.type === "error") setStatus(`server: ${event.message ?? event.detail ?? "error"}`, true);
    else showEvent(event);
  }
}

/** Float32Array frame -> [[x, y, z] or null per point], the JSON the server takes. */
function pointsOf(frame) {
  const n = meta.n_coords;
  const points = [];
  for (let i = 0; i < info.nPoints; i++) {
    const p = Array.from(frame.subarray(i * n, (i + 1) * n));
    points.push(Number.isNaN(p[0]) ? null : p);
  }
  return points;
}

function normaliseTop(top) {
  return top.map((t) => (Array.isArray(t) ? { label: t[0], prob: t[1] } : { label: t.label, prob: t.prob }));
}

function onPrediction(top, now) {
  state.predictions += 1;
  if (state.firstPredictionAt === null) state.firstPredictionAt = now;
  showTop(top);
}

// ------------------------------------------------------------------------------ the pipeline

/** One Holistic result: draw it, turn it into a model-layout frame, stream it to a classifier. */
async function handleResults(results, frameInfo) {
  const { t, t0, width, height } = frameInfo;
  state.frames += 1;
  if (results.poseLandmarks) state.framesWithPose += 1;
  if (results.leftHandLandmarks || results.rightHandLandmarks) state.framesWithHands += 1;
  drawSkeleton(results, width, height);

  const raw = frameFromResults(results, info, meta.n_coords);
  const frame = aspectCorrected(raw, meta.n_coords, width, height);
  enrolment?.onFrame(raw, t, width, height, Boolean(results.leftHandLandmarks || results.rightHandLandmarks));
  if (state.source === "file" && state.file) {
    state.file.frames.push(Array.from(raw));
    state.file.times.push(t);
    state.file.modelFrames.push(frame);
  }

  if (state.inferMode === "server") {
    server.send(raw, t, t0, width, height);
  } else {
    const action = await segmenter.push(frame, frameSummary(frame, info, meta.n_coords), t, tagger?.tag);
    await runAction(action, t0);
  }
  updateStats(performance.now());
}

/** A segmenter action -> classify its frames -> the same event the server would send. */
async function runAction(action, t0) {
  if (!action) return;
  let probs = null;
  let labels = meta.labels;
  let nKnown;
  if (action.kind !== "rest") {
    ({ probs, labels, nKnown } = await classifier.classify(action.frames));
    const now = performance.now();
    if (t0 !== undefined) pushSample(state.delaysMs, now - t0);
    onPrediction(topK(probs, labels, state.stream.top_k), now);
  }
  showEvent(streamEvent(action, probs, labels, state.stream, nKnown));
}

/** Holistic on one image; `timestampMs` pins MediaPipe's clock (files), else it uses real time. */
async function sendToHolistic(image, timestampMs) {
  const t0 = performance.now();
  latestResults = null;
  // The public send() always stamps frames with performance.now(); the solution's inner runner
  // takes an explicit timestamp (ms). Version pinned in web/package.json, so this stays valid.
  const inner = holistic.h;
  if (timestampMs !== undefined && inner && typeof inner.send === "function") {
    await inner.send({ image }, timestampMs);
  } else {
    await holistic.send({ image });
  }
  pushSample(state.holisticMs, performance.now() - t0);
  return latestResults;
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

async function cameraLoop(token) {
  let lastTime = -1;
  while (token === loopToken) {
    if (video.readyState >= 2 && video.currentTime !== lastTime) {
      lastTime = video.currentTime;
      const t0 = performance.now();
      const results = await sendToHolistic(video);
      if (token !== loopToken) break;
      if (results) {
        await handleResults(results, { t: t0 / 1000, t0, width: video.videoWidth, height: video.videoHeight });
      }
    }
    // Holistic runs synchronously and its promise settles in microtasks: without this the loop
    // would never give the page a task turn (no painting, no input, no events).
    await nextFrame();
  }
}

async function startCamera() {
  if (!navigator.mediaDevices?.getUserMedia) {
    $("stage-note").textContent = "No camera API here (the page needs http://localhost or https).";
    return;
  }
  $("stage-note").textContent = "Asking for the camera…";
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    $("stage-note").textContent = `No camera (${e.name}): open a video file instead.`;
    return;
  }
  await resumeCamera();
  $("camera").textContent = "Stop camera";
}

async function resumeCamera() {
  video.srcObject = cameraStream;
  video.removeAttribute("src");
  await video.play();
  holistic.reset();
  segmenter.reset();
  server?.reset();
  showActivity("resting");
  state.source = "webcam";
  $("stage-note").textContent = "";
  setStatus(readyText());
  cameraLoop(++loopToken);
}

function stopCamera() {
  loopToken++;
  cameraStream?.getTracks().forEach((track) => track.stop());
  cameraStream = null;
  video.srcObject = null;
  state.source = null;
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  $("stage-note").textContent = "Camera off.";
  $("camera").textContent = "Start camera";
}

// ------------------------------------------------------------------------------ video files

function once(target, event) {
  return new Promise((resolve, reject) => {
    target.addEventListener(event, resolve, { once: true });
    target.addEventListener("error", () => reject(new Error("the browser cannot decode this video")), { once: true });
  });
}

/** The frame period, from the timestamps of a few frames played (muted) from the start. */
async function frameDuration() {
  const times = [];
  await new Promise((resolve) => {
    const onFrame = (_now, metadata) => {
      times.push(metadata.mediaTime);
      if (times.length < 8 && !video.ended) video.requestVideoFrameCallback(onFrame);
      else resolve();
    };
    video.requestVideoFrameCallback(onFrame);
    video.play().catch(resolve);
    setTimeout(resolve, 1500);
  });
  video.pause();
  const steps = times.slice(1).map((t, i) => t - times[i]).filter((d) => d > 1e-4);
  return steps.length ? Math.min(...steps) : 1 / 30;
}

/** Seek and wait until that frame is ready; resolves to its presentation time. */
function seekTo(time) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (mediaTime) => {
      if (!done) {
        done = true;
        resolve(mediaTime);
      }
    };
    video.requestVideoFrameCallback((_now, metadata) => finish(metadata.mediaTime));
    video.addEventListener("seeked", () => setTimeout(() => finish(video.currentTime), 250), { once: true });
    video.currentTime = time;
  });
}

/** A whole video, frame by frame, through the same path as the webcam; then one clip prediction. */
async function processFile(file) {
  const wasCamera = state.source === "webcam";
  loopToken++;
  state.source = "file";
  state.file = { name: file.name, status: "running", frames: [], times: [], modelFrames: [], top: null };
  $("file-result").textContent = `Reading ${file.name}…`;
  $("stage-note").textContent = "";
  const url = URL.createObjectURL(file);
  try {
    video.srcObject = null;
    video.src = url;
    await once(video, "loadeddata");
    state.file.width = video.videoWidth;
    state.file.height = video.videoHeight;
    const dt = await frameDuration();
    holistic.reset();
    segmenter.reset();
    server?.reset();
    showActivity("resting");
    let previous = -1;
    let n = 0;
    for (let k = 0; (k + 0.5) * dt < video.duration; k++) {
      const mediaTime = await seekTo((k + 0.5) * dt);
      if (mediaTime === previous) continue; // the same frame again (variable frame rate)
      previous = mediaTime;
      const t0 = performance.now();
      const results = await sendToHolistic(video, n * FILE_FRAME_MS);
      n += 1;
      if (results) {
        await handleResults(results, { t: mediaTime, t0, width: video.videoWidth, height: video.videoHeight });
      }
      $("file-result").textContent = `${file.name}: frame ${n}…`;
    }
    await finishFile(n);
  } catch (e) {
    state.file.status = "error";
    state.file.error = String(e.message ?? e);
    $("file-result").textContent = `${file.name}: ${state.file.error}`;
  } finally {
    URL.revokeObjectURL(url);
  }
  if (wasCamera && cameraStream) await resumeCamera();
}

async function finishFile(nFrames) {
  const file = state.file;
  if (state.inferMode === "server") {
    // The server's segmenter saw the frames; close its open segment and ask for the whole clip
    // (raw MediaPipe coordinates + the image size: the server does the aspect step itself).
    server.flush();
    if (file.frames.length === 0) throw new Error("no frames could be read");
    const frames = file.frames.map((f) => pointsOf(Float32Array.from(f, (v) => v ?? NaN)));
    const response = await fetch("v1/predict", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        frames,
        layout: info.name,
        top_k: TOP_K,
        image_width: file.width,
        image_height: file.height,
      }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(`v1/predict: ${body.detail ?? response.status}`);
    file.top = normaliseTop(body.top ?? body.predictions ?? []);
    showActivity("resting");
  } else {
    await runAction(segmenter.flush());
    if (file.modelFrames.length === 0) throw new Error("no frames could be read");
    const { probs, labels } = await classifier.classify(file.modelFrames);
    file.top = topK(probs, labels, TOP_K);
  }
  showTop(file.top);
  file.status = "done";
  const best = file.top[0];
  $("file-result").textContent =
    `${file.name}: ${nFrames} frames, hands in ${file.frames.filter((f) => hasHand(f)).length}; ` +
    `whole clip: ${best.label} (${Math.round(best.prob * 100)}%)`;
}

function hasHand(frame) {
  const nCoords = meta.n_coords;
  return info.parts
    .filter((p) => p.component.endsWith("_hand"))
    .some((p) => !Number.isNaN(frame[p.offset * nCoords]));
}

// ---------------------------------------------------------------------------------- setup

/** The WebGL renderer's name; software ones (SwiftShader, llvmpipe) make GPU inference crawl. */
function webglRenderer() {
  const gl = document.createElement("canvas").getContext("webgl2");
  if (!gl) return null;
  const ext = gl.getExtension("WEBGL_debug_renderer_info");
  return String(ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER));
}

export function chooseCpuInference(mode, renderer) {
  if (mode === "1" || mode === "true") return true;
  if (mode === "0" || mode === "false") return false;
  return /swiftshader|llvmpipe|softpipe|software|basic render/i.test(renderer ?? "");
}

function readyText() {
  const where = state.inferMode === "browser" ? "in the browser" : "on the server";
  return `Ready: ${meta.labels.length} signs, classifier ${where}.`;
}

async function loadModelMetadata() {
  const response = await fetch("v1/model");
  if (!response.ok) throw new Error(`GET v1/model: HTTP ${response.status} (is a model loaded? islr serve --model …)`);
  const m = await response.json();
  for (const key of ["labels", "layout", "n_coords", "seq_len", "stream"]) {
    if (m[key] === undefined) throw new Error(`the model metadata has no "${key}"`);
  }
  return m;
}

async function setUpClassifier() {
  if (options.infer !== "server") {
    try {
      classifier = await BrowserClassifier.create("v1/model.onnx");
      state.inferMode = "browser";
      return;
    } catch (e) {
      if (options.infer === "browser") throw e;
      console.warn("in-browser classifier unavailable, using the server:", e);
    }
  }
  server = await ServerStream.open();
  state.inferMode = "server";
}

async function setUpHolistic() {
  if (!window.Holistic) throw new Error("MediaPipe Holistic did not load (static/vendor missing: run `make web`)");
  state.webglRenderer = webglRenderer();
  if (state.webglRenderer === null) throw new Error("this browser has no WebGL2, which MediaPipe Holistic needs");
  state.mpCpuInference = chooseCpuInference(options.mpCpu, state.webglRenderer);
  const base = new URL("static/vendor/holistic/", document.baseURI).href;
  holistic = new window.Holistic({ locateFile: (file) => base + file });
  holistic.setOptions({
    // The same settings as the Python extractor (islr.extract.holistic.new_holistic).
    modelComplexity: 1,
    smoothLandmarks: true,
    enableSegmentation: false,
    refineFaceLandmarks: false,
    minDetectionConfidence: 0.5,
    minTrackingConfidence: 0.5,
    useCpuInference: state.mpCpuInference,
  });
  holistic.onResults((results) => {
    latestResults = results;
  });
  await holistic.initialize();
}

function wireControls() {
  $("camera").addEventListener("click", () => (cameraStream ? stopCamera() : startCamera()));
  $("clear").addEventListener("click", () => {
    state.transcript = [];
    $("transcript").replaceChildren();
  });
  $("file").addEventListener("change", (e) => {
    if (e.target.files.length) processFile(e.target.files[0]);
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) processFile(e.dataTransfer.files[0]);
  });
}

/** The "Add a sign" panel over GET/POST/DELETE /v1/vocabulary; the page works without it. */
async function setUpEnrolment() {
  enrolment = new Enrolment($("enrol"), {
    state,
    layout: info.name,
    pointsOf,
    cameraOn: () => state.source === "webcam" && cameraStream !== null,
    streamConfig: () => state.stream,
    activity: () => state.activity,
    stageNote: (text) => ($("stage-note").textContent = text),
    onVocabulary: useVocabulary,
  });
  try {
    await enrolment.load();
  } catch (e) {
    console.warn("the vocabulary could not be read:", e);
  }
}

/** A fresh GET /v1/vocabulary: the in-browser classifier scores its added signs from now on. */
function useVocabulary(answer) {
  vocabulary = answer;
  const added = (answer.signs ?? []).filter((s) => s.prototypes?.length).map((s) => s.label);
  state.vocabulary = { added, scoredIn: state.inferMode };
  if (state.inferMode === "browser" && added.length && !classifier.embeddingName) {
    vocabulary = null; // scoring them needs the embedding output; the known signs still work
    enrolment.setNotice(
      "This model has no embedding output (exported before added signs existed): re-export it, " +
        "or use ?infer=server, to recognise the added signs here.",
    );
  }
}

async function main() {
  try {
    setStatus("Loading the model…");
    meta = await loadModelMetadata();
    info = layoutInfo(meta.layout);
    // The server's segmenter settings (the model's, or `islr serve --threshold`): one behaviour.
    state.stream = streamConfig(meta.stream, options.threshold === null ? {} : { threshold: options.threshold });
    state.model = { name: meta.model, labels: meta.labels.length, layout: info.name, seqLen: meta.seq_len };
    await setUpClassifier();
    segmenter = await setUpSegmenter(); // after the classifier, which set onnxruntime-web up
    setStatus("Loading MediaPipe Holistic (about 30 MB)…");
    await setUpHolistic();
  } catch (e) {
    fail(String(e.message ?? e));
    return;
  }
  wireControls();
  await setUpEnrolment();
  state.phase = "ready";
  setStatus(readyText());
  updateStats(performance.now());
  if (options.camera) await startCamera();
  else $("stage-note").textContent = "Camera off: start it or open a video file.";
}

main();
