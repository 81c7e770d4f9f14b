// Twin of islr/vocabulary/fit.py: the vocabulary's head refitted in the browser (fit_head).
// A multinomial logistic regression over the sign embedding, as scikit-learn's
// LogisticRegression(C, class_weight="balanced", lbfgs) fits it on standardised embeddings: the
// model's known-sign training embeddings and the added signs' takes. The objective is strictly
// convex up to a common shift of the intercepts (which changes no score), and this L-BFGS stops
// where scikit-learn's does (max |gradient| <= 1e-4, at most 300 iterations), so it lands where
// scikit-learn does: tests/parity checks the same top-1 on the same queries.

// Added to an added sign's logit by its number of examples (linear in between, constant beyond).
export const ADDED_OFFSETS = { 1: 0.75, 3: -0.5, 5: -0.5 };
export const REGULARISATION = 1.0; // scikit-learn's C

/** The logit offset of an added sign with `examples` examples (np.interp over ADDED_OFFSETS). */
export function addedOffset(examples, offsets = ADDED_OFFSETS) {
  const table = Object.entries(offsets)
    .map(([n, o]) => [Number(n), o])
    .sort((a, b) => a[0] - b[0]);
  if (examples <= table[0][0]) return table[0][1];
  for (let i = 1; i < table.length; i++) {
    const [n0, o0] = table[i - 1];
    const [n1, o1] = table[i];
    if (examples <= n1) return o0 + ((o1 - o0) * (examples - n0)) / (n1 - n0);
  }
  return table[table.length - 1][1];
}

const round6 = (v) => Math.round(v * 1e6) / 1e6;

/**
 * The weighted softmax cross-entropy + L2 (not on the bias) of params = [W (K x D) | b (K)] over
 * rows x (n x D, standardised) with classes y and sample weights s, scaled by 1 / sum(s) as
 * scikit-learn does; returns [f, gradient].
 */
function objective(params, x, y, s, K, D, C) {
  const n = y.length;
  const grad = new Float64Array(params.length);
  const z = new Float64Array(K);
  let total = 0;
  let sumS = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[i];
    let max = -Infinity;
    for (let k = 0; k < K; k++) {
      let v = params[K * D + k];
      const w = k * D;
      for (let d = 0; d < D; d++) v += params[w + d] * xi[d];
      z[k] = v;
      if (v > max) max = v;
    }
    let sum = 0;
    for (let k = 0; k < K; k++) {
      z[k] = Math.exp(z[k] - max);
      sum += z[k];
    }
    const si = s[i];
    sumS += si;
    total += si * (Math.log(sum) + max - (Math.log(z[y[i]]) + max));
    for (let k = 0; k < K; k++) {
      const r = si * (z[k] / sum - (k === y[i] ? 1 : 0));
      if (r === 0) continue;
      const w = k * D;
      for (let d = 0; d < D; d++) grad[w + d] += r * xi[d];
      grad[K * D + k] += r;
    }
  }
  let penalty = 0;
  for (let j = 0; j < K * D; j++) {
    penalty += params[j] * params[j];
    grad[j] += params[j] / C;
  }
  for (let j = 0; j < grad.length; j++) grad[j] /= sumS;
  return [(total + (0.5 * penalty) / C) / sumS, grad];
}

const dotv = (a, b) => {
  let v = 0;
  for (let i = 0; i < a.length; i++) v += a[i] * b[i];
  return v;
};

/** Minimise f (params -> [value, gradient]) from x0 with L-BFGS (m pairs, Armijo backtracking),
 * until max |gradient| <= tol (scikit-learn's default tol for lbfgs). */
