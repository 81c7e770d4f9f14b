// The page's JS twins against the Python side's outputs (the fixtures of make_fixtures.py), and
// the JS-only take cutting. Run: node --test tests/parity/ (tests/test_parity.py runs it too).
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import test from "node:test";
import { inflateSync } from "node:zlib";

import { cutTake } from "../../islr/serving/static/enroll.js";
import {
  aspectCorrected,
  frameFromResults,
  layoutInfo,
  modelInput,
  resampleIndices,
} from "../../islr/serving/static/model_input.js";
import { rowMap, segmenterInput } from "../../islr/serving/static/segmenter.js";
import {
  FrameSummarizer,
  SegmentTracker,
  STREAM_SETTINGS,
  StreamSegmenter,
  signConfidence,
  softmax,
  streamConfig,
  topLabels,
} from "../../islr/serving/static/streaming.js";
import {
  checkLabel,
  decodeArray,
  decodeInt8Rows,
  LocalVocabulary,
  parseVocabulary,
} from "../../islr/serving/static/local_vocabulary.js";
import { fitHead } from "../../islr/serving/static/refit.js";
import { scoreWithVocabulary } from "../../islr/serving/static/vocabulary.js";

const REPO = new URL("../../", import.meta.url);
const fixture = (name) => JSON.parse(readFileSync(new URL(`tests/parity/${name}`, REPO)));

/** make_fixtures.encode_frames -> Float32Array frames of `size` values each. */
function decodeFrames(text, size) {
  const bytes = inflateSync(Buffer.from(text, "base64"));
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const frames = [];
  for (let i = 0; i < all.length; i += size) frames.push(all.slice(i, i + size));
  return frames;
}

function assertClose(actual, expected, atol, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [actual[i], expected[i]];
    if (Number.isNaN(e)) assert.ok(Number.isNaN(a), `${what}[${i}]: ${a}, expected NaN`);
    else assert.ok(Math.abs(a - e) <= atol, `${what}[${i}]: ${a}, expected ${e}`);
  }
}

test("resampling, layouts, aspect and the model input match Python's", () => {
  const f = fixture("model_input.json");
  assert.deepEqual(
    f.resample_cases.map(([t, n]) => resampleIndices(t, n)),
    f.expected.resample,
  );
  const point = ([x, y, z]) => ({ x, y, z });
  const stream = f.stream.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.map(point)])));
  for (const [name, layout] of Object.entries(f.layouts)) {
    const info = layoutInfo(layout);
    const raw = stream.map((r) => frameFromResults(r, info, 3));
    const frames = raw.map((frame) => aspectCorrected(frame, 3, f.width, f.height));
    const input = modelInput(frames, f.seq_len, info.nPoints * 3);
    const expected = f.expected.layouts[name];
    assertClose(raw.flatMap((r) => Array.from(r)), decodeFrames(expected.raw, 1e9)[0], 1e-6, `${name} raw`);
    assertClose(Array.from(input), decodeFrames(expected.input, 1e9)[0], 1e-6, `${name} input`);
  }
});

test("softmax, topLabels, signConfidence and the settings list match Python's", () => {
  const f = fixture("streaming.json");
  f.softmax_cases.forEach((logits, i) => assertClose(softmax(logits), f.expected.softmax[i], 1e-12, "softmax"));
  f.top_cases.forEach(([probs, labels, k], i) => assert.deepEqual(topLabels(probs, labels, k), f.expected.top_labels[i]));
  f.confidence_cases.forEach(([probs, k], i) =>
    assertClose([signConfidence(probs, k)], [f.expected.sign_confidence[i]], 1e-12, "confidence"),
  );
  // StreamConfig's fields, in its order
  assert.deepEqual(STREAM_SETTINGS, f.expected.stream_settings);
  assert.deepEqual(Object.keys(f.stream), STREAM_SETTINGS);
});

