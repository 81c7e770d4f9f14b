"""Raw landmarks -> model features, in torch, inside the model (so ONNX export carries it).

Input ``(B, L, N, C)`` float32 in the model's layout, NaN = not detected (see
:func:`islr.features.prepare_model_input`). Output ``(B, L, F)`` with no NaN:

- the selected points' coordinates, centred on the shoulders' midpoint and divided by the shoulder
  width (both averaged over the sequence; falls back to all points when there is no pose);
- hand points relative to their wrist, divided by the wrist-to-middle-knuckle length (per frame:
  hand shape independent of distance to the camera); with ``hand_upright`` also that shape turned
  so that the wrist-to-knuckle line points up (independent of how the hand is held);
- first and second differences over time (motion);
- per-frame presence flags per component;
every undetected value is 0 (the presence flags tell the model which zeros are missing).
"""

from __future__ import annotations

import torch
from torch import nn

from islr.features.config import FeatureConfig
from islr.landmarks import get_layout
from islr.landmarks.layouts import (
    HAND_WRIST,
    POSE_LEFT_SHOULDER,
    POSE_RIGHT_SHOULDER,
    Layout,
)

HAND_MIDDLE_MCP = 9
EPS = 1e-4


def selected_rows(layout: Layout, points: dict[str, list[int] | str]) -> dict[str, list[int]]:
    """Rows of ``layout`` for each component in ``points`` (``"all"`` = everything stored)."""
    rows: dict[str, list[int]] = {}
    for component, indices in points.items():
        if not layout.has(component):
            raise ValueError(
                f"the features use {component!r}, which layout {layout.name!r} does not store "
                f"(it has {', '.join(layout.components)}); change `features.points`"
            )
        part = next(p for p in layout.parts if p.component == component)
        wanted = part.indices if indices == "all" else indices
        rows[component] = [layout.index(component, i) for i in wanted]
    return rows


