// The page's input pipeline and streaming segmentation: pure functions, no DOM, no globals.
// Mirrors the Python side (islr.features.prepare_model_input, islr.inference.streaming) so the
// classifier sees identical input in training, in Python inference, on the server and here.

// MediaPipe Holistic result field for each layout component. Holistic's leftHandLandmarks is the
// signer's left hand (it follows pose wrist 15), as in Python's left_hand_landmarks.
export const RESULT_FIELDS = {
  left_hand: "leftHandLandmarks",
  right_hand: "rightHandLandmarks",
  pose: "poseLandmarks",
  face: "faceLandmarks",
};

const POSE_LEFT_SHOULDER = 11;
const POSE_RIGHT_SHOULDER = 12;
const HAND_WRIST = 0;

/** Where each component lives in a layout: {name, nPoints, parts: [{component, indices, offset}]}. */
export function layoutInfo(layout) {
  if (!layout || !Array.isArray(layout.parts) || layout.parts.length === 0) {
    throw new Error("the model metadata has no layout.parts");
  }
  let offset = 0;
  const parts = layout.parts.map((p) => {
    if (!(p.component in RESULT_FIELDS)) throw new Error(`unknown component ${p.component}`);
    const part = { component: p.component, indices: p.indices.slice(), offset };
    offset += p.indices.length;
    return part;
  });
  return { name: layout.name, nPoints: offset, parts };
}

/** Row of MediaPipe point `index` of `component` in the layout, or -1. */
export function layoutRow(info, component, index) {
  const part = info.parts.find((p) => p.component === component);
  if (!part) return -1;
  const j = part.indices.indexOf(index);
  return j < 0 ? -1 : part.offset + j;
}

/**
 * One Holistic result -> Float32Array(nPoints * nCoords) in the layout, coordinates exactly as
 * MediaPipe gives them (normalised x, y; z), NaN where a component was not detected.
 */
export function frameFromResults(results, info, nCoords) {
  const frame = new Float32Array(info.nPoints * nCoords).fill(NaN);
  for (const part of info.parts) {
    const landmarks = results ? results[RESULT_FIELDS[part.component]] : null;
    if (!landmarks || landmarks.length === 0) continue;
    part.indices.forEach((mpIndex, j) => {
      const lm = landmarks[mpIndex];
      if (!lm) return;
      const base = (part.offset + j) * nCoords;
      const xyz = [lm.x, lm.y, lm.z];
      for (let c = 0; c < nCoords; c++) frame[base + c] = c < 3 ? xyz[c] : NaN;
    });
  }
  return frame;
}

/**
 * y (not z) times height/width, so both axes are in units of image width (the contract's aspect
 * step; Python: islr.features.aspect_corrected). Unchanged when the size is unknown.
 */
export function aspectCorrected(frame, nCoords, width, height) {
  const out = Float32Array.from(frame);
  if (!width || !height || nCoords < 2) return out;
  const scale = height / width;
  for (let i = 1; i < out.length; i += nCoords) out[i] = out[i] * scale;
  return out;
}

/** Nearest, centre-aligned: output i = input floor((i + 0.5) * T / L), clipped to T - 1. */
export function resampleIndices(nFrames, seqLen) {
  if (nFrames < 1) throw new Error("cannot resample an empty sequence");
  const idx = new Array(seqLen);
  for (let i = 0; i < seqLen; i++) {
    idx[i] = Math.min(Math.floor(((i + 0.5) * nFrames) / seqLen), nFrames - 1);
  }
  return idx;
}

/** Frames (each Float32Array(nPoints * nCoords)) -> Float32Array(seqLen * nPoints * nCoords). */
export function modelInput(frames, seqLen, frameSize) {
  const out = new Float32Array(seqLen * frameSize);
  resampleIndices(frames.length, seqLen).forEach((src, i) => out.set(frames[src], i * frameSize));
  return out;
}

export function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** [{label, prob}] of the k most probable classes, best first. */
export function topK(probs, labels, k) {
  return probs
    .map((prob, i) => ({ label: labels[i] ?? String(i), prob }))
    .sort((a, b) => b.prob - a.prob)
    .slice(0, k);
}