test("SegmentTracker gives Python's actions on a scripted stream", () => {
  const f = fixture("streaming.json");
  const info = layoutInfo({
    name: "hands_pose75",
    parts: [
      { component: "pose", indices: [...Array(33).keys()] },
      { component: "left_hand", indices: [...Array(21).keys()] },
      { component: "right_hand", indices: [...Array(21).keys()] },
    ],
  });
  const tracker = new SegmentTracker(streamConfig(f.stream));
  const summarizer = new FrameSummarizer(info, 3);
  const actions = [];
  const record = (a) => {
    if (!a) return;
    const n = a.frames ? a.frames.length : 0;
    actions.push(a.kind === "final" ? { kind: a.kind, n, start: a.start, end: a.end } : { kind: a.kind, n });
  };
  decodeFrames(f.tracker.frames, 75 * 3).forEach((frame, i) => {
    record(tracker.push(frame, summarizer.summarize(frame), f.tracker.times[i]));
  });
  record(tracker.flush());
  assert.deepEqual(actions, f.expected.tracker_actions);
});

/** StreamSegmenter on the recorded stream, the classifier answering with Python's recorded calls. */
async function replay(f, run, tagger = null) {
  const info = layoutInfo(f.layout);
  let k = 0;
  const classify = (segment) => {
    const call = run.calls[k++];
    if (!call || call.n !== segment.length) throw new Error(`call ${k}: ${segment.length} frames, Python: ${call?.n}`);
    return { probs: call.probs, labels: f.labels, nKnown: f.labels.length };
  };
  const segmenter = new StreamSegmenter(info, 3, classify, streamConfig(run.stream), tagger);
  const frames = decodeFrames(f.frames, info.nPoints * 3);
  const events = [];
  for (let i = 0; i < frames.length; i++) {
    for (const e of await segmenter.push(frames[i], f.times[i])) events.push({ ...e, frame: i });
  }
  for (const e of await segmenter.flush()) events.push({ ...e, frame: frames.length });
  assert.equal(k, run.calls.length, "every recorded classifier call made");
  return { events, kind: segmenter.kind };
}

/** The page's events are the server's: types, the frame each came at, labels, times and tops. */
function assertSameEvents(js, py) {
  assert.deepEqual(
    js.map((e) => [e.type, e.frame]),
    py.map((e) => [e.type, e.frame]),
  );
  js.forEach((e, i) => {
    const p = py[i];
    assert.equal(e.label, p.label);
    for (const key of ["start", "end"]) if (key in p) assert.ok(Math.abs(e[key] - p[key]) <= 1 / 30, key);
    assert.deepEqual(
      (e.top ?? []).map((t) => t.label),
      (p.top ?? []).map((t) => t.label),
    );
    assertClose(
      (e.top ?? []).map((t) => t.prob),
      (p.top ?? []).map((t) => t.prob),
      2e-5,
      "top",
    );
  });
}

test("StreamSegmenter (heuristic) gives Python's events on a recorded stream", async () => {
  const f = fixture("stream_events.json");
  const { events, kind } = await replay(f, f.runs.heuristic);
  assert.equal(kind, "heuristic");
  assertSameEvents(events, f.expected.heuristic);
});

const ORT_WEB = new URL("web/node_modules/onnxruntime-web/dist/ort.wasm.min.mjs", REPO);

test(
  "StreamSegmenter (learned, the shipped segmenter in onnxruntime-web) gives Python's events",
  { skip: !existsSync(ORT_WEB) && "onnxruntime-web is not installed: make web (npm ci in web/)" },
  async () => {
    const f = fixture("stream_events.json");
    const ort = await import(ORT_WEB.href);
    ort.env.wasm.numThreads = 1;
    const spec = f.segmenter;
    const session = await ort.InferenceSession.create(readFileSync(new URL(spec.file, REPO)), {
      executionProviders: ["wasm"],
    });
    const rows = rowMap(layoutInfo(f.layout), layoutInfo(spec.layout));
    const tag = async (frames) => {
      const data = segmenterInput(frames, rows, 3, spec.n_coords);
      const input = new ort.Tensor("float32", data, [1, frames.length, rows.length, spec.n_coords]);
      const tags = (await session.run({ landmarks: input })).tags.data;
      return Array.from(tags.subarray(tags.length - 3));
    };
    const { events, kind } = await replay(f, f.runs.learned, { tag, window: spec.window, lookahead: spec.lookahead });
    assert.equal(kind, "learned");
    assertSameEvents(events, f.expected.learned);
  },
);

