"""Named landmark layouts: which MediaPipe points are stored, and in which order.

A layout is a list of *parts*; each part is a MediaPipe component (``pose``, ``face``,
``left_hand``, ``right_hand``) and the indices taken from it. Adding a layout is one call to
:func:`register_layout`.

Left and right are the *signer's* left and right, as MediaPipe Holistic reports them
(``left_hand_landmarks`` follows pose wrist 15, the signer's left wrist).
"""

from __future__ import annotations

from dataclasses import dataclass, field

POSE_POINTS = 33
HAND_POINTS = 21
FACE_MESH_POINTS = 468

# MediaPipe Face Mesh indices kept for signing (61 points): mouthing and facial grammar live in
# the lips, eyebrows and eyes; the nose anchors the face.
FACE_LIPS = [
    # outer lip contour, upper then lower
    61, 185, 40, 39, 37, 0, 267, 269, 270, 409,
    291, 146, 91, 181, 84, 17, 314, 405, 321, 375,
    # inner lip contour, upper then lower
    78, 191, 80, 81, 82, 13, 312, 311, 310, 415,
    95, 88, 178, 87, 14, 317, 402, 318, 324, 308,
]  # fmt: skip
FACE_RIGHT_EYEBROW = [70, 63, 105, 66, 107]
FACE_LEFT_EYEBROW = [300, 293, 334, 296, 336]
FACE_RIGHT_EYE = [33, 133, 159, 145]  # outer corner, inner corner, upper lid, lower lid
FACE_LEFT_EYE = [263, 362, 386, 374]
FACE_NOSE = [1, 4, 168]  # tip, below tip, bridge between the eyes
FACE_SIGNING_61 = (
    FACE_LIPS + FACE_RIGHT_EYEBROW + FACE_LEFT_EYEBROW + FACE_RIGHT_EYE + FACE_LEFT_EYE + FACE_NOSE
)

# MediaPipe Pose indices used by the input pipeline (signer's left/right).
POSE_NOSE = 0
POSE_LEFT_SHOULDER, POSE_RIGHT_SHOULDER = 11, 12
POSE_LEFT_ELBOW, POSE_RIGHT_ELBOW = 13, 14
POSE_LEFT_WRIST, POSE_RIGHT_WRIST = 15, 16
HAND_WRIST = 0

COMPONENTS = {
    "pose": POSE_POINTS,
    "face": FACE_MESH_POINTS,
    "left_hand": HAND_POINTS,
    "right_hand": HAND_POINTS,
}


@dataclass(frozen=True)
class LayoutPart:
    """A contiguous block of a layout: ``indices`` taken from MediaPipe ``component``."""

    component: str
    indices: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.component not in COMPONENTS:
            raise ValueError(f"unknown MediaPipe component {self.component!r}")
        limit = COMPONENTS[self.component]
        bad = [i for i in self.indices if not 0 <= i < limit]
        if bad:
            raise ValueError(f"{self.component} indices out of range 0..{limit - 1}: {bad}")


@dataclass(frozen=True)
class Layout:
    """Which points a landmark sequence holds, in order."""

    name: str
    parts: tuple[LayoutPart, ...]
    description: str = ""
    _offsets: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        offset = 0
        for part in self.parts:
            if part.component in self._offsets:
                raise ValueError(f"layout {self.name!r} uses component {part.component!r} twice")
            self._offsets[part.component] = offset
            offset += len(part.indices)

    @property
    def n_points(self) -> int:
        return sum(len(p.indices) for p in self.parts)

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(p.component for p in self.parts)

    def has(self, component: str) -> bool:
        return component in self._offsets

    def slice(self, component: str) -> slice:
        """Rows of the sequence that hold ``component``."""
        if component not in self._offsets:
            raise LayoutError(f"layout {self.name!r} has no {component!r} (has {self.components})")
        start = self._offsets[component]
        n = len(next(p for p in self.parts if p.component == component).indices)
        return slice(start, start + n)

    def index(self, component: str, mediapipe_index: int) -> int:
        """Row of MediaPipe point ``mediapipe_index`` of ``component`` in this layout."""
        part = next((p for p in self.parts if p.component == component), None)
        if part is None or mediapipe_index not in part.indices:
            raise LayoutError(f"layout {self.name!r} does not store {component}[{mediapipe_index}]")
        return self._offsets[component] + part.indices.index(mediapipe_index)

    def point_names(self) -> list[str]:
        return [f"{p.component}:{i}" for p in self.parts for i in p.indices]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "parts": [{"component": p.component, "indices": list(p.indices)} for p in self.parts],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Layout:
        """The inverse of :meth:`to_dict` (e.g. a model's layout from its metadata); not
        registered, so it cannot clash with a registered layout of the same name."""
        try:
            parts = tuple(
                LayoutPart(p["component"], tuple(int(i) for i in p["indices"])) for p in d["parts"]
            )
            return cls(str(d["name"]), parts)
        except (KeyError, TypeError, ValueError) as e:
            raise LayoutError(f"not a layout description ({e})") from e


