"""Shared helpers for the inference, export, server and streaming tests (no tests here).

``synthetic_run()`` trains a tiny classifier on three synthetic signs once per test process
(a few seconds on 2 cores) and saves it as a run folder with ``save_checkpoint``; the streaming
test and the server tests use it so that predictions mean something.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np

from tests.conftest import need_torch

SYNTH_CLASSES = (0, 2, 4)  # different movement families (2k and 2k+1 share one)
SYNTH_SEQ_LEN = 20


def tiny_run(
    out: Path,
    name: str = "conv_transformer",
    layout: str = "hands_pose75",
    seq_len: int = 16,
    labels: tuple[str, ...] = ("a", "b", "c", "d", "e"),
    n_coords: int = 3,
    seed: int = 0,
) -> Path:
    """A randomly initialised tiny model saved as ``out/best.pt``; returns ``out``."""
    torch = need_torch()

    from islr.features import FeatureConfig
    from islr.models import ModelConfig, ModelSpec, registered_model, save_checkpoint

    torch.manual_seed(seed)
    spec = ModelSpec(
        ModelConfig(name, registered_model(name).test_kwargs),
        FeatureConfig(seq_len=seq_len),
        layout,
        n_coords,
        list(labels),
    )
    save_checkpoint(out / "best.pt", spec, spec.build().eval().state_dict())
    return out


def synthetic_sign(class_pos: int, sample: int, signer: int = 5):
    """One synthetic performance (holistic136 LandmarkSequence) of ``SYNTH_CLASSES[class_pos]``."""
    from islr.datasets.synthetic import generate_sign, make_signer, make_vocabulary

    vocab = make_vocabulary(max(SYNTH_CLASSES) + 2, seed=0)
    sign = vocab[SYNTH_CLASSES[class_pos]]
    return generate_sign(sign, make_signer(signer, 0), np.random.default_rng([class_pos, sample]))


def synthetic_labels() -> list[str]:
    from islr.datasets.synthetic import make_vocabulary

    vocab = make_vocabulary(max(SYNTH_CLASSES) + 2, seed=0)
    return [vocab[i].label for i in SYNTH_CLASSES]


# Plain training: no augmentation, no label smoothing, one thread (the same weights whatever ran
# before, and fast on a busy machine).
NO_AUGMENTATION = [
    f"augment.{p}=0"
    for p in ("p_mirror", "p_time_warp", "p_temporal_shift", "p_rotate", "p_scale")
    + ("p_shear_shift", "p_noise", "p_temporal_mask", "p_spatial_mask", "p_mixup")
    + ("p_stream_segment",)
]
PLAIN_TRAINING = [*NO_AUGMENTATION, "optim.label_smoothing=0", "threads=1"]


def model_overrides(name: str, **kwargs: object) -> list[str]:
    """``key=value`` overrides choosing model ``name`` with its registered test size (or kwargs)."""
    import yaml

    from islr.models import registered_model

    kwargs = kwargs or registered_model(name).test_kwargs
    return [f"model.name={name}", f"model.kwargs={yaml.safe_dump(kwargs, default_flow_style=True)}"]


@functools.lru_cache(maxsize=1)
def synthetic_run() -> Path:
    """A tiny conv_transformer trained with ``train()`` on 3 synthetic signs (16 samples each,
    4 signers)."""
    need_torch()
    from islr.landmarks import LandmarkCache, ManifestEntry
    from islr.training import load_config, train

    out = Path(tempfile.mkdtemp(prefix="islr-test-run-"))
    labels = synthetic_labels()
    with LandmarkCache(out / "cache").writer(batch=64) as writer:
        for pos, label in enumerate(labels):
            for k in range(16):
                entry = ManifestEntry(id=f"{label}/{k}", label=label, split="train")
                writer.add(synthetic_sign(pos, 1000 + k, signer=k % 4), entry)
    overrides = [
        f"features.seq_len={SYNTH_SEQ_LEN}",
        *model_overrides("conv_transformer"),
        "optim.epochs=10",
        "optim.batch_size=16",
        "optim.lr=0.003",
        *PLAIN_TRAINING,
    ]
    train(load_config(None, overrides), out / "cache", out / "run")
    return out / "run"


@functools.lru_cache(maxsize=1)
def synthetic_onnx() -> Path:
    """``synthetic_run()`` exported to ONNX with its embedding reference (calibration, known
    prototypes) fitted on its training cache: a model that new signs can be added to."""
    from islr.export import export_onnx
    from islr.inference import Engine
    from islr.inference.enroll import embed_entries, labelled_entries, reference_from_samples

    run = synthetic_run()
    engine = Engine.load(run, threads=1, vocabulary=False)
    cache, entries = labelled_entries(run.parent / "cache", ("train",))
    reference = reference_from_samples(embed_entries(engine, cache, entries), engine.known_labels)
    path = Path(tempfile.mkdtemp(prefix="islr-test-onnx-")) / "synthetic.onnx"
    return export_onnx(run, path, reference=reference).path


def unseen_synthetic_sign(sample: int, signer: int = 5):
    """A performance of a synthetic sign that ``synthetic_run()`` was not trained on (one far
    from the trained signs in its embedding)."""
    from islr.datasets.synthetic import generate_sign, make_signer, make_vocabulary

    sign = make_vocabulary(10, seed=0)[9]
    return generate_sign(sign, make_signer(signer, 0), np.random.default_rng([9, sample]))
