// The live page: webcam or a video file -> MediaPipe Holistic (in the browser) -> landmarks in the
// model's layout -> classifier (onnxruntime-web in the browser, or the server over a WebSocket)
// -> top-3 signs and a running transcript. All files come from where the page came from: an
// `islr serve` (its API under v1/), or a static site from `islr web build` (site.json, no API:
// everything runs in the browser, offline after one visit, signs added into IndexedDB).
// Everything the page holds lives in one LivePage object; `page.state` is its readable part
// (window.islrState, for tests and the console).
import { aspectCorrected, frameFromResults, layoutInfo, modelInput } from "./model_input.js";
import { StreamSegmenter, streamConfig, topLabels } from "./streaming.js";
import { SegmenterModel } from "./segmenter.js";
import { scoreWithVocabulary } from "./vocabulary.js";
import { Calibration } from "./calibration.js";
import { Enrolment } from "./enrol_panel.js";
import { LocalVocabulary } from "./local_vocabulary.js";

const TOP_K = 3; // of a whole video file
const MAX_SAMPLES = 200; // timing samples kept for the figures
// Python's MediaPipe solution stamps frame n at n * 33.333 ms whatever the video's frame rate;
// using the same clock for files keeps the landmark smoothing (time-based) identical.
const FILE_FRAME_MS = 1000 / 30;

const $ = (id) => document.getElementById(id);

function pushSample(list, value) {
  list.push(value);
  if (list.length > MAX_SAMPLES) list.shift();
}

const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const fmt = (v, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : "–");
const guesses = (top) => top.map((t) => `${t.label} ${Math.round(t.prob * 100)}%`).join(", ");
const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

function normaliseTop(top) {
  return top.map((t) => (Array.isArray(t) ? { label: t[0], prob: t[1] } : { label: t.label, prob: t.prob }));
}

function once(target, event) {
  return new Promise((resolve, reject) => {
    target.addEventListener(event, resolve, { once: true });
    target.addEventListener("error", () => reject(new Error("the browser cannot decode this video")), { once: true });
  });
}

/** The page's options from its query string. */
function pageOptions(search) {
  const params = new URLSearchParams(search);
  return {
    infer: params.get("infer") || "auto", // auto | browser | server
    mpCpu: params.get("mpcpu") || "auto", // auto | 1 | 0
    // overrides the served stream threshold (the server path sends it in WS /v1/stream's start)
    threshold: params.has("threshold") ? Number(params.get("threshold")) : null,
    camera: params.get("camera") !== "0",
    facing: params.get("facing") === "environment" ? "environment" : "user", // front camera first
    pose: params.get("pose"), // lite | full: MediaPipe's pose model (default: the site's, or full)
  };
}

