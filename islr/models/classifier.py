"""A sign classifier = the input preprocessing + a registered backbone, as one module.

``SignClassifier`` takes raw landmarks ``(B, seq_len, n_points, n_coords)`` (NaN = missing) and
returns logits, so a checkpoint or an exported ONNX file needs nothing else to predict.
``embed`` gives the sign embedding: the backbone's pooled features, L2-normalised, which
nearest-prototype matching uses for signs the model was not trained on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from islr.features.config import FeatureConfig
from islr.features.preprocess import LandmarkPreprocessor
from islr.landmarks import Layout, get_layout
from islr.models.registry import create_model


@dataclass
class ModelConfig:
    """Which backbone and its keyword arguments (see each model's constructor)."""

    name: str = "conv_transformer"
    kwargs: dict = field(default_factory=dict)


class SignClassifier(nn.Module):
    def __init__(
        self,
        model: ModelConfig,
        features: FeatureConfig,
        layout: str | Layout,
        n_coords: int,
        n_classes: int,
    ):
        super().__init__()
        layout = get_layout(layout)  # a registered name, or a Layout carried by a checkpoint
        self.layout = layout.name
        self.n_points = layout.n_points
        self.n_coords = n_coords
        self.seq_len = features.seq_len
        if features.coords == "xyz" and n_coords < 3:
            raise ValueError("features.coords is 'xyz' but the data has only x, y")
        self.preprocess = LandmarkPreprocessor(layout, features)
        self.backbone = create_model(
            model.name, self.preprocess.n_features, n_classes, features.seq_len, **model.kwargs
        )

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.preprocess(landmarks))

    def embed(self, landmarks: torch.Tensor) -> torch.Tensor:
        """The sign embedding ``(B, D)``, unit length."""
        return self.logits_and_embedding(landmarks)[1]

    def logits_and_embedding(self, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` and ``embed`` in one pass."""
        logits, pooled = self.backbone.logits_and_embedding(self.preprocess(landmarks))
        return logits, F.normalize(pooled, dim=-1)


class LogitsAndEmbedding(nn.Module):
    """A classifier's ``logits_and_embedding`` as its forward (what the ONNX export traces)."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classifier.logits_and_embedding(landmarks)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