/** Per-frame facts the segmenter needs: hand positions (wrists) and the body scale. */
export function frameSummary(frame, info, nCoords) {
  const point = (component, index) => {
    const row = layoutRow(info, component, index);
    if (row < 0) return null;
    const x = frame[row * nCoords];
    const y = frame[row * nCoords + 1];
    return Number.isNaN(x) || Number.isNaN(y) ? null : [x, y];
  };
  const hands = ["left_hand", "right_hand"].map((c) => point(c, HAND_WRIST));
  const ls = point("pose", POSE_LEFT_SHOULDER);
  const rs = point("pose", POSE_RIGHT_SHOULDER);
  const scale = ls && rs ? Math.hypot(ls[0] - rs[0], ls[1] - rs[1]) : null;
  return { hands, scale };
}

/**
 * The segmenter's settings, exactly as GET /v1/model serves them ("stream": the model's metadata,
 * or the server's override; Python: islr.inference.StreamConfig). No defaults here on purpose: the
 * page and the server must segment alike, so the settings come from the one place.
 */
export const STREAM_SETTINGS = [
  "threshold", // a sign is reported only when its probability reaches this, else "unknown"
  "min_sign_seconds", // shorter active stretches are noise, not signs
  "end_rest_seconds", // this long at rest ends a sign
  "max_sign_seconds", // a longer stretch is cut here (sliding window) and reported
  "still_seconds", // hands that moved less than still_fraction over this long are at rest
  "still_fraction", // of the shoulder width (or of the image width without a pose)
  "partial_every", // classify the running segment every this many active frames
  "top_k", // signs listed in partial, sign and unknown events
  "time_eps", // slack of every duration comparison (frame times are sums of 1/fps)
  // the learned segmenter's decoder (TagDecoder), used when "segmenter" is "learned"
  "sign_threshold", // P(B) + P(I) from which a frame is inside a sign
  "begin_threshold", // P(B) from which a new sign begins (rising edge)
  "out_seconds", // this long outside any sign ends the sign
  "context_seconds", // frames before a tagged sign also classified
];
export const SEGMENTERS = ["heuristic", "learned"]; // the "segmenter" setting

/** The settings of a /v1/model answer, checked; `overrides` (e.g. {threshold}) go on top. */
export function streamConfig(stream, overrides = {}) {
  if (!stream || typeof stream !== "object") throw new Error('the model info has no "stream" settings');
  const config = { ...stream, ...overrides };
  const bad = STREAM_SETTINGS.filter((k) => typeof config[k] !== "number" || !Number.isFinite(config[k]));
  if (!SEGMENTERS.includes(config.segmenter)) bad.push("segmenter");
  if (bad.length) throw new Error(`the stream settings lack or misstate ${bad.join(", ")}`);
  return config;
}

/**
 * One segmenter action and the classifier's probabilities for its frames -> the event the server
 * sends for it (islr.inference.streaming.StreamSegmenter._events): partial, sign or unknown, rest.
 */
/**
 * How sure the model is of its best sign: the best probability over the model's own signs' share
 * (the first nKnown labels; signs added to the vocabulary come after). islr.inference.streaming's
 * sign_confidence, number for number.
 */
export function signConfidence(probs, nKnown) {
  let knownMass = 0;
  for (let i = 0; i < nKnown; i++) knownMass += probs[i];
  return knownMass > 0 ? Math.max(...probs) / knownMass : 0;
}

export function streamEvent(action, probs, labels, config, nKnown = labels.length) {
  if (action.kind === "rest") return { type: "rest" };
  const round = (v, digits) => Math.round(v * 10 ** digits) / 10 ** digits;
  const top = topK(probs, labels, config.top_k).map(({ label, prob }) => ({ label, prob: round(prob, 5) }));
  if (action.kind === "partial") return { type: "partial", top };
  const times = { start: round(action.start, 3), end: round(action.end, 3) };
  // "not a known sign": the model is not sure enough of any of its signs
  if (signConfidence(probs, nKnown) < config.threshold) return { type: "unknown", ...times, top };
  return { type: "sign", label: top[0].label, prob: top[0].prob, ...times, top };
}

