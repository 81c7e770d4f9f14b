// Twin of islr/features/model_input.py: MediaPipe results -> the model's input, number for number.
// Pure functions, no DOM, no globals: the classifier sees identical input in training, in Python
// inference, on the server and here.

// MediaPipe Holistic result field for each layout component. Holistic's leftHandLandmarks is the
// signer's left hand (it follows pose wrist 15), as in Python's left_hand_landmarks.
export const RESULT_FIELDS = {
  left_hand: "leftHandLandmarks",
  right_hand: "rightHandLandmarks",
  pose: "poseLandmarks",
  face: "faceLandmarks",
};

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
 * step; Python: aspect_corrected). Unchanged when the size is unknown.
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
