// Twin of islr/serving/routers/vocabulary.py: /v1/vocabulary in the browser, for a site with no server.
// The same requests and answers (list, check, add, remove) over the vocabulary file's format
// (islr/vocabulary/model.py: Vocabulary.to_dict), kept in IndexedDB with the takes; the takes
// are embedded by the model in the browser and the head is refitted here (refit.js). Export and
// import write and read the file `islr vocab export/import` uses.
import { fitHead } from "./refit.js";

export const VOCABULARY_VERSION = 1;
const DB_NAME = "islr";
const MAX_LABEL_CHARS = 64;

// ------------------------------------------------------------------ the model's arrays (JSON)

function float16(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** Python's encode_array (float16, base64) -> rows of numbers. */
export function decodeArray(d) {
  const bytes = base64Bytes(d.base64);
  const view = new DataView(bytes.buffer);
  const values = Array.from({ length: bytes.length / 2 }, (_, i) => float16(view.getUint16(2 * i, true)));
  if (d.shape.length === 1) return values;
  const width = d.shape[1];
  return Array.from({ length: d.shape[0] }, (_, r) => values.slice(r * width, (r + 1) * width));
}

/** Python's encode_int8_rows (int8 rows, each with a float16 scale) -> rows of numbers. */
export function decodeInt8Rows(d) {
  const q = new Int8Array(base64Bytes(d.base64).buffer);
  const scale = decodeArray(d.scale);
  const width = d.shape[1];
  return Array.from({ length: d.shape[0] }, (_, r) =>
    Array.from(q.subarray(r * width, (r + 1) * width), (v) => v * scale[r]),
  );
}

// ---------------------------------------------------------------------- the vocabulary's rules

const norm = (v) => Math.sqrt(v.reduce((a, x) => a + x * x, 0));
const unit = (v) => {
  const n = Math.max(norm(v), 1e-12);
  return v.map((x) => x / n);
};
const dot = (a, b) => a.reduce((sum, x, i) => sum + x * b[i], 0);
// float32, as Python's unit_rows keeps them (and the file after a reload)
const float32 = (v) => Array.from(Float32Array.from(v));

// A label may not hold these (islr/landmarks/labels.py: REFUSED_CATEGORIES), by Unicode category.
const REFUSED_IN_LABELS = [
  [/\p{Cc}/u, "a control character"],
  [/\p{Cf}/u, "an invisible formatting character (zero-width or bidi)"],
  [/\p{Cs}/u, "a surrogate"],
  [/\p{Co}/u, "a private-use character"],
  [/\p{Cn}/u, "an unassigned character"],
  [/\p{Zl}/u, "a line separator"],
  [/\p{Zp}/u, "a paragraph separator"],
];

/**
 * A new sign's name in its one form (normalise_label): NFC, runs of spaces one space, trimmed, at
 * most MAX_LABEL_CHARS characters; an error naming what is wrong otherwise (check_label).
 */
export function checkLabel(label) {
  if (typeof label !== "string") throw new Error("a sign's label must be text");
  const text = label.normalize("NFC").replace(/\p{Zs}+/gu, " ").trim();
  if (!text) throw new Error("a sign's label must not be empty");
  for (const [pattern, what] of REFUSED_IN_LABELS) {
    if (pattern.test(text)) throw new Error(`a sign's label may not contain ${what}: ${JSON.stringify(text)}`);
  }
  if ([...text].length > MAX_LABEL_CHARS) {
    throw new Error(`a sign's label must be at most ${MAX_LABEL_CHARS} characters`);
  }
  return text;
}

/**
 * check_new_sign: the takes' consistency (each take's cosine with their unit mean) and the most
 * similar other sign: known ones through their mean training embedding, added ones through their
 * prototypes; flagged when it is at least `threshold` similar.
 */
export function checkNewSign(label, embeddings, signs, known, knownPrototypes, threshold) {
  label = checkLabel(label);
  const dim = embeddings[0].length;
  const mean = new Array(dim).fill(0);
  for (const e of embeddings) e.forEach((v, i) => (mean[i] += v / embeddings.length));
  const prototype = unit(mean);
  const perTake = embeddings.map((e) => dot(e, prototype));
  const candidates = [];
  (knownPrototypes ?? []).forEach((p, i) => {
    if (known[i] !== label) candidates.push([known[i], dot(p, prototype)]);
  });
  for (const sign of signs) {
    if (sign.label !== label && !known.includes(sign.label)) {
      candidates.push([sign.label, Math.max(...sign.prototypes.map((p) => dot(p, prototype)))]);
    }
  }
  const nearest = candidates.reduce((best, c) => (best === null || c[1] > best[1] ? c : best), null);
  const flagged = nearest !== null && nearest[1] >= threshold;
  const reason = flagged
    ? `too close to '${nearest[0]}' (similarity ${nearest[1].toFixed(3)} >= ${threshold}): the two would ` +
      "be confused; record it differently, pick another sign, or force it"
    : null;
  return {
    label,
    consistency: {
      mean: perTake.reduce((a, b) => a + b, 0) / perTake.length,
      min: Math.min(...perTake),
      per_take: perTake,
    },
    nearest: nearest && { label: nearest[0], similarity: nearest[1] },
    flagged,
    reason,
  };
}

/** The vocabulary file's JSON -> {embedding_dim, signs}, checked (Vocabulary.from_dict). */
export function parseVocabulary(d, embeddingDim) {
  if (!d || d.version !== VOCABULARY_VERSION) {
    throw new Error(`not a vocabulary file (version ${d?.version}, expected ${VOCABULARY_VERSION})`);
  }
  if (d.embedding_dim !== embeddingDim) {
    throw new Error(`made for ${d.embedding_dim}-d embeddings, this model's are ${embeddingDim}-d (another model's)`);
  }
  const signs = (d.signs ?? []).map((s) => {
    const prototypes = s.prototypes;
    const ok = Array.isArray(prototypes) && prototypes.length > 0;
    if (!ok || prototypes.some((p) => p.length !== embeddingDim || !p.every(Number.isFinite))) {
      throw new Error(`${s.label}: prototypes must be lists of ${embeddingDim} finite numbers`);
    }
    return {
      // kept as written: a label stored before the normalisation stays usable (_stored_label)
      label: typeof s.label === "string" && s.label ? s.label : checkLabel(s.label),
      prototypes: prototypes.map((p) => float32(unit(p))),
      examples: Number(s.examples),
      provenance: s.provenance ?? [],
    };
  });
  if (new Set(signs.map((s) => s.label)).size !== signs.length) throw new Error("a label appears twice");
  return { embedding_dim: embeddingDim, signs };
}

// ----------------------------------------------------------------------------- IndexedDB

function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore("vocabularies");
      db.createObjectStore("takes", { autoIncrement: true });
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function transact(db, stores, mode, work) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(stores, mode);
    let result;
    Promise.resolve(work(tx)).then((r) => (result = r), reject);
    tx.oncomplete = () => resolve(result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error("the browser's storage refused the change"));
  });
}