/**
 * Splits a stream of frames into signs: islr.inference.streaming's algorithm, setting for setting.
 * push() returns what to classify next:
 *   null | {kind: "partial", frames} | {kind: "final", frames, start, end} | {kind: "rest"}
 * and streamEvent() turns the classified action into the server's event. A frame is active when a
 * hand is detected and the hands moved (wrist travel over the last still_seconds > still_fraction
 * of the shoulder width); a segment starts at the first active frame and ends after
 * end_rest_seconds of rest or at max_sign_seconds.
 */
export class StreamSegmenter {
  /** config: streamConfig(modelInfo.stream); a missing setting is an error, never a default. */
  constructor(config) {
    this.config = streamConfig(config);
    this.reset();
  }

  reset() {
    this.history = []; // recent {t, summary} for the stillness test
    this.segment = null; // {frames, times, activeFrames, lastActive}
    this.resting = true;
  }

  moving(t) {
    const cfg = this.config;
    const recent = this.history.filter((h) => t - h.t <= cfg.still_seconds);
    const scales = recent.map((h) => h.summary.scale).filter((s) => s);
    const scale = scales.length ? scales[scales.length - 1] : 1.0;
    for (let hand = 0; hand < 2; hand++) {
      const pts = recent.map((h) => h.summary.hands[hand]).filter((p) => p);
      if (pts.length < 2) continue;
      const xs = pts.map((p) => p[0]);
      const ys = pts.map((p) => p[1]);
      const travel = Math.hypot(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys));
      if (travel > cfg.still_fraction * scale) return true;
    }
    // Not enough history yet to call the hands still: count them as moving.
    return recent.length < 2 || recent[0].t > t - cfg.still_seconds * 0.5;
  }

  /** Feed one frame (model layout, aspect-corrected), its frameSummary(), at time t seconds. */
  push(frame, summary, t) {
    const cfg = this.config;
    this.history.push({ t, summary });
    while (this.history.length && t - this.history[0].t > cfg.still_seconds) this.history.shift();
    const handsSeen = summary.hands.some((h) => h);
    const active = handsSeen && this.moving(t);

    if (!this.segment) {
      if (!active) {
        if (this.resting) return null;
        this.resting = true;
        return { kind: "rest" };
      }
      this.resting = false;
      this.segment = { frames: [], times: [], activeFrames: 0, lastActive: t };
    }
    const seg = this.segment;
    seg.frames.push(frame);
    seg.times.push(t);
    if (active) {
      seg.activeFrames += 1;
      seg.lastActive = t;
    }
    const duration = t - seg.times[0];
    const eps = cfg.time_eps;
    if (!active && t - seg.lastActive >= cfg.end_rest_seconds - eps) return this.close();
    if (duration >= cfg.max_sign_seconds - eps) return this.close();
    if (active && duration >= cfg.min_sign_seconds - eps && seg.activeFrames % cfg.partial_every === 0) {
      return { kind: "partial", frames: seg.frames.slice() };
    }
    return null;
  }

  /** End the open segment (end of a file, or a cut): its "final", or null when none/too short. */
  flush() {
    return this.segment ? this.close() : null;
  }

  close() {
    const seg = this.segment;
    this.segment = null;
    // Drop the trailing rest frames: the sign ends at its last active frame.
    let n = seg.times.length;
    while (n > 1 && seg.times[n - 1] > seg.lastActive) n--;
    const frames = seg.frames.slice(0, n);
    const start = seg.times[0];
    const end = seg.times[n - 1];
    if (end - start < this.config.min_sign_seconds - this.config.time_eps) {
      this.resting = true; // this "rest" is the entering of rest: not a second one next frame
      return { kind: "rest" };
    }
    return { kind: "final", frames, start, end };
  }
}

