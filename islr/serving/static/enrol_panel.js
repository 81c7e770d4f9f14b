// "Add a sign": record 3-5 takes of a new sign from the camera (a countdown before each; the live
// view's stream segmenter cuts each take), see how consistent they are and whether the sign is
// too close to a known one (POST /v1/vocabulary/check), save it (POST /v1/vocabulary), list and
// remove added signs (GET, DELETE). The server stores the vocabulary and refuses writes unless
// it was started with `islr serve MODEL --allow-enroll`; the panel says so. On a static site the
// same requests go to the browser's own vocabulary (local_vocabulary.js: hooks.request), which
// can also be exported and imported as a vocabulary file.
import { cutTake } from "./enroll.js";

const COUNTDOWN_SECONDS = 3;
const EVENT_SLACK_MS = 400; // the server's segment events come over the socket a little later

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const sim = (v) => (Number.isFinite(v) ? v.toFixed(2) : "–");

/** An error body (FastAPI's detail: a string, a validation list or an object) -> one line. */
export function errorDetail(body, status) {
  const detail = body?.detail ?? body?.message;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc ?? []).join(".")}: ${d.msg}`).join("; ");
  if (detail && typeof detail === "object" && detail.reason) return detail.reason;
  return `HTTP ${status}`;
}

/** Why a GET /v1/vocabulary answer with allow_enroll false allows no writes, and what to do. */
function writesOffText(vocabulary) {
  if (vocabulary.embedding_dim === null || vocabulary.embedding_dim === undefined) {
    return (
      "This model has no sign embedding (exported by an older islr), so signs cannot be added " +
      "to it: export it again with `islr export`."
    );
  }
  return (
    "Writes are off: this server was started without --allow-enroll, so takes can be recorded " +
    "and checked but not saved. To add signs, restart it with `islr serve MODEL --allow-enroll`."
  );
}

/** The server's write token, which it puts in the page (writes need it; islr.serving.guard). */
function writeToken() {
  return document.querySelector('meta[name="islr-write-token"]')?.content ?? "";
}

async function serverRequest(method, url, body) {
  const init = { method, headers: {} };
  if (method !== "GET") init.headers.authorization = `Bearer ${writeToken()}`;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  let json = null;
  try {
    json = await response.json();
  } catch {
    json = null; // e.g. a proxy's HTML error page
  }
  return { status: response.status, ok: response.ok, body: json };
}

/**
 * The panel. hooks: {state, layout, pointsOf(rawFrame), cameraOn(), streamConfig(),
 * activity(), stageNote(text), onVocabulary(vocabulary), and on a static site request(method,
 * url, body) -> {status, ok, body}, exportFile() -> the vocabulary file's JSON,
 * importFile(json) -> the number of signs read}; app.js feeds it every frame (onFrame) and every
 * segmentation event (onEvent) of the live view.
 */
export class Enrolment {
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.recording = null; // the take being recorded: frames, times, hands, segments
    this.takes = []; // {status, error?, take?, frames, seconds, source}
    this.check = null;
    this.vocabulary = null;
    this.busy = false;
    this.el = (name) => root.querySelector(`[data-enrol="${name}"]`);
    hooks.state.enrol = {
      phase: "idle", // idle | countdown | recording | checking | recorded | saving | saved | error
      allowEnroll: null,
      message: "",
      takes: [],
      check: null,
      added: [],
    };
    this.el("form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.recordTakes();
    });
    this.el("save").addEventListener("click", () => this.save(false));
    this.el("force").addEventListener("click", () => this.save(true));
    this.el("discard").addEventListener("click", () => this.discard());
    this.request = hooks.request ?? serverRequest;
    const files = this.el("files");
    if (files) files.hidden = !hooks.exportFile;
    if (hooks.exportFile) {
      this.el("export").addEventListener("click", () => this.exportFile());
      this.el("import").addEventListener("change", (e) => {
        if (e.target.files.length) this.importFile(e.target.files[0]);
        e.target.value = "";
      });
    }
  }

  /** Download the added signs as a vocabulary file (as `islr vocab export` writes it). */
  exportFile() {
    const file = this.hooks.exportFile();
    const blob = new Blob([JSON.stringify(file, null, 1) + "\n"], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${this.hooks.state.model?.name ?? "model"}.vocab.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    this.view.exported = file;
    this.setPhase(this.view.phase, `Exported ${file.signs.length} signs: \`islr vocab import MODEL FILE\` reads it.`);
  }

  async importFile(file) {
    try {
      const n = await this.hooks.importFile(JSON.parse(await file.text()));
      await this.load();
      this.setPhase(this.view.phase, `Imported ${n} signs from ${file.name}.`);
    } catch (e) {
      this.setPhase(this.view.phase, `Cannot import ${file.name}: ${e.message ?? e}`, true);
    }
  }

  get view() {
    return this.hooks.state.enrol;
  }

  setPhase(phase, message = null, isError = false) {
    this.view.phase = phase;
    if (message !== null) {
      this.view.message = message;
      const el = this.el("message");
      el.textContent = message;
      el.classList.toggle("error", isError);
    }
    this.render();
  }

  // ------------------------------------------------------------------ the vocabulary (server)

  /** GET /v1/vocabulary: whether writes are on, the limits, the added signs. */
  async load() {
    let answer;
    try {
      answer = await this.request("GET", "v1/vocabulary");
    } catch (e) {
      answer = { status: 0, ok: false, body: { detail: String(e.message ?? e) } };
    }
    if (!answer.ok) {
      this.vocabulary = null;
      this.view.allowEnroll = false;
      this.setNotice(
        answer.status === 404
          ? "This server has no vocabulary API (an older islr): signs cannot be added here."
          : `Cannot read the vocabulary: ${errorDetail(answer.body, answer.status)}`,
      );
      this.render();
      return null;
    }
    this.vocabulary = answer.body;
    this.view.allowEnroll = Boolean(answer.body.allow_enroll);
    this.view.limits = answer.body.limits ?? null;
    this.view.added = (answer.body.signs ?? [])
      .filter((s) => s.kind === "added" || (Array.isArray(s.prototypes) && s.prototypes.length))
      .map((s) => ({ label: s.label, kind: s.kind, examples: s.examples }));
    this.setNotice(this.view.allowEnroll ? "" : writesOffText(answer.body));
    this.hooks.onVocabulary(answer.body);
    this.render();
    return answer.body;
  }

  setNotice(text) {
    const el = this.el("writes");
    el.textContent = text;
    el.hidden = !text;
  }

  // ------------------------------------------------------------------ recording takes

  /** Every frame of the live view (raw MediaPipe coordinates in the model's layout). */
  onFrame(raw, t, width, height, handsSeen) {
    const rec = this.recording;
    if (!rec) return;
    rec.frames.push(raw);
    rec.times.push(t);
    rec.hands.push(handsSeen);
    rec.width = width;
    rec.height = height;
  }

  /** Every segmentation event of the live view: a finished segment may be a take. */
  onEvent(event) {
    const rec = this.recording;
    if (rec && (event.type === "sign" || event.type === "unknown")) {
      rec.segments.push({ start: event.start, end: event.end });
    }
  }

  settings() {
    const label = this.el("name").value.trim();
    const nTakes = Number(this.el("takes").value);
    const seconds = Number(this.el("seconds").value);
    if (!label) throw new Error("Type the new sign's name first.");
    if (!(nTakes >= 3 && nTakes <= 5)) throw new Error("Record 3 to 5 takes.");
    if (!(seconds >= 1 && seconds <= 10)) throw new Error("A take lasts 1 to 10 seconds.");
    return { label, nTakes, seconds };
  }

  async recordTakes() {
    if (this.busy) return;
    let settings;
    try {
      settings = this.settings();
      if (!this.hooks.cameraOn()) throw new Error("Start the camera first: takes are recorded from it.");
    } catch (e) {
      this.setPhase("error", e.message, true);
      return;
    }
    this.busy = true;
    this.label = settings.label;
    this.takes = [];
    this.check = null;
    this.view.check = null;
    try {
      for (let i = 0; i < settings.nTakes; i++) {
        this.takes.push({ status: "waiting" });
      }
      for (let i = 0; i < settings.nTakes; i++) {
        if (!this.hooks.cameraOn()) throw new Error("The camera stopped; record the takes again.");
        this.takes[i] = await this.recordOne(i, settings);
        this.render();
      }
      this.hooks.stageNote("");
      await this.runCheck();
    } catch (e) {
      this.recording = null;
      this.hooks.stageNote("");
      this.setPhase("error", e.message, true);
    } finally {
      this.busy = false;
      this.render();
    }
  }

  async recordOne(i, { nTakes, seconds }) {
    this.takes[i] = { status: "countdown" };
    return this.recordTake(`Take ${i + 1} of ${nTakes}`, seconds, (phase, text) => {
      if (phase === "recording") this.takes[i] = { status: "recording" };
      this.setPhase(phase, text);
    });
  }

  /**
   * One take from the camera: a countdown, `seconds` of signing, cut by the live segmenter ->
   * makeTake's {status, take, ...}. say(phase, text) shows how far it is ("countdown" or
   * "recording"); the "Calibrate to me" flow records its takes with this too.
   */
  async recordTake(what, seconds, say) {
    // Frames are kept from the countdown on: a sign started a little early still has its start.
    this.recording = { frames: [], times: [], hands: [], segments: [], width: null, height: null };
    try {
      for (let n = COUNTDOWN_SECONDS; n > 0; n--) {
        say("countdown", `${what}: get ready… ${n}`);
        this.hooks.stageNote(`${what} in ${n}…`);
        await sleep(1000);
      }
      say("recording", `${what}: sign now (${seconds} s)`);
      this.hooks.stageNote(`${what}: sign now`);
      const from = performance.now() / 1000;
      await sleep(seconds * 1000);
      const to = performance.now() / 1000;
      // A sign still open at the end of the window: wait for the segmenter to close it.
      const stream = this.hooks.streamConfig();
      const deadline = performance.now() + (stream.max_sign_seconds + stream.end_rest_seconds) * 1000;
      while (this.hooks.activity() === "signing" && performance.now() < deadline) await sleep(100);
      await sleep(EVENT_SLACK_MS);
      return this.makeTake(this.recording, from, to);
    } finally {
      this.recording = null;
    }
  }

  /** The recorded frames -> one take (the POST /v1/predict body form) and its status. */
  makeTake(rec, from, to) {
    const cut = cutTake(rec.times, rec.hands, rec.segments, from, to);
    if (cut.source === "none") {
      return { status: "failed", error: "no hands seen: sign in view of the camera", frames: 0 };
    }
    const take = {
      frames: cut.indices.map((k) => this.hooks.pointsOf(rec.frames[k])),
      layout: this.hooks.layout,
      image_width: rec.width,
      image_height: rec.height,
    };
    const result = {
      status: "recorded",
      take,
      frames: take.frames.length,
      seconds: cut.end - cut.start,
      source: cut.source,
    };
    const limits = this.view.limits;
    if (limits?.max_take_frames && take.frames.length > limits.max_take_frames) {
      const error = `too long: the server takes at most ${limits.max_take_frames} frames`;
      return { ...result, status: "failed", error };
    }
    if (limits?.max_take_bytes && JSON.stringify(take).length > limits.max_take_bytes) {
      const error = `too large: the server takes at most ${limits.max_take_bytes} bytes`;
      return { ...result, status: "failed", error };
    }
    return result;
  }

  recordedTakes() {
    return this.takes.filter((t) => t.status === "recorded").map((t) => t.take);
  }

  discard() {
    if (this.busy) return;
    this.takes = [];
    this.check = null;
    this.view.check = null;
    this.setPhase("idle", "");
  }

  // ------------------------------------------------------------------ check and save

  /** POST /v1/vocabulary/check: consistency of the takes, nearest sign, the flag. Never writes. */
  async runCheck() {
    const takes = this.recordedTakes();
    if (takes.length < 2) {
      this.setPhase("error", "Fewer than 2 usable takes: record them again.", true);
      return;
    }
    this.setPhase("checking", "Comparing the takes…");
    const answer = await this.request("POST", "v1/vocabulary/check", { label: this.label, takes });
    if (!answer.ok) {
      this.setPhase("error", this.refusal(answer), true);
      return;
    }
    this.showCheck(answer.body);
    const flagged = answer.body.flagged;
    this.setPhase(
      "recorded",
      flagged
        ? `Takes recorded, but flagged: ${answer.body.reason ?? "too close to a known sign"}.`
        : `${takes.length} takes recorded: save them as “${this.label}”.`,
    );
  }

  showCheck(check) {
    this.check = check;
    this.view.check = check;
    const perTake = check.consistency?.per_take ?? [];
    let k = 0;
    for (const take of this.takes) if (take.status === "recorded") take.consistency = perTake[k++];
  }

  async save(force) {
    if (this.busy) return;
    const takes = this.recordedTakes();
    if (!takes.length) return;
    this.busy = true;
    this.setPhase("saving", `Saving “${this.label}”…`);
    try {
      const answer = await this.request("POST", "v1/vocabulary", { label: this.label, takes, force });
      if (answer.status === 409) {
        const detail = answer.body?.detail;
        const check = detail && typeof detail === "object" && !Array.isArray(detail) ? detail : answer.body;
        if (check?.consistency) this.showCheck(check);
        const why = this.refusal(answer);
        this.setPhase("recorded", `Not saved: ${why}. Save anyway if it is a different sign.`, true);
        return;
      }
      if (!answer.ok) {
        const phase = answer.status === 403 ? "recorded" : "error";
        this.setPhase(phase, `Not saved: ${this.refusal(answer)}`, true);
        if (answer.status === 403) await this.load();
        return;
      }
      const sign = answer.body.sign ?? { label: this.label };
      this.takes = [];
      this.check = null;
      this.view.check = null;
      await this.load();
      const examples = sign.examples ?? takes.length;
      this.setPhase("saved", `Saved “${sign.label}” (${examples} examples): sign it to see it recognised.`);
    } catch (e) {
      this.setPhase("error", `Not saved: ${e.message ?? e}`, true);
    } finally {
      this.busy = false;
      this.render();
    }
  }

  async remove(label) {
    // the name as a query parameter: any name works, also "big / large" or ".."
    const answer = await this.request("DELETE", `v1/vocabulary?label=${encodeURIComponent(label)}`);
    if (!answer.ok) {
      this.setPhase(this.view.phase, `Cannot remove “${label}”: ${this.refusal(answer)}`, true);
      return;
    }
    await this.load();
    this.setPhase(this.view.phase, `Removed “${label}”.`);
  }

  /** What a refused request means for the user, by status. */
  refusal({ status, body }) {
    const detail = errorDetail(body, status);
    switch (status) {
      case 401:
        return "the server has restarted since this page was loaded (a new write token); reload the page";
      case 403:
        return "writes are off on this server; restart it with `islr serve MODEL --allow-enroll`";
      case 413:
        return `a take is too large for this server (${detail}); record shorter takes`;
      case 409:
        return detail && detail !== "HTTP 409" ? detail : "too close to a known sign";
      case 422:
        return `the server refused the input: ${detail}`;
      case 404:
        return `not found: ${detail}`;
      default:
        return detail;
    }
  }

  // ------------------------------------------------------------------ drawing the panel

  render() {
    const view = this.view;
    view.takes = this.takes.map(({ status, error, frames, seconds, source, consistency }) => ({
      status,
      error,
      frames,
      seconds,
      source,
      consistency,
    }));
    const writesOn = view.allowEnroll === true;
    const recorded = this.recordedTakes().length;
    this.el("record").disabled = this.busy;
    this.el("discard").disabled = this.busy || this.takes.length === 0;
    const flagged = Boolean(this.check?.flagged);
    this.el("save").disabled = this.busy || !writesOn || recorded < 2 || !this.check;
    this.el("save").title = writesOn ? "" : "writes are off: islr serve MODEL --allow-enroll";
    this.el("force").hidden = !flagged;
    this.el("force").disabled = this.el("save").disabled;

    this.el("take-list").replaceChildren(
      ...this.takes.map((take, i) => {
        const li = document.createElement("li");
        li.className = `take ${take.status}`;
        li.textContent = `Take ${i + 1}: ${this.takeText(take)}`;
        return li;
      }),
    );

    const check = this.el("check");
    check.replaceChildren();
    if (this.check) {
      const c = this.check;
      const lines = [
        `Consistency of the takes: mean ${sim(c.consistency?.mean)}, lowest ${sim(c.consistency?.min)}`,
        c.nearest
          ? `Nearest other sign: ${c.nearest.label} (similarity ${sim(c.nearest.similarity)})`
          : "No other sign to compare with.",
      ];
      if (c.flagged) {
        lines.push(`Flagged: ${c.reason ?? "too close to a known sign"}. Save anyway only if it is a different sign.`);
      }
      for (const text of lines) {
        const p = document.createElement("p");
        p.textContent = text;
        if (text.startsWith("Flagged")) p.className = "flag";
        check.append(p);
      }
    }

    this.el("added").replaceChildren(
      ...view.added.map((sign) => {
        const li = document.createElement("li");
        const name = document.createElement("span");
        const known = sign.kind === "known" ? " (known sign)" : "";
        name.textContent = `${sign.label} · ${sign.examples ?? "?"} examples${known}`;
        const button = document.createElement("button");
        button.type = "button";
        button.className = "small";
        button.textContent = "Remove";
        button.disabled = !writesOn;
        button.addEventListener("click", () => this.remove(sign.label));
        li.append(name, button);
        return li;
      }),
    );
    this.el("empty").hidden = view.added.length > 0;
  }

  takeText(take) {
    switch (take.status) {
      case "waiting":
        return "waiting";
      case "countdown":
        return "get ready…";
      case "recording":
        return "recording…";
      case "failed":
        return `not usable (${take.error})`;
      default: {
        const how =
          take.source === "segmenter" ? "cut by the segmenter" : "frames with hands (no segment found)";
        const c = Number.isFinite(take.consistency) ? `, consistency ${sim(take.consistency)}` : "";
        return `${take.frames} frames, ${take.seconds.toFixed(1)} s, ${how}${c}`;
      }
    }
  }
}
