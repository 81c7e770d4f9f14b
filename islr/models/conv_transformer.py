"""The default model: depthwise 1D convolutions + Transformer blocks, small and fast on CPU.

In the spirit of the Kaggle GISLR (2023) winners: local motion patterns are cheap to learn with
depthwise temporal convolutions, and a few attention blocks relate distant frames. Each stage is
``conv_blocks`` convolution blocks followed by one Transformer block; the head pools over time.

    features (B, L, F) -> Linear -> [ConvBlock x k -> TransformerBlock] x stages -> pool -> logits
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from islr.models.registry import register_model


class EfficientChannelAttention(nn.Module):
    """Per-channel gates from a small 1D conv over the time-pooled channels (ECA-Net)."""

    def __init__(self, kernel_size: int = 5):
        super().__init__()
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, L)
        gate = self.conv(x.mean(dim=2, keepdim=True).transpose(1, 2)).transpose(1, 2)
        return x * torch.sigmoid(gate)


class ConvBlock(nn.Module):
    """Pre-norm residual: expand, depthwise temporal conv, channel attention, project back."""

    def __init__(self, dim: int, kernel_size: int = 17, expand: int = 2, dropout: float = 0.2):
        super().__init__()
        hidden = dim * expand
        self.norm = nn.LayerNorm(dim)
        self.expand = nn.Linear(dim, hidden)
        self.depthwise = nn.Conv1d(
            hidden, hidden, kernel_size, padding=kernel_size // 2, groups=hidden
        )
        self.bn = nn.BatchNorm1d(hidden)
        self.eca = EfficientChannelAttention()
        self.project = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D)
        y = F.silu(self.expand(self.norm(x))).transpose(1, 2)
        y = self.eca(F.silu(self.bn(self.depthwise(y)))).transpose(1, 2)
        return x + self.dropout(self.project(y))


class SelfAttention(nn.Module):
    """Multi-head self-attention written out (exports to plain ONNX ops)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.heads)
        attn = self.dropout(attn.softmax(dim=-1))
        return self.out((attn @ v).transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int = 4, expand: int = 2, dropout: float = 0.2):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, dim * expand),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Linear(dim * expand, dim),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.norm1(x)))
        return x + self.dropout(self.ff(self.norm2(x)))


@register_model(
    "conv_transformer", test_kwargs={"dim": 32, "stages": 1, "conv_blocks": 1, "heads": 4}
)
class ConvTransformer(nn.Module):
    def __init__(
        self,
        n_features: int,
        n_classes: int,
        dim: int = 192,
        stages: int = 2,
        conv_blocks: int = 3,
        kernel_size: int = 17,
        heads: int = 4,
        dropout: float = 0.2,
        head_dropout: float = 0.4,
    ):
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(n_features, dim, bias=False), nn.LayerNorm(dim))
        blocks: list[nn.Module] = []
        for _ in range(stages):
            blocks += [ConvBlock(dim, kernel_size, dropout=dropout) for _ in range(conv_blocks)]
            blocks.append(TransformerBlock(dim, heads, dropout=dropout))
        self.blocks = nn.Sequential(*blocks)
        self.embedding_block = conv_blocks  # the last block of the first stage
        self.norm = nn.LayerNorm(dim)
        self.head_dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(2 * dim, n_classes)

    def logits_and_embedding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the sign embedding: the output of the first stage pooled like the head's
        input (mean and max over time). The first stage's features carry over to signs the
        model never saw better than the last one's, which the classification loss shapes to
        the training signs alone (bench/bench_fewshot.py measures it)."""
        x = self.stem(x)
        embedding = None
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i == self.embedding_block:
                embedding = _pool(x)
        return self.head(self.head_dropout(_pool(self.norm(x)))), embedding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_dropout(_pool(self.norm(self.blocks(self.stem(x))))))


def _pool(x: torch.Tensor) -> torch.Tensor:
    """(B, L, D) -> (B, 2D): concat of mean and max over time."""
    return torch.cat([x.mean(dim=1), x.amax(dim=1)], dim=1)