test("scoreWithVocabulary matches Python's vocabulary_log_scores", () => {
  const f = fixture("vocabulary.json");
  f.cases.forEach((c, i) => {
    const got = scoreWithVocabulary(c.logits, c.embedding, f.known, f.vocabularies[c.vocabulary]);
    const expected = f.expected[i];
    assert.deepEqual(got.labels, expected.labels);
    got.probs.forEach((p, j) => {
      const e = expected.probs[j];
      assert.ok(Math.abs(p - e) <= 1e-12 + 1e-9 * Math.abs(e), `case ${i}: ${p} vs ${e}`);
    });
  });
});

test("scoreWithVocabulary without added signs is the classifier's softmax", () => {
  const logits = [1.5, -0.25, 3.0, 0.0, 2.0, -4.0];
  const known = ["a", "b", "c", "d", "e", "f"];
  for (const vocabulary of [null, { signs: [{ label: "a", kind: "known" }] }]) {
    const scored = scoreWithVocabulary(logits, null, known, vocabulary);
    assert.deepEqual(scored.labels, known);
    assertClose(scored.probs, softmax(logits), 1e-12, "probs");
  }
});

test("scoreWithVocabulary refuses what it cannot score", () => {
  const v = { calibration: { scale: 25, bias: -20 }, signs: [{ label: "x", kind: "added", prototypes: [[1, 0, 0]] }] };
  const k = ["a", "b"];
  assert.throws(() => scoreWithVocabulary([0, 1], null, k, v), /no embedding output/);
  assert.throws(() => scoreWithVocabulary([0, 1], [1, 0], k, v), /3-d prototype for a 2-d embedding/);
  assert.throws(() => scoreWithVocabulary([0, 1, 2], [1, 0, 0], k, v), /3 logits for 2 known signs/);
  assert.throws(() => scoreWithVocabulary([0, 1], [1, 0, 0], k, { ...v, calibration: null }), /no calibration/);
});

test("cutTake prefers the segmenter's segment", () => {
  const times = Array.from({ length: 40 }, (_, i) => Math.round(100 * i) / 1000); // 4 s at 10 fps
  const hands = times.map((_, i) => i >= 10 && i < 30);
  const range = (a, b) => Array.from({ length: b - a }, (_, i) => a + i);
  // two segments in the window [1, 3]: the one overlapping it most
  const best = cutTake(times, hands, [{ start: 0.2, end: 1.2 }, { start: 1.5, end: 2.6 }], 1, 3);
  assert.deepEqual([best.source, best.start, best.end], ["segmenter", 1.5, 2.6]);
  assert.deepEqual(best.indices, range(15, 27));
  // a segment that started during the countdown still counts (it overlaps the window)
  const early = cutTake(times, hands, [{ start: 0.6, end: 1.4 }], 1, 3);
  assert.deepEqual([early.source, early.indices], ["segmenter", range(6, 15)]);
  // none: the frames with hands inside the window
  const byHands = cutTake(times, hands, [], 1.5, 3.5);
  assert.deepEqual([byHands.source, byHands.indices], ["hands", range(15, 30)]);
  // a segment entirely outside the window is not this take's
  const nothing = cutTake(times, hands.map(() => false), [{ start: 3.6, end: 3.9 }], 1, 3);
  assert.deepEqual(nothing, { indices: [], start: null, end: null, source: "none" });
});