const TAG_B = 1;
const TAG_I = 2;

/**
 * The learned segmenter's decoder (islr.inference.streaming.TagDecoder, setting for setting): one
 * frame's O/B/I probabilities in, StreamSegmenter's actions out. A frame is inside a sign when
 * P(B) + P(I) >= sign_threshold; a rising P(B) >= begin_threshold inside a sign that lasted
 * min_sign_seconds begins the next one; out_seconds outside (or max_sign_seconds) ends it.
 */
export class TagDecoder {
  constructor(config) {
    this.config = streamConfig(config);
    this.reset();
  }

  reset() {
    this.segment = null; // {frames, times, start, lastIn, inFrames}
    this.resting = true;
    this.wasBegin = false;
    this.before = []; // recent {frame, t} outside a sign: the context of the next one
  }

  push(frame, probs, t) {
    const cfg = this.config;
    const eps = cfg.time_eps;
    const inside = probs[TAG_B] + probs[TAG_I] >= cfg.sign_threshold;
    const begin = probs[TAG_B] >= cfg.begin_threshold;
    const rising = begin && !this.wasBegin;
    this.wasBegin = begin;
    const seg = this.segment;
    if (!seg) {
      if (inside) {
        this.open(frame, t, true);
        return null;
      }
      this.before.push({ frame, t });
      while (this.before.length && t - this.before[0].t > cfg.context_seconds) this.before.shift();
      if (this.resting) return null;
      this.resting = true;
      return { kind: "rest" };
    }
    if (inside && rising && t - seg.start >= cfg.min_sign_seconds - eps) {
      const action = this.close(false);
      this.open(frame, t, false); // no frames of the sign before as its context
      return action;
    }
    seg.frames.push(frame);
    seg.times.push(t);
    if (inside) {
      seg.lastIn = t;
      seg.inFrames += 1;
    } else if (t - seg.lastIn >= cfg.out_seconds - eps) {
      return this.close(true);
    }
    if (t - seg.start >= cfg.max_sign_seconds - eps) return this.close(true);
    if (inside && t - seg.start >= cfg.min_sign_seconds - eps && seg.inFrames % cfg.partial_every === 0) {
      return { kind: "partial", frames: seg.frames.slice() };
    }
    return null;
  }

  open(frame, t, context) {
    const cfg = this.config;
    const lead = context ? this.before.filter((b) => t - b.t <= cfg.context_seconds + cfg.time_eps) : [];
    this.before = [];
    this.resting = false;
    this.segment = {
      frames: [...lead.map((b) => b.frame), frame],
      times: [...lead.map((b) => b.t), t],
      start: t,
      lastIn: t,
      inFrames: 1,
    };
  }

  flush() {
    return this.segment ? this.close(true) : null;
  }

  close(context) {
    const seg = this.segment;
    this.segment = null;
    const cfg = this.config;
    const until = seg.lastIn + (context ? cfg.context_seconds : 0) + cfg.time_eps;
    const n = seg.times.filter((t) => t <= until).length;
    if (seg.lastIn - seg.start < cfg.min_sign_seconds - cfg.time_eps) {
      this.resting = true;
      return { kind: "rest" };
    }
    return { kind: "final", frames: seg.frames.slice(0, n), start: seg.start, end: seg.lastIn };
  }
}

/**
 * StreamSegmenter's interface over the learned segmenter (islr.inference.streaming.LearnedTracker):
 * push(frame, summary, t, tag) keeps the last `window` frames, and once `lookahead` frames are
 * there asks `tag(frames)` (the segmenter model on them; may return a Promise) for their O/B/I
 * probabilities, whose last row tags the frame `lookahead` back, which TagDecoder takes.
 */
export class LearnedSegmenter {
  constructor(config, window, lookahead) {
    this.decoder = new TagDecoder(config);
    this.config = this.decoder.config;
    this.window = window;
    this.lookahead = lookahead;
    this.reset();
  }

  reset() {
    this.decoder.reset();
    this.frames = [];
    this.times = [];
  }

