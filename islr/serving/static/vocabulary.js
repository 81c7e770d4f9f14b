// Twin of islr/vocabulary/scoring.py: added signs scored as vocabulary_log_scores does, number for number.
// Signs added to the vocabulary (GET /v1/vocabulary) are scored from the model's second output,
// `embedding`, against each sign's prototypes, or by the vocabulary's refitted head.
import { softmax } from "./streaming.js";

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
 * with a refitted head (vocabulary.head, Python's fit_head) scores the added signs with it
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
 * Added signs scored by the vocabulary's refitted head (Python's fit_head): z = logSoftmax(W e
 * + b) over head.labels (the known signs, then one row per sign of the vocabulary, in the order
 * it was added: the added signs' order in the answer);
 * vocabulary sign j scores s = z[K + j] - log(sum of exp(z) over the known signs); an added sign
 * gets s, a known sign with examples (the signer's version of it) log(exp(L_c) + exp(s)).
 */
export function scoreWithHead(scores, embedding, knownLabels, signs, head) {
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