def masked_mean(x: torch.Tensor, valid: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Mean of ``x`` over ``dims`` where ``valid`` (broadcast); 0 where nothing is valid."""
    w = valid.to(x.dtype)
    total = (torch.where(valid, x, torch.zeros_like(x)) * w).sum(dim=dims, keepdim=True)
    count = w.sum(dim=dims, keepdim=True)
    return total / count.clamp(min=1.0)


class LandmarkPreprocessor(nn.Module):
    """Normalisation + feature building; see the module docstring."""

    def __init__(self, layout: str | Layout, cfg: FeatureConfig):
        super().__init__()
        layout = get_layout(layout)
        self.cfg = cfg
        self.n_coords_used = 2 if cfg.coords == "xy" else 3
        rows = selected_rows(layout, cfg.points)
        self.components = list(rows)
        self.register_buffer("rows", torch.tensor([r for c in rows for r in rows[c]]))
        sizes = [len(rows[c]) for c in self.components]
        self.component_sizes = sizes
        self.shoulders: tuple[int, int] | None = None
        if layout.has("pose"):
            self.shoulders = (
                layout.index("pose", POSE_LEFT_SHOULDER),
                layout.index("pose", POSE_RIGHT_SHOULDER),
            )
        # hands present in the selection with their wrist and middle knuckle kept
        self.hands: list[tuple[int, int, int, int]] = []  # (start, size, wrist, mcp) in selection
        start = 0
        for component, size in zip(self.components, sizes, strict=True):
            if component.endswith("_hand") and cfg.hand_relative:
                part_rows = rows[component]
                wrist = layout.index(component, HAND_WRIST)
                mcp = layout.index(component, HAND_MIDDLE_MCP)
                if wrist in part_rows and mcp in part_rows:
                    self.hands.append((start, size, part_rows.index(wrist), part_rows.index(mcp)))
            start += size
        self.n_points = int(self.rows.numel())

    @property
    def n_features(self) -> int:
        c = self.n_coords_used
        per_hand = 2 if self.cfg.hand_upright else 1
        base = self.n_points * c + per_hand * sum(size * c for _, size, _, _ in self.hands)
        n = base * (3 if self.cfg.motion else 1)
        return n + (len(self.components) if self.cfg.presence else 0)

    def forward(self, landmarks: torch.Tensor) -> torch.Tensor:
        c = self.n_coords_used
        x_all = landmarks[..., :c]
        valid_all = ~torch.isnan(x_all).any(dim=-1, keepdim=True)  # (B, L, N, 1)
        x_all = torch.where(valid_all, x_all, torch.zeros_like(x_all))
        x = x_all.index_select(2, self.rows)
        valid = valid_all.index_select(2, self.rows)

        if self.cfg.normalize:
            centre, scale = self._centre_and_scale(x_all, valid_all, x, valid)
            x = torch.where(valid, (x - centre) / scale, torch.zeros_like(x))

        feats, feat_valid = [x], [valid]
        for start, size, wrist, mcp in self.hands:
            hand = x[:, :, start : start + size]
            hand_valid = valid[:, :, start : start + size]
            w = hand[:, :, wrist : wrist + 1]
            length = (hand[:, :, mcp : mcp + 1, :2] - w[..., :2]).norm(dim=-1, keepdim=True)
            rel = (hand - w) / length.clamp(min=EPS)
            feats.append(torch.where(hand_valid, rel, torch.zeros_like(rel)))
            feat_valid.append(hand_valid)
            if self.cfg.hand_upright:
                upright = _upright(rel, rel[:, :, mcp : mcp + 1, :2])
                feats.append(torch.where(hand_valid, upright, torch.zeros_like(upright)))
                feat_valid.append(hand_valid)
        x = torch.cat(feats, dim=2)
        v = torch.cat(feat_valid, dim=2)
        b, length_t = x.shape[0], x.shape[1]
        parts = [x.reshape(b, length_t, -1)]
        if self.cfg.motion:
            d1, v1 = _diff(x, v)
            d2, _ = _diff(d1, v1)
            parts += [d1.reshape(b, length_t, -1), d2.reshape(b, length_t, -1)]
        if self.cfg.presence:
            flags = []
            start = 0
            for size in self.component_sizes:
                flags.append(valid[:, :, start : start + size, 0].any(dim=2, keepdim=True))
                start += size
            parts.append(torch.cat(flags, dim=2).to(x.dtype))
        return torch.cat(parts, dim=2)

    def _centre_and_scale(self, x_all, valid_all, x, valid):
        # fallback: all selected points over the whole sequence
        centre = masked_mean(x, valid, dims=(1, 2))  # (B, 1, 1, C)
        spread = masked_mean((x - centre).pow(2).sum(-1, keepdim=True), valid, dims=(1, 2))
        scale = 2.0 * spread.sqrt()
        if self.shoulders is not None:
            left_i, right_i = self.shoulders
            left, right = x_all[:, :, left_i : left_i + 1], x_all[:, :, right_i : right_i + 1]
            both = valid_all[:, :, left_i : left_i + 1] & valid_all[:, :, right_i : right_i + 1]
            has = both.any(dim=1, keepdim=True)  # (B, 1, 1, 1)
            sh_centre = masked_mean((left + right) / 2, both, dims=(1, 2))
            width = (left[..., :2] - right[..., :2]).norm(dim=-1, keepdim=True)
            sh_scale = masked_mean(width, both, dims=(1, 2))
            centre = torch.where(has, sh_centre, centre)
            scale = torch.where(has, sh_scale, scale)
        if centre.shape[-1] == 3:  # depth is already relative (MediaPipe): do not shift it
            # (no tensor made from a list here: a CUDA graph cannot capture that copy)
            centre = torch.cat([centre[..., :2], torch.zeros_like(centre[..., 2:])], dim=-1)
        return centre, scale.clamp(min=EPS)


def _upright(rel: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Wrist-relative hand points ``(B, L, n, C)`` in the frame of the hand's own axis (the unit
    wrist-to-knuckle vector ``(B, L, 1, 2)``): x across it, y along it pointing up (image y runs
    down, so an upright hand's knuckles have y < 0); z, if any, unchanged."""
    norm = axis.norm(dim=-1, keepdim=True).clamp(min=EPS)
    ux, uy = axis[..., :1] / norm, axis[..., 1:2] / norm
    x, y = rel[..., :1], rel[..., 1:2]
    across = x * -uy + y * ux
    along = -(x * ux + y * uy)
    return torch.cat([across, along, rel[..., 2:]], dim=-1)


def _diff(x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Difference with the previous frame (0 at t=0 or where either frame is missing)."""
    prev = torch.cat([x[:, :1], x[:, :-1]], dim=1)
    prev_valid = torch.cat([torch.zeros_like(valid[:, :1]), valid[:, :-1]], dim=1)
    both = valid & prev_valid
    return torch.where(both, x - prev, torch.zeros_like(x)), both