  /** The frames to tag after `frame` arrived at t, or null while fewer than lookahead + 1. */
  observe(frame, t) {
    this.frames.push(frame);
    this.times.push(t);
    const keep = Math.max(this.window, this.lookahead + 1);
    if (this.frames.length > keep) {
      this.frames.shift();
      this.times.shift();
    }
    if (this.frames.length <= this.lookahead) return null;
    return this.frames.slice(-this.window);
  }

  /** The last row of the tags of observe()'s frames -> the decoder's action for its frame. */
  decode(probs) {
    const k = this.frames.length - 1 - this.lookahead;
    return this.decoder.push(this.frames[k], probs, this.times[k]);
  }

  async push(frame, summary, t, tag) {
    const frames = this.observe(frame, t);
    return frames ? this.decode(await tag(frames)) : null;
  }

  flush() {
    return this.decoder.flush();
  }
}

/** For each point of layout `to` (a layoutInfo), its row in layout `from`, or -1 if absent. */
export function rowMap(from, to) {
  return to.parts.flatMap((part) => part.indices.map((index) => layoutRow(from, part.component, index)));
}

/**
 * Frames (nCoordsIn values per point of their layout) -> the segmenter's input [frames, points,
 * nCoordsOut], its points gathered by `rows` (rowMap; NaN where absent), as Python's to_layout.
 */
export function segmenterInput(frames, rows, nCoordsIn, nCoordsOut) {
  const out = new Float32Array(frames.length * rows.length * nCoordsOut).fill(NaN);
  const c = Math.min(nCoordsIn, nCoordsOut);
  frames.forEach((frame, f) => {
    rows.forEach((row, p) => {
      if (row < 0) return;
      for (let k = 0; k < c; k++) out[(f * rows.length + p) * nCoordsOut + k] = frame[row * nCoordsIn + k];
    });
  });
  return out;
}

// ------------------------------------------------------------------------------ added signs
// Signs added on the page (issue 12's vocabulary, GET /v1/vocabulary) are scored from the model's
// second output, `embedding`, against each sign's prototypes. The same formula as the server's
// (islr.inference.vocabulary.vocabulary_log_scores); tests/test_page_vocabulary.py checks them
// number for number.

/** log(softmax(x)); an ensemble's output is already a log-probability and stays unchanged. */
export function logSoftmax(logits) {
  const max = Math.max(...logits);
  const logSum = Math.log(Array.from(logits, (v) => Math.exp(v - max)).reduce((a, b) => a + b, 0));
  return Array.from(logits, (v) => v - max - logSum);
}

