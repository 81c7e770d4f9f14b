"""Metrics, per-class reports, confusion matrices and robustness variants of a split."""

from islr.evaluation.metrics import (
    PERTURBATIONS,
    WEBCAM,
    EvalResult,
    compute_metrics,
    evaluate_cache,
    perturb_sequence,
    plot_confusion,
    write_report,
)

__all__ = [
    "PERTURBATIONS",
    "WEBCAM",
    "EvalResult",
    "compute_metrics",
    "evaluate_cache",
    "perturb_sequence",
    "plot_confusion",
    "write_report",
]
