"""On CUDA, a training batch's forward pass, loss and backward pass replayed as one CUDA graph.

The default recipe's model is small: on a data-centre GPU its step is bound by launching kernels
(its forward pass alone is ~250 ATen operations), not by arithmetic. Captured once per batch shape
and replayed, forward, loss and backward cost one launch. The gradients are left in each
parameter's ``.grad`` as usual; clipping, the optimiser and the schedule still run eagerly after
the replay, so the schedule's learning-rate and momentum changes apply exactly as without it.

Each replay draws new dropout masks (PyTorch registers the CUDA generator with the graph), and
BatchNorm updates its running statistics in place, as an eager step would. A capture that fails
(an operation that cannot be captured, in some future model) is reported once and the step runs
eagerly from then on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (float logits, soft targets)
MAX_SHAPES = 4  # a full batch, the last one of an epoch, and their outlier variants
WARMUP_STEPS = 3  # eager passes before capture: cuBLAS and cuDNN pick kernels and workspaces


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    x: torch.Tensor  # static inputs the batch is copied into
    soft: torch.Tensor
    loss: torch.Tensor  # static outputs, overwritten by every replay
    logits: torch.Tensor
    grads: list[torch.Tensor | None]


class GraphedForwardBackward:
    """``forward_backward(x, soft) -> (loss, logits)`` with the gradients in ``.grad``: from a
    CUDA graph of that batch shape (captured the first time it is seen), else eagerly."""

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn, bf16: bool = False):
        self.model = model
        self.loss_fn = loss_fn
        self.bf16 = bf16
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.captured: dict[tuple, _Captured] = {}
        self.failure: str | None = None

    def forward_backward(
        self, x: torch.Tensor, soft: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        key = (tuple(x.shape), tuple(soft.shape), x.dtype)
        entry = self.captured.get(key)
        if entry is None and self.failure is None and len(self.captured) < MAX_SHAPES:
            entry = self._capture(x, soft, key)
        if entry is None:
            return self.eager(x, soft)
        entry.x.copy_(x)
        entry.soft.copy_(soft)
        entry.graph.replay()
        for p, g in zip(self.params, entry.grads, strict=True):
            p.grad = g
        return entry.loss, entry.logits

    def eager(self, x: torch.Tensor, soft: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for p in self.params:
            p.grad = None
        loss, logits = self._loss(x, soft, cache_casts=True)
        loss.backward()
        return loss.detach(), logits.detach()

    def _loss(self, x, soft, cache_casts: bool) -> tuple[torch.Tensor, torch.Tensor]:
        # autocast's cache of bf16 weights must stay off inside a capture (its copies would be
        # made once, at capture, and never follow the optimiser's updates)
        with torch.autocast("cuda", torch.bfloat16, enabled=self.bf16, cache_enabled=cache_casts):
            logits = self.model(x)
        return self.loss_fn(logits.float(), soft), logits

    def _capture(self, x: torch.Tensor, soft: torch.Tensor, key: tuple) -> _Captured | None:
        device = x.device
        static_x, static_soft = x.clone(), soft.clone()
        # the warm-up passes must leave no trace: BatchNorm statistics and the dropout stream
        # are put back as they were
        buffers = [b.detach().clone() for b in self.model.buffers()]
        rng = torch.cuda.get_rng_state(device)
        try:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(WARMUP_STEPS):
                    self.eager(static_x, static_soft)
            torch.cuda.current_stream(device).wait_stream(side)
            with torch.no_grad():
                for b, saved in zip(self.model.buffers(), buffers, strict=True):
                    b.copy_(saved)
            torch.cuda.set_rng_state(rng, device)
            for p in self.params:
                p.grad = None
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                loss, logits = self._loss(static_x, static_soft, cache_casts=False)
                loss.backward()
        except RuntimeError as e:
            self.failure = str(e).splitlines()[0]
            warnings.warn(
                f"CUDA graph capture failed ({self.failure}); training steps run eagerly",
                RuntimeWarning,
                stacklevel=3,
            )
            for p in self.params:
                p.grad = None
            return None
        entry = _Captured(
            graph, static_x, static_soft, loss.detach(), logits.detach(),
            [p.grad for p in self.params],
        )  # fmt: skip
        self.captured[key] = entry
        return entry
