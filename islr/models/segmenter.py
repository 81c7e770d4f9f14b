"""The sign segmenter: landmark frames -> per-frame B/I/O tag probabilities (a sign Begins here,
is In progress, or the frame is Outside any sign).

After the sign-language-processing group's ``segmentation`` (pose -> BIO tiers) and the GISLR
winners' 1-D depthwise temporal convolutions: per-frame features, a linear stem, a stack of
*causal* dilated depthwise-separable convolution blocks, a per-frame head. The output at frame
``i`` tags frame ``i - lookahead``: each tag sees ``lookahead`` frames of the future (the end of a
sign shows in the hands' drop), no more, so a sign's event comes ``lookahead`` frames after its
end plus the decoder's wait. Causal convolutions make the tag of a frame depend only on the last
:attr:`SegmenterConfig.window` frames, so a stream tagged a window at a time (live) and tagged
whole (training, benchmarks) give the same tags.

Features per frame (from :mod:`islr.features.preprocess`, the classifier's own builders): the
points centred on that frame's shoulders and divided by its shoulder width (the classifier
averages these over the clip; a live stream has no clip), hand shapes relative to the wrist,
first and second differences (motion), presence flags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from islr.features.config import UPPER_BODY_POSE, FeatureConfig
from islr.features.preprocess import EPS, LandmarkPreprocessor
from islr.landmarks import get_layout
from islr.landmarks.layouts import POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER

N_TAGS = 3  # O, B, I (islr.datasets.streams.TAGS)
NO_POSE_CENTRE = (0.5, 0.3)  # image middle (x, y in width units) for frames without shoulders
NO_POSE_SCALE = 0.25  # a typical shoulder width in image widths


@dataclass
class SegmenterConfig:
    """Architecture and input of the segmenter (saved in its checkpoint and ONNX metadata)."""

    layout: str = "hands_pose75"
    n_coords: int = 2
    points: dict[str, list[int] | str] = field(
        default_factory=lambda: {
            "left_hand": "all",
            "right_hand": "all",
            "pose": list(UPPER_BODY_POSE),
        }
    )
    channels: int = 64
    kernel: int = 5
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    lookahead: int = 6  # frames of the future each tag sees
    dropout: float = 0.1

    @property
    def receptive_field(self) -> int:
        return 1 + (self.kernel - 1) * sum(self.dilations)

    @property
    def window(self) -> int:
        """Frames a live tagger keeps: the receptive field plus the 2 frames the motion
        features (first and second differences) reach back."""
        return self.receptive_field + 2

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SegmenterConfig:
        d = dict(d)
        if "dilations" in d:
            d["dilations"] = tuple(d["dilations"])
        return cls(**d)


class PerFrameNormalize(nn.Module):
    """Centre each frame on its shoulders' midpoint and divide by its shoulder width (NaN kept)."""

    def __init__(self, layout: str, n_coords: int):
        super().__init__()
        lay = get_layout(layout)
        self.n_coords = n_coords
        self.shoulders = None
        if lay.has("pose"):
            self.shoulders = (
                lay.index("pose", POSE_LEFT_SHOULDER),
                lay.index("pose", POSE_RIGHT_SHOULDER),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, N, C)
        xy = x[..., :2]
        centre = torch.tensor(NO_POSE_CENTRE, dtype=x.dtype, device=x.device).expand_as(
            xy[:, :, :1]
        )
        scale = torch.full_like(xy[:, :, :1, :1], NO_POSE_SCALE)
        if self.shoulders is not None:
            left = xy[:, :, self.shoulders[0] : self.shoulders[0] + 1]
            right = xy[:, :, self.shoulders[1] : self.shoulders[1] + 1]
            ok = ~(
                torch.isnan(left).any(-1, keepdim=True) | torch.isnan(right).any(-1, keepdim=True)
            )
            width = (left - right).norm(dim=-1, keepdim=True)
            ok = ok & (width > EPS)
            centre = torch.where(ok, (left + right) / 2, centre)
            scale = torch.where(ok, width, scale)
        out = (xy - centre) / scale
        if x.shape[-1] > 2:  # depth: relative already, scale only
            out = torch.cat([out, x[..., 2:] / scale], dim=-1)
        return out


class CausalBlock(nn.Module):
    """Pre-norm residual block: causal dilated depthwise conv, then a pointwise MLP."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.norm = nn.LayerNorm(channels)
        self.depthwise = nn.Conv1d(channels, channels, kernel, dilation=dilation, groups=channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, 2 * channels),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(2 * channels, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        h = self.norm(x).transpose(1, 2)
        h = self.depthwise(F.pad(h, (self.pad, 0))).transpose(1, 2)
        return x + self.mlp(h)


class SignSegmenter(nn.Module):
    """``(B, T, N, C)`` landmarks (NaN = not detected) -> ``(B, T, 3)`` O/B/I logits; the row
    at ``i`` tags frame ``i - lookahead``."""

    def __init__(self, config: SegmenterConfig):
        super().__init__()
        self.config = config
        self.normalize = PerFrameNormalize(config.layout, config.n_coords)
        features = FeatureConfig(
            seq_len=4,
            coords="xy" if config.n_coords == 2 else "xyz",
            points=config.points,
            normalize=False,
        )
        self.features = LandmarkPreprocessor(config.layout, features)
        self.stem = nn.Sequential(
            nn.Linear(self.features.n_features, config.channels),
            nn.GELU(),
        )
        self.blocks = nn.ModuleList(
            CausalBlock(config.channels, config.kernel, d, config.dropout) for d in config.dilations
        )
        self.head = nn.Sequential(nn.LayerNorm(config.channels), nn.Linear(config.channels, N_TAGS))

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        x = self.normalize(landmarks[..., : self.config.n_coords])
        h = self.stem(self.features(x))
        for block in self.blocks:
            h = block(h)
        return self.head(h)


class SegmenterProbs(nn.Module):
    """The exported graph: softmax of :class:`SignSegmenter`'s logits."""

    def __init__(self, model: SignSegmenter):
        super().__init__()
        self.model = model

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(landmarks), dim=-1)


def shift_tags(tags: torch.Tensor, lookahead: int, fill: int = 0) -> torch.Tensor:
    """Targets aligned with the outputs: row ``i`` holds the tag of frame ``i - lookahead``."""
    if lookahead == 0:
        return tags
    pad = torch.full_like(tags[..., :lookahead], fill)
    return torch.cat([pad, tags[..., :-lookahead]], dim=-1)