/** What the page shows and tests read (window.islrState). */
function initialState(options) {
  return {
    phase: "loading", // loading | ready | error
    error: null,
    options,
    inferMode: null, // browser | server
    mpCpuInference: null,
    webglRenderer: null,
    model: null,
    source: null, // webcam | file | null
    site: null, // on a static site: {build, files, bytes}; null behind islr serve
    offlineReady: false, // the service worker cached the whole site
    facing: null, // user | environment: the camera in use
    guesses: null, // what a tapped word of the transcript shows
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
}

// ------------------------------------------------------------------------------- drawing

const COLORS = { pose: "#be4bdb", left_hand: "#fd7e14", right_hand: "#228be6", face: "#2f9e44" };
const UPPER_BODY = (a, b) => a < 23 && b < 23; // legs are rarely in frame when signing

/** The skeleton of one Holistic result on `canvas`; true when something was drawn. */
function drawSkeleton(canvas, results, info, width, height) {
  const ctx = canvas.getContext("2d");
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
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
  return drew;
}

// ---------------------------------------------------------------------------- classifiers

/** The exported ONNX model run by onnxruntime-web (wasm backend, files served from vendor/). */
class BrowserClassifier {
  static async create(url, meta, info) {
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
    return new BrowserClassifier(ort, session, meta, info);
  }

  constructor(ort, session, meta, info) {
    this.ort = ort;
    this.session = session;
    this.meta = meta;
    this.info = info;
    this.inputName = session.inputNames.includes("landmarks") ? "landmarks" : session.inputNames[0];
    this.outputName = session.outputNames.includes("logits") ? "logits" : session.outputNames[0];
    // the second output of models exported with one: scores the signs added on the page
    this.embeddingName = session.outputNames.includes("embedding") ? "embedding" : null;
    this.vocabulary = null; // GET /v1/vocabulary: the added signs scored (useVocabulary)
  }

  /** The unit sign embedding of model-layout, aspect-corrected frames (adding signs). */
  async embed(frames) {
    if (!this.embeddingName) throw new Error("this model has no embedding output: export it again to add signs");
    const { seq_len: seqLen, n_coords: nCoords } = this.meta;
    const input = modelInput(frames, seqLen, this.info.nPoints * nCoords);
    const tensor = new this.ort.Tensor("float32", input, [1, seqLen, this.info.nPoints, nCoords]);
    const e = Array.from((await this.session.run({ [this.inputName]: tensor }))[this.embeddingName].data);
    const norm = Math.max(Math.hypot(...e), 1e-12);
    return e.map((v) => v / norm);
  }

  /** frames: model-layout, aspect-corrected Float32Arrays -> {probs, labels, nKnown, logits,
   * input, ms}: the probabilities over the known signs and the added ones (scoreWithVocabulary). */
  async classify(frames) {
    const { seq_len: seqLen, n_coords: nCoords } = this.meta;
    const input = modelInput(frames, seqLen, this.info.nPoints * nCoords);
    const tensor = new this.ort.Tensor("float32", input, [1, seqLen, this.info.nPoints, nCoords]);
    const t0 = performance.now();
    const out = await this.session.run({ [this.inputName]: tensor });
    const ms = performance.now() - t0;
    const logits = Array.from(out[this.outputName].data);
    const embedding = this.embeddingName ? Array.from(out[this.embeddingName].data) : null;
    const known = this.meta.labels.slice(0, logits.length);
    const { labels, probs } = scoreWithVocabulary(logits, embedding, known, this.vocabulary);
    return { probs, labels, nKnown: logits.length, logits, input, ms };
  }
}

/** The server's classifier and segmenter, over WS /v1/stream (one JSON frame per message). */
class ServerStream {
  static async open(threshold, onEvent, onClose) {
    const url = new URL("v1/stream", document.baseURI);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`cannot open the WebSocket ${url}`));
    });
    if (threshold !== null) ws.send(JSON.stringify({ start: { threshold } }));
    return new ServerStream(ws, onEvent, onClose);
  }

  /** onEvent(event, sentAt): each server event with the send time of the latest frame. */
  constructor(ws, onEvent, onClose) {
    this.ws = ws;
    this.sentAt = [];
    ws.onmessage = (message) => onEvent(JSON.parse(message.data), this.sentAt[this.sentAt.length - 1]);
    ws.onclose = onClose;
  }

  /** One raw frame as points (pointsOf) of a width x height image at t s, sent at t0. */
  send(points, t, t0, width, height) {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.sentAt.push(t0);
    if (this.sentAt.length > 64) this.sentAt.shift();
    // As POST /v1/predict: raw coordinates and the image size; the server does the aspect step.
    // t: the server's segmenter is time-based; without it the server would assume 30 fps.
    this.ws.send(JSON.stringify({ frame: points, t, image_width: width, image_height: height }));
  }

  reset() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ reset: true }));
  }

  /** End of a file: the server reports the open segment. */
  flush() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ flush: true }));
  }
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

