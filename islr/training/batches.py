"""Augmented training batches, each one a pure function of (seed, epoch, batch number).

A batch draws its shuffle from ``(seed, epoch)`` and its augmentations from its own generator,
``numpy.random.default_rng([seed, epoch, batch])``. So a run is the same whether its batches are
prepared in the training process or in any number of worker processes (a torch ``DataLoader``
over :class:`AugmentedBatches`), and a resumed run needs no generator state to carry on.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from islr.features import AugmentConfig, mixup
from islr.landmarks import get_layout
from islr.training.data import SampleSet, make_batch, make_outlier_batch
from islr.training.segments import swap_in_segments


@dataclass
class Batch:
    """Model input ``x (B, T, N, C)``, soft targets ``(B, K)``, and the label indices of the
    first ``len(y)`` rows (the real clips; made-up non-signs follow them)."""

    x: torch.Tensor
    soft: torch.Tensor
    y: torch.Tensor

    def pin_memory(self) -> Batch:  # DataLoader(pin_memory=True) calls this
        return Batch(self.x.pin_memory(), self.soft.pin_memory(), self.y.pin_memory())

    def to(self, device: torch.device) -> Batch:
        return Batch(*(t.to(device, non_blocking=True) for t in (self.x, self.soft, self.y)))


@dataclass
class BatchRecipe:
    """What a training batch is made of (the parts of a TrainConfig the batches need)."""

    batch_size: int
    seq_len: int
    layout: str
    n_classes: int
    augment: AugmentConfig
    outlier_frac: float = 0.0
    seed: int = 0


class AugmentedBatches(torch.utils.data.Dataset):
    """Map-style dataset of one run's batches: item ``(epoch, b)`` is batch ``b`` of ``epoch``."""

    def __init__(
        self,
        samples: SampleSet,
        recipe: BatchRecipe,
        segments: list[list[np.ndarray]] | None = None,
    ):
        self.samples = samples
        self.recipe = recipe
        self.segments = segments

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.samples) / self.recipe.batch_size)

    def __len__(self) -> int:
        return self.steps_per_epoch()

    def order(self, epoch: int) -> np.ndarray:
        """The epoch's shuffle of the samples."""
        return np.random.default_rng([self.recipe.seed, epoch]).permutation(len(self.samples))

    def __getitem__(self, key: tuple[int, int]) -> Batch:
        epoch, b = key
        r = self.recipe
        idx = self.order(epoch)[b * r.batch_size : (b + 1) * r.batch_size]
        rng = np.random.default_rng([r.seed, epoch, b])
        y = self.samples.targets[idx]
        arrays = [self.samples.arrays[i] for i in idx]
        if self.segments is not None:
            arrays = swap_in_segments(arrays, y, self.segments, r.augment.p_stream_segment, rng)
        x = make_batch(arrays, r.seq_len, r.layout, r.augment, rng)
        soft = np.eye(r.n_classes, dtype=np.float32)[y]
        n_out = int(round(r.outlier_frac * len(idx)))
        if n_out:  # outlier exposure: made-up non-signs must get a flat distribution
            made_up = make_outlier_batch(
                self.samples, n_out, r.seq_len, get_layout(r.layout), r.augment, rng
            )
            x = np.concatenate([x, made_up])
            soft = np.concatenate(
                [soft, np.full((n_out, r.n_classes), 1 / r.n_classes, np.float32)]
            )
        if r.augment.p_mixup > 0 and rng.random() < r.augment.p_mixup and len(idx) > 1:
            x, soft = mixup(x, soft, r.augment.mixup_alpha, rng)
        return Batch(torch.from_numpy(x), torch.from_numpy(soft), torch.from_numpy(y))


class RunKeys(torch.utils.data.Sampler):
    """The keys ``(epoch, b)`` of every epoch from ``first`` to ``last``, in order. One pass over
    them keeps the workers preparing across epoch boundaries: a new pass per epoch would stall
    the step loop at each epoch's start while the workers refill."""

    def __init__(self, steps: int, last: int):
        self.steps = steps
        self.first = 1
        self.last = last

    def __len__(self) -> int:
        return self.steps * max(0, self.last - self.first + 1)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return ((e, b) for e in range(self.first, self.last + 1) for b in range(self.steps))


def _one_thread_worker(_: int) -> None:
    torch.set_num_threads(1)  # a batch worker is numpy work; its torch threads would only contend


class BatchSource:
    """The batches of each epoch up to ``last_epoch``, prepared in ``workers`` processes ahead of
    the training step (or in this process, one at a time, with ``workers=0``)."""

    def __init__(
        self,
        batches: AugmentedBatches,
        workers: int = 0,
        pin_memory: bool = False,
        last_epoch: int = 10**6,
    ):
        self.batches = batches
        self.workers = workers
        self.keys = RunKeys(batches.steps_per_epoch(), last_epoch)
        self.loader = None
        self._iterator: Iterator[Batch] | None = None
        self._next_epoch: int | None = None  # the epoch the iterator is at
        if workers > 0:
            self.loader = torch.utils.data.DataLoader(
                batches, batch_size=None, sampler=self.keys, num_workers=workers,
                persistent_workers=True, prefetch_factor=4, pin_memory=pin_memory,
                worker_init_fn=_one_thread_worker,
                # its own generator: the workers' base seed must not be drawn from the global
                # torch generator that dropout uses (or workers > 0 would change the run)
                generator=torch.Generator().manual_seed(batches.recipe.seed),
                multiprocessing_context=_worker_context(),
            )  # fmt: skip

    def epoch(self, epoch: int) -> Iterator[Batch]:
        steps = self.keys.steps
        if self.loader is None:
            yield from (self.batches[(epoch, b)] for b in range(steps))
            return
        if self._next_epoch != epoch or self._iterator is None:
            self.keys.first = epoch
            self._iterator = iter(self.loader)
        self._next_epoch = None  # until this epoch's batches have all been taken
        for _ in range(steps):
            yield next(self._iterator)
        self._next_epoch = epoch + 1

    def close(self) -> None:
        """Stop the workers (they would otherwise live until the loader is collected)."""
        iterator = getattr(self.loader, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self.loader = None
        self._iterator = None


def _worker_context() -> str | None:
    # fork starts workers at once and shares the samples copy-on-write; it is safe here because
    # workers never touch CUDA. Elsewhere (macOS, Windows) the platform default.
    return "fork" if os.name == "posix" and os.uname().sysname == "Linux" else None


def auto_workers(cores: int, accelerator: bool) -> int:
    """Batch workers for a run given ``cores`` CPU cores: none on a small machine (the batch
    preparation is a tenth of a CPU step, and a worker would take a core from the model), a few
    beside a GPU, whose steps are much faster than one process can prepare batches."""
    if accelerator:
        return max(0, min(12, cores - 1))
    return 0 if cores < 8 else min(4, cores // 4)
