"""Flat frame layouts: how other tools lay out one frame's landmarks as a vector of numbers.

A :class:`FrameLayout` says which MediaPipe points a ``(T, K)`` array holds, in which order and
with which values per point (``xy``, ``xyz``, ``xyzv`` with v = visibility, which islr drops).
``interleave="point"`` keeps a point's values together (``x0, y0, x1, y1, ...``);
``"coord"`` stores every x, then every y, ... (``x0, x1, ..., y0, y1, ...``).
``hands="unordered"`` marks files whose two hand blocks are the first and second hand a hand
detector found, not the signer's left and right: the importer sorts them by the pose wrists.

Named frame layouts (see ``docs/formats.md``): ``seed408`` (the seed notebook's cache),
``mp1662`` / ``mp258`` / ``mp126`` (the "MP_Data" vectors of hobby projects), and
``LAYOUT:COORDS`` for any registered layout (``hands_pose75:xy``, ``holistic136:xyz``). A custom
order is a small YAML/JSON file, read by :func:`load_frame_layout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from islr.landmarks.layouts import (
    COMPONENTS,
    Layout,
    LayoutError,
    LayoutPart,
    get_layout,
    layout_names,
)

COORD_NAMES = ("xy", "xyz", "xyzv")


@dataclass(frozen=True)
class FrameBlock:
    """A run of points of one MediaPipe component, each stored as ``coords`` values."""

    component: str
    indices: tuple[int, ...]
    coords: str = "xyz"

    def __post_init__(self) -> None:
        LayoutPart(self.component, self.indices)  # checks the component and the index range
        if self.coords not in COORD_NAMES:
            raise LayoutError(
                f"coords must be one of {', '.join(COORD_NAMES)}, got {self.coords!r}"
            )

    @property
    def width(self) -> int:
        return len(self.indices) * len(self.coords)


@dataclass(frozen=True)
class FrameLayout:
    """The order of values in one frame of a flat ``(T, K)`` landmark array."""

    name: str
    blocks: tuple[FrameBlock, ...]
    interleave: str = "point"
    hands: str = "by_side"
    store_layout: str = "holistic136"  # the cache layout this data goes to by default
    description: str = ""

    def __post_init__(self) -> None:
        if self.interleave not in ("point", "coord"):
            raise LayoutError(f"interleave must be 'point' or 'coord', got {self.interleave!r}")
        if self.hands not in ("by_side", "unordered"):
            raise LayoutError(f"hands must be 'by_side' or 'unordered', got {self.hands!r}")
        if self.interleave == "coord" and len({b.coords for b in self.blocks}) > 1:
            raise LayoutError("interleave 'coord' needs the same coords in every block")
        seen = [b.component for b in self.blocks]
        if len(set(seen)) != len(seen):
            raise LayoutError(f"frame layout {self.name!r} names a component twice: {seen}")
        if self.hands == "unordered":
            pose = next((b for b in self.blocks if b.component == "pose"), None)
            if pose is None or pose.indices != tuple(range(COMPONENTS["pose"])):
                raise LayoutError("hands 'unordered' needs all 33 pose points to sort the hands")

    @property
    def width(self) -> int:
        """Values per frame (K)."""
        return sum(b.width for b in self.blocks)

    @property
    def points(self) -> Layout:
        """The points as an (unregistered) :class:`Layout`, in file order."""
        return Layout(self.name, tuple(LayoutPart(b.component, b.indices) for b in self.blocks))

    def describe(self) -> str:
        parts = ", ".join(f"{b.component} {len(b.indices)}×{b.coords}" for b in self.blocks)
        extra = "" if self.interleave == "point" else ", coordinate-major"
        return f"{self.name} ({self.width} values: {parts}{extra})"


def _all(component: str, coords: str) -> FrameBlock:
    return FrameBlock(component, tuple(range(COMPONENTS[component])), coords)


# The seed notebook's face points: Face Landmarker indices 0, 9, 18, ..., 441.
SEED_FACE_POINTS = tuple(range(0, 468, 9))[:50]

NAMED_FRAME_LAYOUTS: dict[str, FrameLayout] = {
    layout.name: layout
    for layout in (
        FrameLayout(
            "seed408",
            (
                _all("pose", "xyzv"),
                _all("left_hand", "xyz"),
                _all("right_hand", "xyz"),
                FrameBlock("face", SEED_FACE_POINTS, "xyz"),
            ),
            hands="unordered",
            description="the seed notebook's isl_cache_123: pose 33×(x,y,z,visibility), the "
            "hand detector's first and second hand 21×3 each, face points 0,9,...,441 ×3",
        ),
        FrameLayout(
            "mp1662",
            (
                _all("pose", "xyzv"),
                _all("face", "xyz"),
                _all("left_hand", "xyz"),
                _all("right_hand", "xyz"),
            ),
            description="MP_Data: MediaPipe Holistic pose 33×4, face 468×3, left and right hand",
        ),
        FrameLayout(
            "mp258",
            (_all("pose", "xyzv"), _all("left_hand", "xyz"), _all("right_hand", "xyz")),
            description="MP_Data without the face: pose 33×4, left hand 21×3, right hand 21×3",
        ),
        FrameLayout(
            "mp126",
            (_all("left_hand", "xyz"), _all("right_hand", "xyz")),
            description="MP_Data hands only: left hand 21×3, right hand 21×3",
        ),
    )
}
MPDATA_BY_WIDTH = {NAMED_FRAME_LAYOUTS[n].width: n for n in ("mp1662", "mp258", "mp126")}


def from_layout(layout: str | Layout, coords: str, interleave: str = "point") -> FrameLayout:
    """A registered layout's points with ``coords`` per point (``hands_pose75`` + ``xy``)."""
    layout = get_layout(layout)
    blocks = tuple(FrameBlock(p.component, p.indices, coords) for p in layout.parts)
    return FrameLayout(
        f"{layout.name}:{coords}",
        blocks,
        interleave=interleave,
        store_layout=layout.name,
        description=f"{layout.name} points, {coords} per point",
    )