const promised = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

// ------------------------------------------------------------------------ the local service

/**
 * The page's vocabulary without a server. site: {vocabulary (the GET /v1/vocabulary answer the
 * build shipped), reference (the model's embedding reference)}; known: the model's own signs;
 * modelKey: which model the stored signs belong to; embed(take) -> Promise<unit embedding>.
 */
export class LocalVocabulary {
  static async open(site, known, modelKey, embed) {
    let db = null;
    try {
      db = await openDatabase();
    } catch (e) {
      console.warn("IndexedDB unavailable: added signs last until the page is closed", e);
    }
    const local = new LocalVocabulary(site, known, modelKey, embed, db);
    const read = (tx) => promised(tx.objectStore("vocabularies").get(modelKey));
    const stored = db && (await transact(db, ["vocabularies"], "readonly", read));
    local.signs = stored ? parseVocabulary(stored, local.dim).signs : local.shippedSigns();
    local.head = stored?.head ?? site.vocabulary.head ?? null;
    return local;
  }

  constructor(site, known, modelKey, embed, db) {
    this.base = site.vocabulary;
    this.dim = site.vocabulary.embedding_dim;
    this.known = known;
    this.modelKey = modelKey;
    this.embed = embed;
    this.db = db;
    const reference = site.reference ?? {};
    this.knownPrototypes = reference.known_prototypes ? decodeArray(reference.known_prototypes) : null;
    const stored = reference.known_embeddings;
    this.refitOn = stored ? { embeddings: decodeInt8Rows(stored.embeddings), targets: stored.targets } : null;
    this.signs = [];
    this.head = null;
  }

  shippedSigns() {
    const shipped = this.base.signs.filter((s) => s.prototypes?.length);
    return parseVocabulary({ version: VOCABULARY_VERSION, embedding_dim: this.dim, signs: shipped }, this.dim).signs;
  }

  /** The vocabulary file's JSON (what `islr vocab export` writes; without augmented copies). */
  toFile() {
    const file = {
      version: VOCABULARY_VERSION,
      embedding_dim: this.dim,
      signs: this.signs.map((s) => ({
        label: s.label,
        prototypes: s.prototypes.map((p) => p.map((v) => Math.round(v * 1e6) / 1e6)),
        examples: s.examples,
        provenance: s.provenance,
      })),
    };
    if (this.head) file.head = this.head;
    return file;
  }