function dot(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/** The signs of a GET /v1/vocabulary answer that have added examples (prototypes), in its order. */
export function vocabularyPrototypes(vocabulary) {
  return (vocabulary?.signs ?? []).filter((s) => Array.isArray(s.prototypes) && s.prototypes.length > 0);
}

/**
 * The model's outputs for one sequence and the vocabulary -> {labels, probs} over the known signs
 * (model order) then the added ones (vocabulary order). L = logSoftmax(logits); an added sign j
 * scores a * max_p(embedding . p) + b over its unit prototypes p (a, b: vocabulary.calibration);
 * a known sign with added examples scores max(L_c, that); probs = softmax([L; s]). A vocabulary
 * with a refitted head (vocabulary.head, islr.inference.refit) scores the added signs with it
 * instead (scoreWithHead). With no added examples this is the classifier's own softmax.
 */
export function scoreWithVocabulary(logits, embedding, knownLabels, vocabulary) {
  if (logits.length !== knownLabels.length) {
    throw new Error(`the model gave ${logits.length} logits for ${knownLabels.length} known signs`);
  }
  const scores = logSoftmax(logits);
  const labels = knownLabels.slice();
  const withExamples = vocabularyPrototypes(vocabulary);
  if (withExamples.length === 0) return { labels, probs: softmax(scores) };
  if (!embedding) throw new Error("this model has no embedding output, so it cannot score added signs");
  if (vocabulary.head) return scoreWithHead(scores, embedding, knownLabels, withExamples, vocabulary.head);
  const { scale, bias } = vocabulary.calibration ?? {};
  if (!Number.isFinite(scale) || !Number.isFinite(bias)) throw new Error("the vocabulary has no calibration");
  for (const sign of withExamples) {
    const similarity = Math.max(
      ...sign.prototypes.map((p) => {
        if (p.length !== embedding.length) {
          const dims = `a ${p.length}-d prototype for a ${embedding.length}-d embedding`;
          throw new Error(`sign ${sign.label}: ${dims}`);
        }
        return dot(embedding, p);
      }),
    );
    const score = scale * similarity + bias;
    const known = knownLabels.indexOf(sign.label);
    if (known >= 0) scores[known] = Math.max(scores[known], score);
    else {
      labels.push(sign.label);
      scores.push(score);
    }
  }
  return { labels, probs: softmax(scores) };
}

/**
 * Added signs scored by the vocabulary's refitted head (islr.inference.refit): z = logSoftmax(W e
 * + b) over head.labels (the known signs, then one row per sign of the vocabulary, in the order
 * it was added: the added signs' order in the answer);
 * vocabulary sign j scores s = z[K + j] - log(sum of exp(z) over the known signs); an added sign
 * gets s, a known sign with examples (the signer's version of it) log(exp(L_c) + exp(s)).
 */
function scoreWithHead(scores, embedding, knownLabels, signs, head) {
  const nKnown = knownLabels.length;
  const own = head.labels.slice(nKnown);
  const fitted =
    head.labels.length === nKnown + signs.length &&
    knownLabels.every((l, i) => head.labels[i] === l) &&
    signs.every((s) => own.includes(s.label));
  if (!fitted) throw new Error("the vocabulary's head was fitted for other signs");
  const z = logSoftmax(
    head.weight.map((row, i) => {
      if (row.length !== embedding.length) {
        throw new Error(`the vocabulary's head has ${row.length}-d rows for a ${embedding.length}-d embedding`);
      }
      return dot(row, embedding) + head.bias[i];
    }),
  );
  const logSumExp = (values) => {
    const max = Math.max(...values);
    return max + Math.log(values.reduce((a, v) => a + Math.exp(v - max), 0));
  };
  const knownMass = logSumExp(z.slice(0, nKnown));
  const labels = knownLabels.slice();
  const out = scores.slice();
  own.forEach((label, j) => {
    const s = z[nKnown + j] - knownMass;
    const known = knownLabels.indexOf(label);
    if (known >= 0) out[known] = logSumExp([out[known], s]);
    else {
      labels.push(label);
      out.push(s);
    }
  });
  return { labels, probs: softmax(out) };
}

/**
 * Which recorded frames make one take: the stream segmenter's segment (sign or unknown event,
 * {start, end} in the frames' clock) that overlaps the recording window [from, to] the most (the
 * longest on a tie); without one, the frames where a hand was seen. times[i], hands[i]: each
 * recorded frame's time and whether a hand was detected. -> {indices, start, end, source} where
 * source is "segmenter" | "hands" | "none".
 */
export function cutTake(times, hands, segments, from, to, eps = 1e-3) {
  const overlap = (s) => Math.min(s.end, to) - Math.max(s.start, from);
  const candidates = segments
    .filter((s) => Number.isFinite(s.start) && Number.isFinite(s.end) && overlap(s) >= 0)
    .sort((a, b) => overlap(b) - overlap(a) || b.end - b.start - (a.end - a.start));
  if (candidates.length) {
    const { start, end } = candidates[0];
    const indices = times.flatMap((t, i) => (t >= start - eps && t <= end + eps ? [i] : []));
    if (indices.length) return { indices, start, end, source: "segmenter" };
  }
  const indices = times.flatMap((t, i) => (hands[i] && t >= from - eps && t <= to + eps ? [i] : []));
  if (!indices.length) return { indices, start: null, end: null, source: "none" };
  return { indices, start: times[indices[0]], end: times[indices[indices.length - 1]], source: "hands" };
}