def get_frame_layout(spec: str | FrameLayout, interleave: str | None = None) -> FrameLayout:
    """A frame layout from a name (``seed408``, ``mp258``), ``LAYOUT:COORDS``
    (``hands_pose75:xy``) or the path of a layout file; ``interleave`` overrides its order."""
    if isinstance(spec, FrameLayout):
        found = spec
    elif spec in NAMED_FRAME_LAYOUTS:
        found = NAMED_FRAME_LAYOUTS[spec]
    elif ":" in spec and not Path(spec).is_file():
        name, coords = spec.split(":", 1)
        if coords not in COORD_NAMES:
            raise LayoutError(f"{spec!r}: coords must be one of {', '.join(COORD_NAMES)}")
        found = from_layout(name, coords)
    elif Path(spec).is_file():
        found = load_frame_layout(spec)
    else:
        named = ", ".join(NAMED_FRAME_LAYOUTS)
        raise LayoutError(
            f"unknown frame layout {spec!r}: give one of {named}, LAYOUT:COORDS with LAYOUT one "
            f"of {', '.join(layout_names())} and COORDS one of {', '.join(COORD_NAMES)} "
            "(e.g. hands_pose75:xy), or a layout file (docs/formats.md)"
        )
    if interleave and interleave != found.interleave:
        from dataclasses import replace

        found = replace(found, interleave=interleave)
    return found