  /** The body of GET /v1/vocabulary. */
  listing() {
    const added = (label) => this.signs.find((s) => s.label === label);
    const labels = [...this.known, ...this.signs.map((s) => s.label).filter((l) => !this.known.includes(l))];
    return {
      ...this.base,
      allow_enroll: true,
      stored_in: this.db ? "indexeddb" : "memory",
      signs: labels.map((label) => {
        const sign = added(label);
        const entry = {
          label,
          kind: this.known.includes(label) ? "known" : "added",
          examples: sign ? sign.examples : 0,
          provenance: sign ? sign.provenance : [],
        };
        if (sign) entry.prototypes = sign.prototypes;
        return entry;
      }),
      head: this.head,
    };
  }

  /** A new list of signs: the head refitted, then stored (with `takes`, when given). */
  async commit(signs, takes = null) {
    this.signs = signs;
    this.head = fitHead(signs, this.refitOn, this.known);
    const file = this.toFile();
    if (this.db) {
      await transact(this.db, ["vocabularies", "takes"], "readwrite", (tx) => {
        tx.objectStore("vocabularies").put(file, this.modelKey);
        if (takes) tx.objectStore("takes").add({ model: this.modelKey, ...takes, added: new Date().toISOString() });
      });
    }
  }

  async embedTakes(takes) {
    if (!Array.isArray(takes) || !takes.length) throw new Error("no takes");
    const embeddings = [];
    for (const [i, take] of takes.entries()) {
      if (!take.frames?.length || take.frames.every((f) => f.every((p) => p === null))) {
        throw new Error(`take ${i}: no landmarks in any frame (nobody was detected)`);
      }
      embeddings.push(float32(unit(await this.embed(take))));
    }
    return embeddings;
  }

  check(label, embeddings) {
    const threshold = this.base.duplicate_similarity;
    return checkNewSign(label, embeddings, this.signs, this.known, this.knownPrototypes, threshold);
  }

  async add({ label, takes, force }) {
    const embeddings = await this.embedTakes(takes);
    const check = this.check(label, embeddings);
    if (check.flagged && !force) return { status: 409, body: { ...check, detail: `'${check.label}': ${check.reason}` } };
    const record = { source: `${takes.length} takes in the browser`, added: new Date().toISOString(), examples: takes.length };
    const old = this.signs.find((s) => s.label === check.label);
    const sign = {
      label: check.label,
      prototypes: [...(old?.prototypes ?? []), ...embeddings],
      examples: (old?.examples ?? 0) + takes.length,
      provenance: [...(old?.provenance ?? []), record],
    };
    const signs = old ? this.signs.map((s) => (s === old ? sign : s)) : [...this.signs, sign];
    await this.commit(signs, { label: check.label, takes });
    const entry = this.listing().signs.find((s) => s.label === check.label);
    return { status: 200, body: { ...check, sign: entry } };
  }

  async remove(label) {
    if (!this.signs.some((s) => s.label === label)) {
      const detail = this.known.includes(label)
        ? `'${label}' is a sign the model was trained on and has no added examples; it cannot be removed`
        : `'${label}': no such sign in this vocabulary`;
      return { status: this.known.includes(label) ? 400 : 404, body: { detail } };
    }
    await this.commit(this.signs.filter((s) => s.label !== label));
    return { status: 200, body: { removed: label } };
  }

  /** Another vocabulary file's signs added to these (a sign of both gets both's examples). */
  async importFile(d) {
    const other = parseVocabulary(d, this.dim);
    let signs = this.signs.slice();
    for (const sign of other.signs) {
      const old = signs.find((s) => s.label === sign.label);
      if (!old) signs.push(sign);
      else {
        const both = {
          ...old,
          prototypes: [...old.prototypes, ...sign.prototypes],
          examples: old.examples + sign.examples,
          provenance: [...old.provenance, ...sign.provenance],
        };
        signs = signs.map((s) => (s === old ? both : s));
      }
    }
    await this.commit(signs);
    return other.signs.length;
  }

  /** The server's requests, answered here: {status, ok, body}. */
  async request(method, url, body) {
    const path = url.replace(/^\/?v1\/vocabulary/, "");
    let answer;
    try {
      if (method === "GET" && path === "") answer = { status: 200, body: this.listing() };
      else if (method === "POST" && path === "/check") {
        const embeddings = await this.embedTakes(body.takes);
        answer = { status: 200, body: this.check(body.label, embeddings) };
      } else if (method === "POST" && path === "") answer = await this.add(body);
      else if (method === "DELETE" && path.startsWith("?")) {
        answer = await this.remove(new URLSearchParams(path.slice(1)).get("label") ?? "");
      } else if (method === "DELETE" && path.startsWith("/")) answer = await this.remove(decodeURIComponent(path.slice(1)));
      else answer = { status: 405, body: { detail: `${method} ${url} is not available without a server` } };
    } catch (e) {
      answer = { status: 422, body: { detail: String(e.message ?? e) } };
    }
    return { ...answer, ok: answer.status >= 200 && answer.status < 300 };
  }
}