test("fitHead (refit.js) gives Python's fit_head top-1 on every query", () => {
  const f = fixture("head_fit.json");
  const t0 = performance.now();
  const head = fitHead(f.signs, f.reference, f.known);
  const ms = performance.now() - t0;
  assert.deepEqual(head.labels, f.expected.head.labels);
  assert.deepEqual(head.fitted_on, f.expected.head.fitted_on);
  const vocabulary = { signs: f.signs, head, calibration: { scale: 1, bias: 0 } };
  const top1 = f.queries.map((e, i) => {
    const { labels, probs } = scoreWithVocabulary(f.logits[i], e, f.known, vocabulary);
    return labels[probs.indexOf(Math.max(...probs))];
  });
  assert.deepEqual(top1, f.expected.top1);
  // and the head itself is scikit-learn's (its intercepts up to a common shift, which scores ignore)
  const centred = (b) => b.map((v) => v - b.reduce((a, x) => a + x, 0) / b.length);
  const [js, py] = [centred(head.bias), centred(f.expected.head.bias)];
  const diff = Math.max(...js.map((b, i) => Math.abs(b - py[i])));
  assert.ok(diff < 0.05, `bias differs by ${diff} (fit in ${ms.toFixed(0)} ms)`);
});

test("the model file's arrays (float16, int8 rows) decode as Python decodes them", () => {
  const f = fixture("arrays.json");
  decodeArray(f.float16).forEach((row, i) => assertClose(row, f.expected.float16[i], 0, "float16"));
  decodeInt8Rows(f.int8_rows).forEach((row, i) => assertClose(row, f.expected.int8_rows[i], 1e-12, "int8 rows"));
});

test("LocalVocabulary answers the server's vocabulary requests, exports and imports its file", async () => {
  const f = fixture("head_fit.json");
  const dim = f.dim;
  const base = {
    allow_enroll: false,
    calibration: { scale: 4, bias: -3.88 },
    embedding_dim: dim,
    duplicate_similarity: 0.9,
    signs: f.known.map((label) => ({ label, kind: "known", examples: 0, provenance: [] })),
    head: null,
  };
  const reference = { known_embeddings: null, known_prototypes: null };
  const takes = f.signs[0].prototypes; // three unit embeddings of one new sign
  let k = 0;
  const embed = async () => takes[k++ % takes.length];
  const open = () => LocalVocabulary.open({ vocabulary: base, reference }, f.known, "test", embed);
  const local = await open(); // no IndexedDB in Node: kept in memory
  const take = { frames: [[[0.5, 0.5, 0]]], layout: "x", image_width: 4, image_height: 3 };
  const check = await local.request("POST", "v1/vocabulary/check", { label: "wave", takes: [take, take, take] });
  assert.equal(check.status, 200);
  assert.equal(check.body.consistency.per_take.length, 3);
  const added = await local.request("POST", "v1/vocabulary", { label: " wave ", takes: [take, take, take] });
  assert.equal(added.status, 200, JSON.stringify(added.body));
  assert.deepEqual([added.body.sign.label, added.body.sign.examples, added.body.sign.kind], ["wave", 3, "added"]);
  const listing = (await local.request("GET", "v1/vocabulary")).body;
  assert.equal(listing.allow_enroll, true);
  assert.deepEqual(listing.signs.map((s) => s.label), [...f.known, "wave"]);
  // the same takes again under another name: too close to "wave", refused unless forced
  const again = await local.request("POST", "v1/vocabulary", { label: "wave 2", takes: [take, take, take] });
  assert.equal(again.status, 409);
  assert.equal(again.body.nearest.label, "wave");
  const removal = await local.request("DELETE", "v1/vocabulary/k1");
  assert.equal(removal.status, 400); // a known sign without added examples
  // the file islr vocab import reads; imported into another browser, the same signs
  const file = local.toFile();
  assert.deepEqual([file.version, file.embedding_dim, file.signs.length], [1, dim, 1]);
  const other = await open();
  assert.equal(await other.importFile(JSON.parse(JSON.stringify(file))), 1);
  assert.deepEqual(other.toFile().signs, file.signs);
  assert.throws(() => parseVocabulary({ ...file, embedding_dim: dim + 1 }, dim), /another model/);
  assert.equal((await local.request("DELETE", "v1/vocabulary?label=wave")).status, 200);
  assert.deepEqual(local.toFile().signs, []);
});

test("checkLabel stores every label as normalise_label does, and refuses the same ones", () => {
  const f = fixture("labels.json");
  f.cases.forEach((label, i) => {
    let stored;
    try {
      stored = checkLabel(label);
    } catch {
      stored = null;
    }
    assert.equal(stored, f.expected.stored[i], JSON.stringify(label));
  });
});
