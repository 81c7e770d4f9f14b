// "Calibrate to me": a few of the model's own words, signed 1-2 times each, become this signer's
// own examples of those known signs (the vocabulary head adds their probability to the
// classifier's; docs/signers.md "calibration"). The takes are recorded by the "Add a sign" panel's
// recorder (Enrolment.recordTake) and saved through its vocabulary requests (the server's
// POST /v1/vocabulary with the write token, or on a static site the browser's own vocabulary),
// all at the end, and the live view uses them at once (Enrolment.load -> onVocabulary).
const DEFAULT_WORDS = 5;
const MAX_FAILED_TAKES = 3; // takes in a row with no hands seen: the word is skipped

/** n of labels, drawn without replacement (random() in [0, 1)). */
export function pickWords(labels, n, random = Math.random) {
  const pool = [...labels];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, Math.min(n, pool.length));
}

/**
 * The panel. hooks: {state, knownLabels()}; enrolment: the "Add a sign" panel (its recorder,
 * its requests, its busy flag: one of the two records at a time).
 */
export class Calibration {
  constructor(root, enrolment, hooks) {
    this.root = root;
    this.enrolment = enrolment;
    this.hooks = hooks;
    this.el = (name) => root.querySelector(`[data-calib="${name}"]`);
    this.skip = false;
    this.redo = false;
    this.stopped = false;
    hooks.state.calibration = {
      phase: "idle", // idle | choosing | recording | saving | saved | error
      words: [],
      word: null, // the word being signed
      take: null, // where its take is: countdown | recording
      progress: "",
      message: "",
      saved: [], // {label, takes, ok, error?}
    };
    this.el("open").addEventListener("click", () => this.open());
    this.el("shuffle").addEventListener("click", () => this.tick(pickWords(this.hooks.knownLabels(), DEFAULT_WORDS)));
    this.el("cancel").addEventListener("click", () => this.setPhase("idle", ""));
    this.el("start").addEventListener("click", () => this.run());
    this.el("skip").addEventListener("click", () => (this.skip = true));
    this.el("redo").addEventListener("click", () => (this.redo = true));
    this.el("stop").addEventListener("click", () => (this.stopped = true));
    this.render();
  }

  get view() {
    return this.hooks.state.calibration;
  }

  setPhase(phase, message = null, isError = false) {
    this.view.phase = phase;
    if (message !== null) {
      this.view.message = message;
      this.el("message").textContent = message;
      this.el("message").classList.toggle("error", isError);
    }
    this.render();
  }

  /** The word list (every known sign, a few ticked) and the settings. */
  open() {
    if (this.enrolment.busy) return;
    const labels = this.hooks.knownLabels();
    this.el("words").replaceChildren(
      ...labels.map((label) => {
        const item = document.createElement("label");
        item.className = "word-choice";
        const box = document.createElement("input");
        box.type = "checkbox";
        box.value = label;
        item.append(box, document.createTextNode(label));
        return item;
      }),
    );
    this.tick(pickWords(labels, DEFAULT_WORDS));
    const writesOn = this.enrolment.view.allowEnroll === true;
    this.setPhase(
      "choosing",
      writesOn
        ? "Tick the words to sign (a few are picked for you), then Start."
        : "Takes cannot be saved here: see “Add a sign” below for why.",
      !writesOn,
    );
  }

  tick(words) {
    for (const box of this.el("words").querySelectorAll("input")) box.checked = words.includes(box.value);
  }

  chosen() {
    return [...this.el("words").querySelectorAll("input:checked")].map((box) => box.value);
  }

