"""An ensemble of classifiers trained alike (same input pipeline, labels, architecture).

The input preprocessing runs once; each member's backbone scores it and the output is the log of
the members' mean probability, so a softmax over it gives the averaged probabilities and the
module drops in wherever a :class:`SignClassifier` does (checkpoints, ONNX export, the engine).
Its embedding is the concat of the members' unit embeddings divided by sqrt(members): unit length,
and its dot product with a prototype built alike is the mean of the members' cosines.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from islr.models.classifier import SignClassifier


class SignEnsemble(nn.Module):
    def __init__(self, members: list[SignClassifier]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0]
        self.layout, self.n_points, self.n_coords = first.layout, first.n_points, first.n_coords
        self.seq_len = first.seq_len
        self.preprocess = first.preprocess  # no weights: identical for every member
        self.backbones = nn.ModuleList(m.backbone for m in members)

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        features = self.preprocess(landmarks)
        return self._mean_log_probs([b(features) for b in self.backbones])

    def embed(self, landmarks: torch.Tensor) -> torch.Tensor:
        """The sign embedding ``(B, members * D)``, unit length."""
        return self.logits_and_embedding(landmarks)[1]

    def logits_and_embedding(self, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` and ``embed`` in one pass."""
        features = self.preprocess(landmarks)
        outputs = [b.logits_and_embedding(features) for b in self.backbones]
        logits = self._mean_log_probs([logits for logits, _ in outputs])
        scale = 1 / math.sqrt(len(self.backbones))
        return logits, torch.cat([F.normalize(e, dim=-1) * scale for _, e in outputs], dim=-1)

    def _mean_log_probs(self, member_logits: list[torch.Tensor]) -> torch.Tensor:
        log_probs = torch.stack([torch.log_softmax(x, dim=-1) for x in member_logits])
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.backbones))