def load_frame_layout(path: str | Path) -> FrameLayout:
    """A frame layout file (YAML or JSON)::

    name: my_points
    interleave: point        # or coord
    hands: by_side           # or unordered (first/second detected hand)
    store_layout: holistic136
    blocks:
      - {component: pose, indices: all, coords: xyzv}
      - {component: left_hand, indices: all, coords: xyz}
      - {component: face, indices: [0, 13, 14], coords: xyz}
    """
    import yaml

    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise LayoutError(f"{path}: not a readable layout file ({e})") from None
    if not isinstance(d, dict) or not isinstance(d.get("blocks"), list) or not d["blocks"]:
        raise LayoutError(f"{path}: a layout file needs a non-empty 'blocks' list")
    try:
        blocks = []
        for b in d["blocks"]:
            component = str(b["component"])
            if component not in COMPONENTS:
                raise LayoutError(
                    f"unknown component {component!r}; one of {', '.join(COMPONENTS)}"
                )
            raw = b.get("indices", "all")
            indices = (
                tuple(range(COMPONENTS[component])) if raw == "all" else tuple(int(i) for i in raw)
            )
            blocks.append(FrameBlock(component, indices, str(b.get("coords", "xyz"))))
        layout = FrameLayout(
            str(d.get("name") or path.stem),
            tuple(blocks),
            interleave=str(d.get("interleave", "point")),
            hands=str(d.get("hands", "by_side")),
            store_layout=str(d.get("store_layout", "holistic136")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise LayoutError(f"{path}: {e}") from None
    get_layout(layout.store_layout)
    return layout


def row_map(source: Layout, target: Layout) -> np.ndarray:
    """For each point of ``target``, its row in ``source`` data (-1 where source lacks it)."""
    rows = np.full(target.n_points, -1, dtype=np.int64)
    for part in target.parts:
        if not source.has(part.component):
            continue
        src_part = next(p for p in source.parts if p.component == part.component)
        where = {mp: i for i, mp in enumerate(src_part.indices)}
        src_off, dst_off = source.slice(part.component).start, target.slice(part.component).start
        for j, mp in enumerate(part.indices):
            if mp in where:
                rows[dst_off + j] = src_off + where[mp]
    return rows


def gather_points(data: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``(T, N_src, C)`` -> ``(T, len(rows), C)`` float32; NaN where ``rows`` is -1."""
    out = np.full((data.shape[0], len(rows), data.shape[2]), np.nan, dtype=np.float32)
    have = rows >= 0
    out[:, have] = data[:, rows[have]]
    return out


def unflatten(values: np.ndarray, frame_layout: FrameLayout) -> np.ndarray:
    """``(T, K)`` -> ``(T, N, 3)`` float32 in the frame layout's point order (x, y, z; z NaN when
    the file has none). A point whose stored values are all exactly 0 is not detected (NaN)."""
    t = values.shape[0]
    points = frame_layout.points
    out = np.full((t, points.n_points, 3), np.nan, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    if frame_layout.interleave == "coord":
        coords = frame_layout.blocks[0].coords
        per_coord = values.reshape(t, len(coords), points.n_points).transpose(0, 2, 1)
        blocks = [(0, points.n_points, coords, per_coord)]
    else:
        blocks, col, row = [], 0, 0
        for b in frame_layout.blocks:
            n = len(b.indices)
            blocks.append((row, n, b.coords, values[:, col : col + b.width].reshape(t, n, -1)))
            col += b.width
            row += n
    for row, n, coords, block in blocks:
        kept = [i for i, c in enumerate(coords) if c in "xyz"]
        block = block[..., kept]
        missing = (block == 0).all(axis=-1)
        out[:, row : row + n, : len(kept)] = block
        out[:, row : row + n][missing] = np.nan
    return out


def flatten(data: np.ndarray, frame_layout: FrameLayout) -> np.ndarray:
    """The inverse of :func:`unflatten` for data in the frame layout's point order: NaN points
    become 0 (as the tools that write these files store a missing part); visibility is 1 where a
    point is present, 0 where not."""
    t = data.shape[0]
    present = ~np.isnan(data[..., :2]).any(axis=-1)
    filled = np.where(np.isnan(data), 0.0, data).astype(np.float32)
    pieces, row = [], 0
    for b in frame_layout.blocks:
        n = len(b.indices)
        block = filled[:, row : row + n]
        columns = []
        for c in b.coords:
            if c == "v":
                columns.append(present[:, row : row + n].astype(np.float32))
            else:
                k = "xyz".index(c)
                columns.append(
                    block[..., k] if k < block.shape[2] else np.zeros((t, n), np.float32)
                )
        pieces.append(np.stack(columns, axis=-1))
        row += n
    if frame_layout.interleave == "coord":
        stacked = np.concatenate(pieces, axis=1)  # (T, N, C)
        return stacked.transpose(0, 2, 1).reshape(t, -1)
    return np.concatenate([p.reshape(t, -1) for p in pieces], axis=1)
