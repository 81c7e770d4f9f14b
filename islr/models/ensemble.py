"""An ensemble of classifiers trained alike (same input pipeline, labels, architecture).

The input preprocessing runs once; each member's backbone scores it and the output is the log of
the members' mean probability, so a softmax over it gives the averaged probabilities and the
module drops in wherever a :class:`SignClassifier` does (checkpoints, ONNX export, the engine).
"""

from __future__ import annotations

import math

import torch
from torch import nn

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
        log_probs = torch.stack(
            [torch.log_softmax(b(features), dim=-1) for b in self.backbones]
        )  # (members, B, classes)
        return torch.logsumexp(log_probs, dim=0) - math.log(len(self.backbones))