def _all(component: str) -> LayoutPart:
    return LayoutPart(component, tuple(range(COMPONENTS[component])))


_LAYOUTS: dict[str, Layout] = {}


class LayoutError(ValueError):
    """An unknown layout name, or a point or component that a layout does not store."""


def register_layout(layout: Layout) -> Layout:
    """Make ``layout`` available by name (idempotent for an identical layout)."""
    existing = _LAYOUTS.get(layout.name)
    if existing is not None and existing.parts != layout.parts:
        raise LayoutError(f"a different layout named {layout.name!r} is already registered")
    _LAYOUTS[layout.name] = layout
    return layout


def get_layout(name: str | Layout) -> Layout:
    """The registered layout ``name``; :class:`LayoutError` names the known ones otherwise.

    A :class:`Layout` object is returned as it is, so functions that take a layout accept
    either a registered name or a layout that was never registered (e.g. an ONNX model's).
    """
    if isinstance(name, Layout):
        return name
    try:
        return _LAYOUTS[name]
    except KeyError:
        known = ", ".join(sorted(_LAYOUTS))
        raise LayoutError(f"unknown layout {name!r}; known: {known}") from None


def layout_names() -> list[str]:
    return sorted(_LAYOUTS)


HOLISTIC136 = register_layout(
    Layout(
        "holistic136",
        (
            _all("left_hand"),
            _all("right_hand"),
            _all("pose"),
            LayoutPart("face", tuple(FACE_SIGNING_61)),
        ),
        "left hand 21, right hand 21, pose 33, 61 face points (lips, eyebrows, eyes, nose)",
    )
)
HANDS_POSE75 = register_layout(
    Layout(
        "hands_pose75",
        (_all("pose"), _all("left_hand"), _all("right_hand")),
        "pose 33, left hand 21, right hand 21 (the usual public ISL keypoint set)",
    )
)


def convert(data, source: Layout, target: Layout):
    """Re-arrange ``(T, N, C)`` data from ``source`` to ``target``; missing points become NaN."""
    import numpy as np

    out = np.full((data.shape[0], target.n_points, data.shape[2]), np.nan, dtype=np.float32)
    for part in target.parts:
        if not source.has(part.component):
            continue
        src_part = next(p for p in source.parts if p.component == part.component)
        src_pos = {mp: i for i, mp in enumerate(src_part.indices)}
        src_off = source.slice(part.component).start
        dst_off = target.slice(part.component).start
        for j, mp in enumerate(part.indices):
            if mp in src_pos:
                out[:, dst_off + j] = data[:, src_off + src_pos[mp]]
    return out


# Left/right counterparts, used to mirror a signer (a left-handed signer is a mirrored one).
POSE_MIRROR_PAIRS = [
    (1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20),
    (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32),
]  # fmt: skip
FACE_MIRROR_PAIRS = [
    # lips: outer then inner contour; 0, 17, 13, 14 lie on the midline
    (61, 291), (185, 409), (40, 270), (39, 269), (37, 267), (146, 375), (91, 321), (181, 405),
    (84, 314), (78, 308), (191, 415), (80, 310), (81, 311), (82, 312), (95, 324), (88, 318),
    (178, 402), (87, 317),
    # eyebrows and eyes
    (70, 300), (63, 293), (105, 334), (66, 296), (107, 336),
    (33, 263), (133, 362), (159, 386), (145, 374),
]  # fmt: skip


def mirrored_point(component: str, index: int) -> tuple[str, int]:
    """The (component, index) that point ``component[index]`` becomes when the signer is mirrored."""
    if component == "left_hand":
        return "right_hand", index
    if component == "right_hand":
        return "left_hand", index
    pairs = {"pose": POSE_MIRROR_PAIRS, "face": FACE_MIRROR_PAIRS}.get(component, [])
    for a, b in pairs:
        if index == a:
            return component, b
        if index == b:
            return component, a
    return component, index


def mirror_permutation(layout: Layout) -> list[int]:
    """Row order that swaps every point of ``layout`` with its left/right counterpart."""
    perm = []
    for part in layout.parts:
        for i in part.indices:
            component, j = mirrored_point(part.component, i)
            try:
                perm.append(layout.index(component, j))
            except LayoutError:
                raise LayoutError(
                    f"layout {layout.name!r} cannot be mirrored: it has {part.component}[{i}] "
                    f"but not its counterpart {component}[{j}]"
                ) from None
    return perm
