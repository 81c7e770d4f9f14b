// Twin of islr/streaming/ (config.py, trackers.py, events.py): the same classes, setting for setting.
// StreamConfig's settings; FrameSummarizer, SegmentTracker, TagDecoder, LearnedTracker; and
// StreamSegmenter, signConfidence, softmax, topLabels: a stream of frames -> one event per sign.
// Pure state machines, no DOM, no globals. Actions and events are plain objects whose keys are the
// camelCase of the Python results' fields.

const POSE_LEFT_SHOULDER = 11;
const POSE_RIGHT_SHOULDER = 12;
const HAND_WRIST = 0;

/**
 * StreamConfig's fields in its order, exactly as GET /v1/model serves them ("stream": the model's
 * metadata, or the server's override). No defaults here on purpose: the page and the server must
 * segment alike, so the settings come from the one place. tests/parity checks this list.
 */
export const STREAM_SETTINGS = [
  "threshold", // a sign is reported only when its probability reaches this, else "unknown"
  "min_sign_seconds", // shorter active stretches are noise, not signs
  "end_rest_seconds", // this long at rest ends a sign
  "max_sign_seconds", // a longer stretch is cut here (sliding window) and reported
  "still_seconds", // hands that moved less than still_fraction over this long are at rest
  "still_fraction", // of the shoulder width (or of the image width without a pose)
  "partial_every", // classify the running segment every this many active frames
  "fps", // frame times of frames without a timestamp (Python only: the page always has times)
  "top_k", // signs listed in partial, sign and unknown events
  "time_eps", // slack of every duration comparison (frame times are sums of 1/fps)
  "segmenter", // which tracker finds the signs: one of SEGMENTERS
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
  const bad = STREAM_SETTINGS.filter(
    (k) => k !== "segmenter" && (typeof config[k] !== "number" || !Number.isFinite(config[k])),
  );
  if (!SEGMENTERS.includes(config.segmenter)) bad.push("segmenter");
  if (bad.length) throw new Error(`the stream settings lack or misstate ${bad.join(", ")}`);
  return config;
}

export function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** [{label, prob}] of the k most probable classes, best first (ties in label order). */
export function topLabels(probs, labels, k) {
  return Array.from(probs, (prob, i) => ({ label: labels[i] ?? String(i), prob }))
    .sort((a, b) => b.prob - a.prob)
    .slice(0, k);
}

/**
 * How sure the model is of its best sign: the best probability over the model's own signs' share
 * (the first nKnown labels; signs added to the vocabulary come after), number for number.
 */
export function signConfidence(probs, nKnown) {
  let knownMass = 0;
  for (let i = 0; i < nKnown; i++) knownMass += probs[i];
  return knownMass > 0 ? Math.max(...probs) / knownMass : 0;
}

/** Per-frame facts the activity test needs: wrist positions {hands: [[x, y] | null] x 2, scale}. */
export class FrameSummarizer {
  /** info: layoutInfo() of the frames; nCoords: values per point. */
  constructor(info, nCoords) {
    const row = (component, index) => {
      const part = info.parts.find((p) => p.component === component);
      const j = part ? part.indices.indexOf(index) : -1;
      return j < 0 ? -1 : part.offset + j;
    };
    this.nCoords = nCoords;
    this.handRows = ["left_hand", "right_hand"].map((c) => row(c, HAND_WRIST));
    this.shoulderRows = [row("pose", POSE_LEFT_SHOULDER), row("pose", POSE_RIGHT_SHOULDER)];
  }

  summarize(frame) {
    const point = (row) => {
      if (row < 0) return null;
      const x = frame[row * this.nCoords];
      const y = frame[row * this.nCoords + 1];
      return Number.isNaN(x) || Number.isNaN(y) ? null : [x, y];
    };
    const [ls, rs] = this.shoulderRows.map(point);
    const scale = ls && rs ? Math.hypot(ls[0] - rs[0], ls[1] - rs[1]) || null : null;
    return { hands: this.handRows.map(point), scale };
  }
}

