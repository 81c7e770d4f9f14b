// Twin of islr/inference/segmenter.py: the learned sign segmenter's model in onnxruntime-web, and
// the gathering of the page's frames into its layout (Python: to_layout), number for number.
import { layoutInfo, layoutRow } from "./model_input.js";

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

/**
 * The segmenter model (its .onnx bytes and `spec`: the "segmenter" of GET /v1/model) on frames of
 * layout `frameInfo` with `nCoords` values per point. tag(frames): the last `window` frames ->
 * the O/B/I probabilities of the last one, which tag the frame `lookahead` back.
 */
export class SegmenterModel {
  static async create(ort, bytes, spec, frameInfo, nCoords) {
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
    return new SegmenterModel(ort, session, spec, frameInfo, nCoords);
  }

  constructor(ort, session, spec, frameInfo, nCoords) {
    this.ort = ort;
    this.session = session;
    this.spec = spec;
    this.nCoordsIn = nCoords;
    this.window = spec.window;
    this.lookahead = spec.lookahead;
    this.rows = rowMap(frameInfo, layoutInfo(spec.layout)); // the page's frames -> its points
    this.framesTagged = 0;
    this.tag = (frames) => this.tagWindow(frames);
  }

  async tagWindow(frames) {
    const { n_coords: nCoords, input, output } = this.spec;
    const data = segmenterInput(frames, this.rows, this.nCoordsIn, nCoords);
    const tensor = new this.ort.Tensor("float32", data, [1, frames.length, this.rows.length, nCoords]);
    const out = (await this.session.run({ [input]: tensor }))[output].data;
    this.framesTagged += 1;
    return Array.from(out.subarray(out.length - 3));
  }
}
