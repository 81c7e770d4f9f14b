"""The seed notebook's Transformer, kept to reproduce it: 384 wide, 8 heads, 4 layers, dropout 0.4.

Input projection to 384, a learned position embedding, ``nn.TransformerEncoder`` (feed-forward
4 x 384, post-norm as in PyTorch's default), mean over time, linear classifier. With the seed's
408 inputs (holistic136 x, y, z) and 123 classes this is 7.3M parameters (the seed reports 7.35M).
"""

from __future__ import annotations

import torch
from torch import nn

from islr.models.registry import register_model


@register_model("seed_transformer", test_kwargs={"width": 32, "heads": 4, "layers": 1})
class SeedTransformer(nn.Module):
    def __init__(
        self,
        n_features: int,
        n_classes: int,
        seq_len: int,
        width: int = 384,
        heads: int = 8,
        layers: int = 4,
        ff_mult: int = 4,
        dropout: float = 0.4,
    ):
        super().__init__()
        self.embed = nn.Linear(n_features, width)
        self.position = nn.Parameter(torch.zeros(1, seq_len, width))
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, ff_mult * width, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, n_classes)

    def logits_and_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the sign embedding (the time-pooled features that feed the head)."""
        x = self.embed(x) + self.position[:, : x.shape[1]]
        pooled = self.encoder(x).mean(dim=1)
        return self.head(self.dropout(pooled)), pooled

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_and_embedding(x)[0]
