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
    import torch

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


@functools.lru_cache(maxsize=1)
def synthetic_run() -> Path:
    """A tiny conv_transformer trained on 3 synthetic signs (16 samples each, 4 signers)."""
    import torch

    from islr.features import FeatureConfig, prepare_model_input
    from islr.models import ModelConfig, ModelSpec, registered_model, save_checkpoint

    torch.manual_seed(0)
    x, y = [], []
    for pos in range(len(SYNTH_CLASSES)):
        for k in range(16):
            seq = synthetic_sign(pos, 1000 + k, signer=k % 4)
            x.append(prepare_model_input(seq, "holistic136", SYNTH_SEQ_LEN, 3))
            y.append(pos)
    inputs, targets = torch.from_numpy(np.stack(x)), torch.tensor(y)
    spec = ModelSpec(
        ModelConfig("conv_transformer", registered_model("conv_transformer").test_kwargs),
        FeatureConfig(seq_len=SYNTH_SEQ_LEN),
        "holistic136",
        3,
        synthetic_labels(),
    )
    model = spec.build()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same weights whatever ran before; fast on a busy machine
    try:
        for _ in range(10):
            model.train()
            order = torch.randperm(len(inputs), generator=generator)
            for i in range(0, len(order), 16):
                batch = order[i : i + 16]
                loss = torch.nn.functional.cross_entropy(model(inputs[batch]), targets[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    finally:
        torch.set_num_threads(threads)
    out = Path(tempfile.mkdtemp(prefix="islr-test-run-"))
    save_checkpoint(out / "best.pt", spec, model.eval().state_dict())
    return out