export function lbfgs(f, x0, { maxIter = 300, tol = 1e-4, m = 10 } = {}) {
  let x = Float64Array.from(x0);
  let [fx, g] = f(x);
  const pairs = [];
  let iter = 0;
  for (; iter < maxIter; iter++) {
    if (Math.max(...g.map(Math.abs)) < tol) break;
    // two-loop recursion: the search direction -H g
    const q = Float64Array.from(g);
    const alphas = [];
    for (let i = pairs.length - 1; i >= 0; i--) {
      const { s, y, rho } = pairs[i];
      const a = rho * dotv(s, q);
      alphas.push(a);
      for (let j = 0; j < q.length; j++) q[j] -= a * y[j];
    }
    if (pairs.length) {
      const { s, y } = pairs[pairs.length - 1];
      const gamma = dotv(s, y) / dotv(y, y);
      for (let j = 0; j < q.length; j++) q[j] *= gamma;
    }
    for (let i = 0; i < pairs.length; i++) {
      const { s, y, rho } = pairs[i];
      const b = rho * dotv(y, q);
      const a = alphas[pairs.length - 1 - i];
      for (let j = 0; j < q.length; j++) q[j] += s[j] * (a - b);
    }
    const dir = q.map((v) => -v);
    let slope = dotv(g, dir);
    if (slope >= 0) {
      // not a descent direction: restart from the gradient
      pairs.length = 0;
      for (let j = 0; j < dir.length; j++) dir[j] = -g[j];
      slope = dotv(g, dir);
    }
    let step = pairs.length ? 1 : 1 / Math.max(1, Math.sqrt(dotv(g, g)));
    let next;
    for (let k = 0; k < 40; k++) {
      const candidate = x.map((v, j) => v + step * dir[j]);
      const [fc, gc] = f(candidate);
      if (fc <= fx + 1e-4 * step * slope) {
        next = [candidate, fc, gc];
        break;
      }
      step /= 2;
    }
    if (!next) break; // no decrease possible: at the optimum within rounding
    const [xn, fn, gn] = next;
    const s = xn.map((v, j) => v - x[j]);
    const y = gn.map((v, j) => v - g[j]);
    const sy = dotv(s, y);
    if (sy > 1e-12) {
      pairs.push({ s, y, rho: 1 / sy });
      if (pairs.length > m) pairs.shift();
    }
    const done = Math.abs(fx - fn) <= 1e-12 * Math.max(1, Math.abs(fx));
    [x, fx, g] = [xn, fn, gn];
    if (done) break;
  }
  return { x, f: fx, iterations: iter };
}

/**
 * The vocabulary's head: {labels, weight, bias, fitted_on} as the vocabulary file stores it
 * (Python's VocabularyHead.to_dict), or null without added signs or known embeddings. signs:
 * [{label, prototypes (unit takes), examples, augmented?}] in the vocabulary's order; reference:
 * {embeddings (n x E), targets (n)} of the known signs.
 */
export function fitHead(signs, reference, known, { offsets = ADDED_OFFSETS, regularisation = REGULARISATION } = {}) {
  if (!signs.length || !reference?.embeddings?.length) return null;
  const rows = [...known, ...signs.map((s) => s.label)];
  const x = reference.embeddings.map((e) => Float64Array.from(e));
  const y = Array.from(reference.targets);
  signs.forEach((sign, j) => {
    for (const take of [...sign.prototypes, ...(sign.augmented ?? [])]) {
      x.push(Float64Array.from(take));
      y.push(known.length + j);
    }
  });
  const D = x[0].length;
  const mean = new Float64Array(D);
  const scale = new Float64Array(D);
  for (const row of x) for (let d = 0; d < D; d++) mean[d] += row[d] / x.length;
  for (const row of x) for (let d = 0; d < D; d++) scale[d] += (row[d] - mean[d]) ** 2 / x.length;
  for (let d = 0; d < D; d++) scale[d] = Math.sqrt(scale[d]) + 1e-6;
  const standardised = x.map((row) => row.map((v, d) => (v - mean[d]) / scale[d]));
  // the classes with examples, in order (scikit-learn's classes_), and balanced weights
  const classes = [...new Set(y)].sort((a, b) => a - b);
  const index = new Map(classes.map((c, k) => [c, k]));
  const counts = new Map();
  for (const c of y) counts.set(c, (counts.get(c) ?? 0) + 1);
  const weights = y.map((c) => y.length / (classes.length * counts.get(c)));
  const K = classes.length;
  const target = y.map((c) => index.get(c));
  const f = (params) => objective(params, standardised, target, weights, K, D, regularisation);
  const { x: params } = lbfgs(f, new Float64Array(K * D + K));
  // back to raw embeddings: w . (e - mean) / scale + b = (w / scale) . e + (b - (w / scale) . mean)
  const weight = rows.map(() => new Array(D).fill(0));
  const bias = rows.map(() => -30.0); // a class without examples is never chosen
  classes.forEach((c, k) => {
    let shift = 0;
    for (let d = 0; d < D; d++) {
      weight[c][d] = params[k * D + d] / scale[d];
      shift += weight[c][d] * mean[d];
    }
    bias[c] = params[K * D + k] - shift;
  });
  signs.forEach((sign, j) => (bias[known.length + j] += addedOffset(sign.examples, offsets)));
  return {
    labels: rows,
    weight: weight.map((row) => row.map(round6)),
    bias: bias.map(round6),
    fitted_on: signs.map((s) => [s.label, s.examples]),
  };
}
