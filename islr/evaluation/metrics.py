"""Evaluation: top-1/top-5, macro-F1, per-class report, confusion matrix, robustness variants.

Works with any model the inference engine runs (checkpoint or ONNX). Labels are matched by name
(ignoring case and punctuation, as INCLUDE's ``Big Large`` = ``biglarge``), so any cache with the
same sign names can be evaluated; samples of signs the model does not know are reported.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from islr.datasets.include import label_key
from islr.errors import DatasetError
from islr.features import augment as A
from islr.landmarks import LandmarkCache, LandmarkSequence, atomic_write_bytes, get_layout


@dataclass
class EvalResult:
    top1: float
    top5: float
    macro_f1: float
    n: int
    unknown: dict[str, int] = field(default_factory=dict)  # label -> samples the model lacks
    per_class: list[dict[str, Any]] = field(default_factory=list)
    confusion: np.ndarray | None = None
    labels: list[str] = field(default_factory=list)
    y_true: np.ndarray | None = None
    y_pred: np.ndarray | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "top1": self.top1,
            "top5": self.top5,
            "macro_f1": self.macro_f1,
            "n": self.n,
            "n_unknown": int(sum(self.unknown.values())),
            "unknown_labels": self.unknown,
        }


def compute_metrics(probs: np.ndarray, y_true: np.ndarray, labels: list[str]) -> EvalResult:
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    y_pred = probs.argmax(axis=1)
    k = min(5, probs.shape[1])
    top5 = np.argsort(-probs, axis=1)[:, :k]
    present = np.arange(len(labels))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=present, zero_division=0)
    per_class = [
        {
            "label": labels[i],
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }  # fmt: skip
        for i in present
    ]
    seen = np.unique(y_true)  # macro-F1 over the classes this set has
    return EvalResult(
        top1=float((y_pred == y_true).mean()),
        top5=float((top5 == y_true[:, None]).any(axis=1).mean()),
        macro_f1=float(f1_score(y_true, y_pred, labels=seen, average="macro", zero_division=0)),
        n=int(len(y_true)),
        per_class=per_class,
        confusion=confusion_matrix(y_true, y_pred, labels=present),
        labels=list(labels),
        y_true=y_true,
        y_pred=y_pred,
    )


# The training augmentations with fixed parameters: what a camera or signer could change.
PERTURBATIONS: dict[str, A.Transform] = {
    "mirror": A.Mirror(),
    "rotate": A.Rotate(max_degrees=10.0, only_extremes=True),
    "zoom": A.Scale(scale_range=(0.8, 1.2), aspect_jitter=0.0),
    "speed": A.TimeWarp(speed_range=(0.6, 1.6), strength=0.0, log_uniform=False),
    "drop-hands": A.DropHands(fraction=0.25, both=True, fixed_fraction=True),
    # a user's webcam (islr.features.webcam): the WEBCAM suite
    "close-framing": A.CloseFraming(head_room=(2.6, 2.6), shoulder_offset=(0.0, 0.0),
                                    aspects=(4 / 3,)),
    "frame-4:3": A.AspectFrame(aspects=(4 / 3,)),
    "frame-1:1": A.AspectFrame(aspects=(1.0,)),
    "frame-9:16": A.AspectFrame(aspects=(9 / 16,)),
    "camera-above": A.Perspective(max_pitch=20.0, max_yaw=0.0, only_extremes=True),
    "camera-below": A.Perspective(max_pitch=-20.0, max_yaw=0.0, only_extremes=True),
    "camera-side": A.Perspective(max_pitch=0.0, max_yaw=30.0, only_extremes=True),
    "fps-15": A.FrameRate(n=2),
    "dropped-frames": A.DropFrames(fraction=0.25, fixed_fraction=True),
    "fast-hands-lost": A.LoseFastHands(fraction=0.3, fixed_fraction=True),
    # MediaPipe names hands and body sides from the image, so a mirrored selfie view reads as a
    # left-handed signer: the same flip and left/right swap as "mirror"
    "mirror-selfie": A.Mirror(),
}  # fmt: skip
WEBCAM = ("close-framing", "frame-4:3", "frame-1:1", "frame-9:16", "camera-above",
          "camera-below", "camera-side", "fps-15", "dropped-frames", "fast-hands-lost",
          "mirror-selfie")  # fmt: skip


def perturb_sequence(seq: LandmarkSequence, name: str, rng: np.random.Generator):
    """A copy of ``seq`` changed as a camera or signer would (see PERTURBATIONS)."""
    if name not in PERTURBATIONS:
        raise DatasetError(f"unknown perturbation {name!r}; known: {sorted(PERTURBATIONS)}")
    from islr.features import aspect_corrected

    # perturb in width units (undistorted), then mark the data as already corrected
    clip = A.Clip(aspect_corrected(seq), get_layout(seq.layout))
    data = PERTURBATIONS[name](clip, rng).data
    extra = {k: v for k, v in seq.extra.items() if k not in ("image_width", "image_height")}
    return LandmarkSequence(data, seq.layout, seq.fps, None, seq.source, seq.extractor, extra)


def evaluate_cache(
    engine,
    cache_dir: str | Path,
    split: str | None = "val",
    perturbation: str | None = None,
    seed: int = 0,
) -> EvalResult:
    """Evaluate an :class:`islr.inference.Engine` on one split of a cache."""
    cache = LandmarkCache(cache_dir)
    entries = [e for e in cache.require_entries(split if split != "all" else None) if e.label]
    if not entries:
        raise DatasetError(f"{cache_dir}: no labelled samples in split {split!r}")
    by_key = {label_key(name): i for i, name in enumerate(engine.labels)}
    known = [e for e in entries if label_key(e.label) in by_key]
    unknown: dict[str, int] = {}
    for e in entries:
        if label_key(e.label) not in by_key:
            unknown[e.label] = unknown.get(e.label, 0) + 1
    if not known:
        raise DatasetError(
            f"{cache_dir}: none of the {len(entries)} samples has a sign the model knows "
            f"(e.g. {sorted(unknown)[:5]}; the model knows e.g. {engine.labels[:5]})"
        )
    seqs = cache.load_many(known)
    if perturbation:
        rng = np.random.default_rng(seed)
        seqs = [perturb_sequence(s, perturbation, rng) for s in seqs]
    probs = engine.predict_batch(seqs)
    y_true = np.array([by_key[label_key(e.label)] for e in known])
    result = compute_metrics(probs, y_true, list(engine.labels))
    result.unknown = unknown
    return result


def write_report(result: EvalResult, out_dir: str | Path, title: str = "") -> Path:
    """``metrics.json``, ``per_class.csv``, ``confusion.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_dir / "metrics.json", json.dumps(result.summary(), indent=1).encode())
    buf = io.StringIO()
    w = csv.DictWriter(buf, ["label", "precision", "recall", "f1", "support"])
    w.writeheader()
    w.writerows(result.per_class)
    atomic_write_bytes(out_dir / "per_class.csv", buf.getvalue().encode())
    if result.confusion is not None:
        plot_confusion(result.confusion, result.labels, out_dir / "confusion.png", title)
    return out_dir


def plot_confusion(cm: np.ndarray, labels: list[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix, readable with 50+ classes (size grows with classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(labels)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    size = max(6.0, 0.22 * n + 2)
    font = 8 if n <= 60 else 6
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (rows normalised)")
    for i, j in zip(*np.nonzero(cm), strict=True):
        if i != j or n <= 30:
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=font - 2,
                    color="white" if norm[i, j] > 0.5 else "black")  # fmt: skip
    fig.colorbar(im, fraction=0.03)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