  async run() {
    if (this.enrolment.busy) return;
    const words = this.chosen();
    const nTakes = Number(this.el("takes").value);
    const seconds = Number(this.el("seconds").value);
    const refuse = !words.length
      ? "Tick at least one word."
      : !(nTakes >= 1 && nTakes <= 2)
        ? "Sign each word 1 or 2 times."
        : !(seconds >= 1 && seconds <= 10)
          ? "A take lasts 1 to 10 seconds."
          : !this.enrolment.hooks.cameraOn()
            ? "Start the camera first: takes are recorded from it."
            : null;
    if (refuse) {
      this.setPhase("choosing", refuse, true);
      return;
    }
    this.enrolment.busy = true;
    this.enrolment.render();
    this.stopped = false;
    this.view.words = words;
    this.view.saved = [];
    const recorded = []; // {label, takes}
    try {
      for (let w = 0; w < words.length && !this.stopped; w++) {
        const takes = await this.recordWord(words[w], `Word ${w + 1} of ${words.length}`, nTakes, seconds);
        if (takes.length) recorded.push({ label: words[w], takes });
      }
      this.enrolment.hooks.stageNote("");
      this.view.word = null;
      await this.save(recorded);
    } catch (e) {
      this.enrolment.hooks.stageNote("");
      this.setPhase("error", `Calibration stopped: ${e.message ?? e}`, true);
    } finally {
      this.enrolment.busy = false;
      this.enrolment.render();
      this.render();
    }
  }

  /** One word's takes; Skip drops them, Redo records the word again from its first take. */
  async recordWord(word, which, nTakes, seconds) {
    const takes = [];
    let failed = 0;
    this.skip = false;
    this.redo = false;
    this.view.word = word;
    while (takes.length < nTakes && !this.skip && !this.stopped) {
      if (!this.enrolment.hooks.cameraOn()) throw new Error("the camera stopped");
      const progress = `${which}, take ${takes.length + 1} of ${nTakes}`;
      this.view.progress = progress;
      const result = await this.enrolment.recordTake(`${progress}: “${word}”`, seconds, (phase, text) => {
        this.view.take = phase;
        this.setPhase("recording", text);
      });
      if (this.skip || this.stopped) return [];
      if (this.redo) {
        this.redo = false;
        takes.length = 0;
        continue;
      }
      if (result.status === "recorded") {
        takes.push(result.take);
        failed = 0;
      } else if (++failed >= MAX_FAILED_TAKES) {
        this.setPhase("recording", `“${word}” skipped: ${result.error}.`, true);
        return [];
      }
    }
    return this.skip || this.stopped ? [] : takes;
  }

  /**
   * Every word's takes under its known label. force: they name a sign the model knows, so the
   * takes' being close to a known sign is what calibration expects, not a mistake to refuse.
   */
  async save(recorded) {
    if (!recorded.length) {
      this.setPhase("idle", "Nothing recorded, nothing saved.");
      return;
    }
    this.setPhase("saving", `Saving your takes of ${recorded.length} words…`);
    const saved = [];
    for (const { label, takes } of recorded) {
      let answer;
      try {
        answer = await this.enrolment.request("POST", "v1/vocabulary", { label, takes, force: true });
      } catch (e) {
        answer = { ok: false, status: 0, body: { detail: String(e.message ?? e) } };
      }
      saved.push({
        label,
        takes: takes.length,
        ok: answer.ok,
        ...(!answer.ok && { error: this.enrolment.refusal(answer) }),
      });
    }
    this.view.saved = saved;
    await this.enrolment.load(); // the live view scores the new examples from now on
    const good = saved.filter((s) => s.ok);
    const bad = saved.filter((s) => !s.ok);
    const list = good.map((s) => `${s.label} (${s.takes})`).join(", ");
    if (!bad.length) {
      this.setPhase("saved", `Calibrated: ${list}. Sign them to see them recognised.`);
    } else {
      const why = bad.map((s) => `${s.label}: ${s.error}`).join("; ");
      this.setPhase("error", `${good.length ? `Saved ${list}. ` : ""}Not saved: ${why}`, true);
    }
  }

  render() {
    const { phase } = this.view;
    const running = phase === "recording" || phase === "saving";
    this.el("open").hidden = phase === "choosing" || running;
    this.el("open").disabled = this.enrolment.busy;
    this.el("setup").hidden = phase !== "choosing";
    this.el("start").disabled = this.enrolment.view.allowEnroll !== true;
    this.el("run").hidden = !running;
    this.el("word").textContent = this.view.word ?? "";
    this.el("progress").textContent = phase === "recording" ? this.view.progress : "";
    for (const name of ["skip", "redo", "stop"]) this.el(name).disabled = phase !== "recording";
  }
}