const here = (url) => new URL(url.replace(/^\//, ""), document.baseURI);

async function fetchJson(url) {
  const response = await fetch(here(url));
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.json();
}

/**
 * Where the page runs: {server: true, meta} behind islr serve (GET v1/model answers), else a
 * static site (site.json: the build's manifest) -> {server: false, site, meta}.
 */
async function findModel() {
  let probe = null;
  try {
    probe = await fetch(here("v1/model"));
  } catch {
    probe = null; // offline, or a service worker with no server behind it
  }
  if (probe?.ok && (probe.headers.get("content-type") ?? "").includes("json")) {
    return { server: true, meta: checkedMetadata(await probe.json()) };
  }
  let site;
  try {
    site = await fetchJson("site.json");
  } catch {
    const why = probe ? `HTTP ${probe.status}` : "no answer";
    throw new Error(`GET v1/model: ${why}, and no site.json: neither islr serve nor an islr web build here`);
  }
  return { server: false, site };
}

function checkedMetadata(m) {
  for (const key of ["labels", "layout", "n_coords", "seq_len", "stream"]) {
    if (m[key] === undefined) throw new Error(`the model metadata has no "${key}"`);
  }
  return m;
}

/**
 * The static site's service worker, installed and in control: it caches (and unpacks) every
 * file of the build, so the page loads them from there, online or not. onProgress(message)
 * hears its progress. A newer build taking over reloads the page onto it.
 */
async function serviceWorkerInControl(onProgress) {
  const workers = navigator.serviceWorker;
  if (!workers) throw new Error("this browser has no service workers, which this site needs (a private window?)");
  workers.addEventListener("message", (e) => e.data?.type === "islr-install" && onProgress(e.data));
  const hadController = Boolean(workers.controller);
  let registration = null;
  try {
    registration = await workers.register("sw.js");
  } catch (e) {
    // offline, the browser cannot check for a newer worker: the installed one serves
    if (!hadController) throw new Error(`cannot install the app for offline use (${e.message ?? e})`);
  }
  if (hadController && !registration?.installing && !registration?.waiting) {
    workers.addEventListener("controllerchange", () => location.reload()); // a newer build, later
    return;
  }
  await new Promise((resolve) => workers.addEventListener("controllerchange", resolve, { once: true }));
  if (hadController) {
    location.reload(); // a newer build replaced the one this page came from
    await new Promise(() => {});
  }
  workers.addEventListener("controllerchange", () => location.reload());
}

/** A djb2 hash, in hex: which model the signs added in this browser belong to. */
function textHash(text) {
  let h = 5381;
  for (let i = 0; i < text.length; i++) h = ((h * 33) ^ text.charCodeAt(i)) >>> 0;
  return h.toString(16);
}

/** The page: its elements, its state, the model, the landmarker, the camera and the classifier. */
class LivePage {
  constructor(options) {
    this.options = options;
    this.state = initialState(options);
    this.video = $("video");
    this.overlay = $("overlay");
    this.meta = null; // GET /v1/model
    this.info = null; // layoutInfo(meta.layout)
    this.holistic = null;
    this.latestResults = null; // the last Holistic result (its onResults callback)
    this.classifier = null; // BrowserClassifier, or null on the server path
    this.server = null; // ServerStream on the server path
    this.segmenter = null; // StreamSegmenter of the in-browser path
    this.tagger = null; // the learned segmenter's model (SegmenterModel), when served
    this.cameraStream = null;
    this.loopToken = 0; // a new token stops the running frame loop
    this.enrolment = null; // the "Add a sign" panel
    this.site = null; // site.json of a static site (no server)
    this.localVocabulary = null; // LocalVocabulary: the added signs on a static site
    this.frameT0 = undefined; // when the frame being segmented arrived (its prediction delay)
    this.stats = { lastUpdate: 0, frameTimes: [] };
  }

  // -------------------------------------------------------------------------------- UI

  setStatus(text, isError = false) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  fail(message) {
    this.state.phase = "error";
    this.state.error = message;
    this.setStatus(message, true);
    $("stage-note").textContent = "";
  }

  showTop(top) {
    this.state.top = top;
    $("top").replaceChildren(
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

  showSegment(text) {
    this.state.segment = text;
    $("segment-state").textContent = text;
  }

  showActivity(activity) {
    this.state.activity = activity;
    const el = $("activity");
    el.textContent = activity;
    el.classList.toggle("signing", activity === "signing");
  }

  /**
   * One word per sign; a greyed "?" for a segment that is not a known sign. A tap (or a click)
   * on a word shows what it was: a sign's probability, a "?"'s best guesses.
   */
  addToTranscript(entry) {
    this.state.transcript.push(entry);
    const el = $("transcript");
    if (this.state.transcript.length === 1) el.replaceChildren();
    el.classList.remove("muted");
    const word = document.createElement("button");
    word.type = "button";
    const times = `${entry.start.toFixed(1)}–${entry.end.toFixed(1)} s`;
    if (entry.type === "sign") {
      word.className = "word";
      word.textContent = entry.label;
      word.title = `${entry.label}: ${Math.round(entry.prob * 100)}% (${times})`;
    } else {
      word.className = "word unknown";
      word.textContent = "?";
      word.title = `not a known sign (${times}); best guesses: ${guesses(entry.top)}`;
    }
    word.addEventListener("click", () => this.showGuesses(word));
    el.append(word);
  }

  showGuesses(word) {
    const el = $("guesses");
    const same = this.state.guesses === word.title && !el.hidden;
    for (const w of $("transcript").querySelectorAll(".word.shown")) w.classList.remove("shown");
    el.hidden = same;
    this.state.guesses = same ? null : word.title;
    if (!same) {
      word.classList.add("shown");
      el.textContent = word.title;
    }
  }

  /** A segmentation event, from the server or the in-browser segmenter (the same events). */
  showEvent(event) {
    this.enrolment?.onEvent(event);
    if (event.type === "partial") {
      this.showActivity("signing");
      this.showSegment("signing…");
    } else if (event.type === "sign") {
      this.showActivity("resting");
      const { label, prob, start, end } = event;
      this.addToTranscript({ type: "sign", label, prob, start, end });
      this.showSegment(`sign: ${event.label}`);
    } else if (event.type === "unknown") {
      this.showActivity("resting");
      this.addToTranscript({ type: "unknown", start: event.start, end: event.end, top: event.top });
      this.showSegment(`not a known sign (${guesses(event.top.slice(0, 1))})`);
    } else if (event.type === "rest") {
      this.showActivity("resting");
    }
  }

  onPrediction(top, now) {
    this.state.predictions += 1;
    if (this.state.firstPredictionAt === null) this.state.firstPredictionAt = now;
    this.showTop(top);
  }

  updateStats(now) {
    const { state, stats } = this;
    stats.frameTimes.push(now);
    while (stats.frameTimes.length && now - stats.frameTimes[0] > 2000) stats.frameTimes.shift();
    if (now - stats.lastUpdate < 250) return;
    stats.lastUpdate = now;
    const times = stats.frameTimes;
    state.fps = times.length > 1 ? (1000 * (times.length - 1)) / (now - times[0]) : 0;
    const { meta, info } = this;
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

  readyText() {
    const where = this.state.inferMode === "browser" ? "in the browser" : "on the server";
    return `Ready: ${this.meta.labels.length} signs, classifier ${where}.`;
  }

  // ------------------------------------------------------------------------- the pipeline

  /** Float32Array frame -> [[x, y, z] or null per point], the JSON the server takes. */
  pointsOf(frame) {
    const n = this.meta.n_coords;
    const points = [];
    for (let i = 0; i < this.info.nPoints; i++) {
      const p = Array.from(frame.subarray(i * n, (i + 1) * n));
      points.push(Number.isNaN(p[0]) ? null : p);
    }
    return points;
  }

  hasHand(frame) {
    const nCoords = this.meta.n_coords;
    return this.info.parts
      .filter((p) => p.component.endsWith("_hand"))
      .some((p) => !Number.isNaN(frame[p.offset * nCoords]));
  }

  /** The in-browser classifier on frames; its input, logits and time are kept for the figures. */
  async classify(frames) {
    const result = await this.classifier.classify(frames);
    const { state } = this;
    state.lastInput = Array.from(result.input);
    state.lastLogits = result.logits;
    pushSample(state.modelMs, result.ms);
    return result;
  }

  /** classify() for the stream segmenter: also the prediction's delay and the top signs. */
  async classifyForStream(frames) {
    const result = await this.classify(frames);
    const { state } = this;
    const now = performance.now();
    if (this.frameT0 !== undefined) pushSample(state.delaysMs, now - this.frameT0);
    this.onPrediction(topLabels(result.probs, result.labels, state.stream.top_k), now);
    return result;
  }

  /** A server event; sentAt: when the latest frame went out. */
  onServerEvent(event, sentAt) {
    const now = performance.now();
    if (event.top) {
      if (sentAt !== undefined) pushSample(this.state.delaysMs, now - sentAt);
      this.onPrediction(normaliseTop(event.top), now);
    }
    if (event.type === "error") this.setStatus(`server: ${event.message ?? event.detail ?? "error"}`, true);
    else this.showEvent(event);
  }

  /** One Holistic result: draw it, turn it into a model-layout frame, stream it to a classifier. */
  async handleResults(results, frameInfo) {
    const { t, t0, width, height } = frameInfo;
    const { state, meta, info } = this;
    state.frames += 1;
    if (results.poseLandmarks) state.framesWithPose += 1;
    const handsSeen = Boolean(results.leftHandLandmarks || results.rightHandLandmarks);
    if (handsSeen) state.framesWithHands += 1;
    if (drawSkeleton(this.overlay, results, info, width, height)) state.framesDrawn += 1;

    const raw = frameFromResults(results, info, meta.n_coords);
    const frame = aspectCorrected(raw, meta.n_coords, width, height);
    this.enrolment?.onFrame(raw, t, width, height, handsSeen);
    if (state.source === "file" && state.file) {
      state.file.frames.push(Array.from(raw));
      state.file.times.push(t);
      state.file.modelFrames.push(frame);
    }

    if (state.inferMode === "server") {
      this.server.send(this.pointsOf(raw), t, t0, width, height);
    } else {
      this.frameT0 = t0;
      for (const event of await this.segmenter.push(frame, t)) this.showEvent(event);
      state.framesTagged = this.tagger?.framesTagged ?? 0;
    }
    this.updateStats(performance.now());
  }

  /** Holistic on one image; `timestampMs` pins MediaPipe's clock (files), else it uses real time. */
  async sendToHolistic(image, timestampMs) {
    const t0 = performance.now();
    this.latestResults = null;
    // The public send() always stamps frames with performance.now(); the solution's inner runner
    // takes an explicit timestamp (ms). Version pinned in web/package.json, so this stays valid.
    const inner = this.holistic.h;
    if (timestampMs !== undefined && inner && typeof inner.send === "function") {
      await inner.send({ image }, timestampMs);
    } else {
      await this.holistic.send({ image });
    }
    pushSample(this.state.holisticMs, performance.now() - t0);
    return this.latestResults;
  }

  async cameraLoop(token) {
    const video = this.video;
    let lastTime = -1;
    while (token === this.loopToken) {
      if (video.readyState >= 2 && video.currentTime !== lastTime) {
        lastTime = video.currentTime;
        const t0 = performance.now();
        const results = await this.sendToHolistic(video);
        if (token !== this.loopToken) break;
        if (results) {
          await this.handleResults(results, { t: t0 / 1000, t0, width: video.videoWidth, height: video.videoHeight });
        }
      }
      // Holistic runs synchronously and its promise settles in microtasks: without this the loop
      // would never give the page a task turn (no painting, no input, no events).
      await nextFrame();
    }
  }

  async startCamera() {
    if (!navigator.mediaDevices?.getUserMedia) {
      $("stage-note").textContent = "No camera API here (the page needs http://localhost or https).";
      return;
    }
    $("stage-note").textContent = "Asking for the camera…";
    try {
      this.cameraStream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: this.options.facing, width: 640, height: 480 },
        audio: false,
      });
    } catch (e) {
      $("stage-note").textContent = `No camera (${e.name}): open a video file instead.`;
      return;
    }
    const settings = this.cameraStream.getVideoTracks()[0]?.getSettings?.() ?? {};
    this.state.facing = settings.facingMode ?? this.options.facing;
    document.body.classList.toggle("mirrored", this.state.facing !== "environment");
    await this.resumeCamera();
    $("camera").textContent = "Stop camera";
  }

  /** The other camera (front <-> back): stop this one, start that one. */
  async switchCamera() {
    this.options.facing = this.options.facing === "user" ? "environment" : "user";
    if (this.cameraStream) {
      this.stopCamera();
      await this.startCamera();
    }
  }

  /** A fresh start of the stream: the landmarker's smoothing, the segmenters. */
  resetStream() {
    this.holistic.reset();
    this.segmenter?.reset();
    this.server?.reset();
    this.showActivity("resting");
  }

  async resumeCamera() {
    this.video.srcObject = this.cameraStream;
    this.video.removeAttribute("src");
    await this.video.play();
    this.resetStream();
    this.state.source = "webcam";
    $("stage-note").textContent = "";
    this.setStatus(this.readyText());
    this.cameraLoop(++this.loopToken);
  }

  stopCamera() {
    this.loopToken++;
    this.cameraStream?.getTracks().forEach((track) => track.stop());
    this.cameraStream = null;
    this.video.srcObject = null;
    this.state.source = null;
    this.overlay.getContext("2d").clearRect(0, 0, this.overlay.width, this.overlay.height);
    $("stage-note").textContent = "Camera off.";
    $("camera").textContent = "Start camera";
  }

  // ---------------------------------------------------------------------------- video files

  /** The frame period, from the timestamps of a few frames played (muted) from the start. */
  async frameDuration() {
    const video = this.video;
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
    const steps = times
      .slice(1)
      .map((t, i) => t - times[i])
      .filter((d) => d > 1e-4);
    return steps.length ? Math.min(...steps) : 1 / 30;
  }

  /** Seek and wait until that frame is ready; resolves to its presentation time. */
  seekTo(time) {
    const video = this.video;
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
  async processFile(file) {
    const { state, video } = this;
    const wasCamera = state.source === "webcam";
    this.loopToken++;
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
      const dt = await this.frameDuration();
      this.resetStream();
      let previous = -1;
      let n = 0;
      for (let k = 0; (k + 0.5) * dt < video.duration; k++) {
        const mediaTime = await this.seekTo((k + 0.5) * dt);
        if (mediaTime === previous) continue; // the same frame again (variable frame rate)
        previous = mediaTime;
        const t0 = performance.now();
        const results = await this.sendToHolistic(video, n * FILE_FRAME_MS);
        n += 1;
        if (results) {
          await this.handleResults(results, { t: mediaTime, t0, width: video.videoWidth, height: video.videoHeight });
        }
        $("file-result").textContent = `${file.name}: frame ${n}…`;
      }
      await this.finishFile(n);
    } catch (e) {
      state.file.status = "error";
      state.file.error = String(e.message ?? e);
      $("file-result").textContent = `${file.name}: ${state.file.error}`;
    } finally {
      URL.revokeObjectURL(url);
    }
    if (wasCamera && this.cameraStream) await this.resumeCamera();
  }

  async finishFile(nFrames) {
    const { state, info } = this;
    const file = state.file;
    if (state.inferMode === "server") {
      // The server's segmenter saw the frames; close its open segment and ask for the whole clip
      // (raw MediaPipe coordinates + the image size: the server does the aspect step itself).
      this.server.flush();
      if (file.frames.length === 0) throw new Error("no frames could be read");
      const frames = file.frames.map((f) => this.pointsOf(Float32Array.from(f, (v) => v ?? NaN)));
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
      this.showActivity("resting");
    } else {
      this.frameT0 = undefined;
      for (const event of await this.segmenter.flush()) this.showEvent(event);
      if (file.modelFrames.length === 0) throw new Error("no frames could be read");
      const { probs, labels } = await this.classify(file.modelFrames);
      file.top = topLabels(probs, labels, TOP_K);
    }
    this.showTop(file.top);
    file.status = "done";
    const best = file.top[0];
    $("file-result").textContent =
      `${file.name}: ${nFrames} frames, hands in ${file.frames.filter((f) => this.hasHand(f)).length}; ` +
      `whole clip: ${best.label} (${Math.round(best.prob * 100)}%)`;
  }

  // -------------------------------------------------------------------------------- setup

  async setUpClassifier() {
    const { options, state } = this;
    if (options.infer !== "server") {
      try {
        const url = here(this.meta.onnx_url ?? "v1/model.onnx");
        this.classifier = await BrowserClassifier.create(url, this.meta, this.info);
        state.inferMode = "browser";
        return;
      } catch (e) {
        if (options.infer === "browser") throw e;
        console.warn("in-browser classifier unavailable, using the server:", e);
      }
    }
    this.server = await ServerStream.open(
      options.threshold,
      (event, sentAt) => this.onServerEvent(event, sentAt),
      () => {
        if (state.phase !== "error") this.setStatus("The server closed the stream; reload the page.", true);
      },
    );
    state.inferMode = "server";
  }

  /**
   * The in-browser path's segmenter: the learned one when the served settings choose it and the
   * server serves it, else the heuristic (with ?infer=server the server segments).
   */
  async setUpSegmenter() {
    const { state, meta } = this;
    if (state.inferMode !== "browser") return;
    const spec = meta.segmenter;
    this.tagger = null;
    if (state.stream.segmenter === "learned" && spec) {
      const response = await fetch(here(spec.url));
      if (!response.ok) throw new Error(`GET ${spec.url}: HTTP ${response.status}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      this.tagger = await SegmenterModel.create(window.ort, bytes, spec, this.info, meta.n_coords);
    }
    const classify = (frames) => this.classifyForStream(frames);
    this.segmenter = new StreamSegmenter(this.info, meta.n_coords, classify, state.stream, this.tagger);
    state.segmenterKind = this.segmenter.kind;
  }

  async setUpHolistic() {
    const { options, state } = this;
    if (!window.Holistic) throw new Error("MediaPipe Holistic did not load (static/vendor missing: run `make web`)");
    state.webglRenderer = webglRenderer();
    if (state.webglRenderer === null) throw new Error("this browser has no WebGL2, which MediaPipe Holistic needs");
    state.mpCpuInference = chooseCpuInference(options.mpCpu, state.webglRenderer);
    const base = new URL("static/vendor/holistic/", document.baseURI).href;
    this.holistic = new window.Holistic({ locateFile: (file) => base + file });
    // pose "full": the Python extractor's settings (islr.extract.holistic.new_holistic); a static
    // site may be built with the lite pose model (islr web build --pose lite), which is faster
    const pose = options.pose ?? this.meta.pose_model ?? "full";
    state.poseModel = pose;
    this.holistic.setOptions({
      modelComplexity: pose === "lite" ? 0 : 1,
      smoothLandmarks: true,
      enableSegmentation: false,
      refineFaceLandmarks: false,
      minDetectionConfidence: 0.5,
      minTrackingConfidence: 0.5,
      useCpuInference: state.mpCpuInference,
    });
    this.holistic.onResults((results) => {
      this.latestResults = results;
    });
    await this.holistic.initialize();
  }

  wireControls() {
    $("camera").addEventListener("click", () => (this.cameraStream ? this.stopCamera() : this.startCamera()));
    $("switch-camera").addEventListener("click", () => this.switchCamera());
    $("clear").addEventListener("click", () => {
      this.state.transcript = [];
      $("transcript").replaceChildren();
    });
    $("file").addEventListener("change", (e) => {
      if (e.target.files.length) this.processFile(e.target.files[0]);
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
      if (e.dataTransfer.files.length) this.processFile(e.dataTransfer.files[0]);
    });
  }

  /** The "Add a sign" panel over GET/POST/DELETE /v1/vocabulary (the server's, or on a static
   * site the browser's own); the page works without it. */
  async setUpEnrolment() {
    const { state } = this;
    const local = this.site ? await this.openLocalVocabulary() : null;
    this.enrolment = new Enrolment($("enrol"), {
      ...(local && {
        request: (method, url, body) => local.request(method, url, body),
        exportFile: () => local.toFile(),
        importFile: (file) => local.importFile(file),
      }),
      state,
      layout: this.info.name,
      pointsOf: (frame) => this.pointsOf(frame),
      cameraOn: () => state.source === "webcam" && this.cameraStream !== null,
      streamConfig: () => state.stream,
      activity: () => state.activity,
      stageNote: (text) => ($("stage-note").textContent = text),
      onVocabulary: (answer) => this.useVocabulary(answer),
    });
    try {
      await this.enrolment.load();
    } catch (e) {
      console.warn("the vocabulary could not be read:", e);
    }
    this.calibration = new Calibration($("calibrate"), this.enrolment, {
      state,
      knownLabels: () => this.meta.known_labels ?? this.meta.labels,
    });
  }

  /** The static site's vocabulary in this browser (IndexedDB), or null when the model has none. */
  async openLocalVocabulary() {
    const files = this.site.model;
    if (!files.vocabulary || !this.classifier?.embeddingName) return null;
    const [vocabulary, reference] = await Promise.all([fetchJson(files.vocabulary), fetchJson(files.reference)]);
    const known = this.meta.known_labels ?? this.meta.labels;
    const key = `${files.name}:${vocabulary.embedding_dim}:${textHash(known.join("\n"))}`;
    const embed = async (take) => {
      const raw = take.frames.map((points) => {
        const frame = new Float32Array(this.info.nPoints * this.meta.n_coords).fill(NaN);
        points.forEach((p, i) => p && frame.set(p.slice(0, this.meta.n_coords), i * this.meta.n_coords));
        return aspectCorrected(frame, this.meta.n_coords, take.image_width, take.image_height);
      });
      return this.classifier.embed(raw);
    };
    this.localVocabulary = await LocalVocabulary.open({ vocabulary, reference }, known, key, embed);
    return this.localVocabulary;
  }

  /** A fresh GET /v1/vocabulary: the in-browser classifier scores its added signs from now on. */
  useVocabulary(answer) {
    const added = (answer.signs ?? []).filter((s) => s.prototypes?.length).map((s) => s.label);
    this.state.vocabulary = { added, scoredIn: this.state.inferMode };
    if (!this.classifier) return;
    this.classifier.vocabulary = answer;
    if (added.length && !this.classifier.embeddingName) {
      this.classifier.vocabulary = null; // scoring them needs the embedding output; the known signs still work
      this.enrolment.setNotice(
        "This model has no embedding output (exported before added signs existed): re-export it, " +
          "or use ?infer=server, to recognise the added signs here.",
      );
    }
  }

  /** On a static site: the service worker caches the build, then the model's metadata. */
  async openSite(site) {
    this.site = site;
    this.state.site = { build: site.build, files: site.files.length, bytes: site.bytes };
    this.options.infer = "browser"; // no server to fall back to
    const mb = (bytes) => (bytes / 1e6).toFixed(1);
    this.setStatus(`Getting the app ready for offline use (${mb(site.bytes)} MB on the first visit)…`);
    await serviceWorkerInControl(({ done, total, bytes }) => {
      this.setStatus(`Downloading the app for offline use: ${done} of ${total} files (${mb(bytes)} MB)…`);
    });
    this.state.offlineReady = true;
    return checkedMetadata(await fetchJson(site.model.info));
  }

  async start() {
    const { state, options } = this;
    try {
      this.setStatus("Loading the model…");
      const found = await findModel();
      this.meta = found.server ? found.meta : await this.openSite(found.site);
      this.info = layoutInfo(this.meta.layout);
      // The server's segmenter settings (the model's, or `islr serve --threshold`): one behaviour.
      const overrides = options.threshold === null ? {} : { threshold: options.threshold };
      state.stream = streamConfig(this.meta.stream, overrides);
      const { meta, info } = this;
      const name = this.site?.model.name ?? meta.model;
      state.model = { name, labels: meta.labels.length, layout: info.name, seqLen: meta.seq_len };
      await this.setUpClassifier();
      await this.setUpSegmenter(); // after the classifier, which set onnxruntime-web up
      this.setStatus("Loading MediaPipe Holistic (about 30 MB)…");
      await this.setUpHolistic();
    } catch (e) {
      this.fail(String(e.message ?? e));
      return;
    }
    this.wireControls();
    await this.setUpEnrolment();
    state.phase = "ready";
    this.setStatus(this.readyText());
    this.updateStats(performance.now());
    if (options.camera) await this.startCamera();
    else $("stage-note").textContent = "Camera off: start it or open a video file.";
  }
}

const page = new LivePage(pageOptions(location.search));
window.islrState = page.state;
page.start();