/**
 * The heuristic tracker: frames in, actions out:
 *   null | {kind: "partial", frames} | {kind: "final", frames, start, end} | {kind: "rest"}.
 * A frame is active when a hand is detected and the hands moved (wrist travel over the last
 * still_seconds > still_fraction of the shoulder width); a segment starts at the first active
 * frame and ends after end_rest_seconds of rest or at max_sign_seconds.
 */
export class SegmentTracker {
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

  /** Feed one frame (model layout, aspect-corrected), its FrameSummarizer summary, at t seconds. */
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
 * The learned segmenter's decoder (TagDecoder, setting for setting): one
 * frame's O/B/I probabilities in, SegmentTracker's actions out. A frame is inside a sign when
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
 * SegmentTracker's interface over the learned segmenter: push(frame, summary, t) keeps the last
 * `window` frames, and once `lookahead` frames are there asks `tag(frames)` (the segmenter model
 * on them; may return a Promise) for the O/B/I probabilities of the last one, which tag the frame
 * `lookahead` back, which TagDecoder takes. (Python's tag gives all rows; only the last is used.)
 */
export class LearnedTracker {
  constructor(tag, window, lookahead, config) {
    this.tag = tag;
    this.window = window;
    this.lookahead = lookahead;
    this.decoder = new TagDecoder(config);
    this.config = this.decoder.config;
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

  async push(frame, summary, t) {
    const frames = this.observe(frame, t);
    return frames ? this.decode(await this.tag(frames)) : null;
  }

  flush() {
    return this.decoder.flush();
  }
}

const round = (v, digits) => Math.round(v * 10 ** digits) / 10 ** digits;

/**
 * Frames of one stream in, events out: {type: "partial", top}, {type: "sign", label, prob, start,
 * end, top}, {type: "unknown", start, end, top} or {type: "rest"}, as the server sends them.
 * classify(frames) -> {probs, labels, nKnown} (may return a Promise): the probabilities over
 * `labels`, of which the first nKnown are the model's own signs. tagger {tag, window, lookahead}:
 * the learned segmenter, used when config.segmenter is "learned"; else SegmentTracker.
 */
export class StreamSegmenter {
  constructor(info, nCoords, classify, config, tagger = null) {
    this.config = streamConfig(config);
    this.classify = classify;
    this.summarizer = new FrameSummarizer(info, nCoords);
    this.tracker =
      this.config.segmenter === "learned" && tagger
        ? new LearnedTracker(tagger.tag, tagger.window, tagger.lookahead, this.config)
        : new SegmentTracker(this.config);
    this.kind = this.tracker instanceof LearnedTracker ? "learned" : "heuristic";
  }

  reset() {
    this.tracker.reset();
  }

  /** One frame (model layout, aspect-corrected; NaN = not detected) at t seconds -> events. */
  async push(frame, t) {
    return this.events(await this.tracker.push(frame, this.summarizer.summarize(frame), t));
  }

  /** End of the stream: the open segment's events, if any. */
  async flush() {
    return this.events(this.tracker.flush());
  }

  async events(action) {
    if (!action) return [];
    if (action.kind === "rest") return [{ type: "rest" }];
    const { probs, labels, nKnown } = await this.classify(action.frames);
    const top = topLabels(probs, labels, this.config.top_k).map(({ label, prob }) => ({
      label,
      prob: round(prob, 5),
    }));
    if (action.kind === "partial") return [{ type: "partial", top }];
    const times = { start: round(action.start, 3), end: round(action.end, 3) };
    // "not a known sign": the model is not sure enough of any of its signs
    if (signConfidence(probs, nKnown ?? labels.length) < this.config.threshold) {
      return [{ type: "unknown", ...times, top }];
    }
    return [{ type: "sign", label: top[0].label, prob: top[0].prob, ...times, top }];
  }
}
