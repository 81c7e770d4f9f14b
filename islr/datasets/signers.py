"""Who signed what, inferred from the landmarks when a dataset does not say.

INCLUDE-50's files name no signer, yet a fair score must hold whole signers out. Two things the
landmarks reveal are used, in two steps:

1. **Recording sessions.** The camera stood still while a signer recorded a run of videos, so
   consecutive video numbers (``MVI_3267``, ``MVI_3270`` ...) with the same shoulder position and
   shoulder width in the image are one session. Two videos are linked when their numbers are at
   most ``SESSION_GAP`` apart and their camera placement matches (``SESSION_TOLERANCE``); sessions
   are the connected groups. Several cameras numbered their files independently, so numbers alone
   are not enough, and a link needs both.
2. **Signers.** Body proportions do not depend on the camera's distance: head (ear-to-ear,
   eye-to-eye, mouth) and upper arm against shoulder width, nose-to-shoulder height against it.
   Each session's medians are clustered (Ward, every session weighted by its videos) into
   ``n_signers`` groups; a session is never split between two groups.

How sure it is: :class:`SignerGrouping` carries the clusters' silhouette and the share of videos
whose own proportions lie nearest their session's group (see ``docs/signers.md``). Two signers
merged into one group make a leave-group-out score stricter, never looser; the risk is one signer
split over two groups, so fewer groups than the true number of signers is the safe side.

Deterministic: the same cache gives the same groups, named ``s1``, ``s2`` ... by the first video
number of each group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from islr.errors import DatasetError
from islr.landmarks import LandmarkCache, LandmarkSequence, ManifestEntry, get_layout

SIGNER_FIELD = "signer"
SESSION_GAP = 20  # video numbers
# camera placement: shoulder midpoint x, y (image heights) and shoulder width (relative)
SESSION_TOLERANCE = (0.04, 0.015, 0.05)
CAMERA = ("shoulder_x", "shoulder_y", "shoulder_width")
PROPORTIONS = ("ears", "eyes", "mouth", "nose_height", "upper_arm")
# MediaPipe Pose indices
_NOSE, _L_EYE, _R_EYE, _L_EAR, _R_EAR, _MOUTH_L, _MOUTH_R = 0, 2, 5, 7, 8, 9, 10
_L_SHOULDER, _R_SHOULDER, _L_ELBOW, _R_ELBOW = 11, 12, 13, 14


def _pose_xy(seq: LandmarkSequence) -> np.ndarray:
    """``(T, 33, 2)`` pose x, y in image heights (NaN where missing or absent from the layout)."""
    layout = get_layout(seq.layout)
    if not layout.has("pose"):
        raise DatasetError(f"{seq.source or 'a sample'}: layout {seq.layout} has no pose points")
    part = next(p for p in layout.parts if p.component == "pose")
    start = layout.slice("pose").start
    out = np.full((seq.data.shape[0], 33, 2), np.nan)
    for j, mp in enumerate(part.indices):
        out[:, mp] = seq.data[:, start + j, :2]
    width, height = seq.extra.get("image_width"), seq.extra.get("image_height")
    if width and height:
        out[..., 0] *= float(width) / float(height)
    return out


def body_measurements(seq: LandmarkSequence) -> dict[str, float]:
    """A clip's camera placement (:data:`CAMERA`) and body proportions (:data:`PROPORTIONS`,
    in shoulder widths), each the median over its frames; NaN where never seen."""
    xy = _pose_xy(seq)

    def length(a: int, b: int) -> float:
        d = np.linalg.norm(xy[:, a] - xy[:, b], axis=-1)
        return float(np.nanmedian(d)) if np.isfinite(d).any() else float("nan")

    def point(a: int) -> np.ndarray:
        p = xy[:, a]
        ok = np.isfinite(p).all(-1)
        return np.median(p[ok], axis=0) if ok.any() else np.full(2, np.nan)

    width = length(_L_SHOULDER, _R_SHOULDER)
    mid = (point(_L_SHOULDER) + point(_R_SHOULDER)) / 2
    arm = np.nanmean([length(_L_SHOULDER, _L_ELBOW), length(_R_SHOULDER, _R_ELBOW)])
    return {
        "shoulder_x": float(mid[0]),
        "shoulder_y": float(mid[1]),
        "shoulder_width": width,
        "ears": length(_L_EAR, _R_EAR) / width,
        "eyes": length(_L_EYE, _R_EYE) / width,
        "mouth": length(_MOUTH_L, _MOUTH_R) / width,
        "nose_height": float(np.linalg.norm(point(_NOSE) - mid)) / width,
        "upper_arm": float(arm) / width,
    }


def video_number(entry: ManifestEntry) -> int | None:
    """The camera's file number of a sample (``MVI_3336`` -> 3336), or None."""
    for text in (str(entry.extra.get("video", "")), entry.id):
        if m := re.search(r"(\d+)(?!.*\d)", text):
            return int(m.group(1))
    return None


def recording_sessions(numbers: list[int | None], camera: np.ndarray) -> np.ndarray:
    """Session index per clip: clips linked when their numbers are close and the camera placement
    (``(n, 3)``, :data:`CAMERA`) matches; sessions are the connected groups."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(numbers)
    tol = np.asarray(SESSION_TOLERANCE)
    rows, cols = [], []
    for i in range(n):
        for j in range(i + 1, n):
            if numbers[i] is None or numbers[j] is None:
                continue
            if abs(numbers[i] - numbers[j]) > SESSION_GAP:
                continue
            d = np.abs(camera[i] - camera[j])
            d[2] /= max(camera[i, 2], 1e-6)
            if np.all(d < tol):
                rows.append(i)
                cols.append(j)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    _, session = connected_components(graph, directed=False)
    return session


@dataclass
class SignerGrouping:
    """Signer group per sample id and how well the groups hold together."""

    group_of: dict[str, str]
    n_sessions: int
    silhouette: float  # of the sessions' proportions in their groups (-1..1)
    agreement: float  # share of clips whose own proportions are nearest their session's group
    # pairs of sessions recorded one after the other with the same signs (so, most likely, two
    # people taking turns) and how many of them share a group: two signers merged into one
    turn_pairs: int = 0
    turn_pairs_merged: int = 0
    sessions_of: dict[str, int] = field(default_factory=dict)  # group -> number of sessions

    def sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.group_of.values():
            out[g] = out.get(g, 0) + 1
        return dict(sorted(out.items(), key=lambda kv: int(kv[0][1:])))


def infer_signers(
    entries: list[ManifestEntry], seqs: list[LandmarkSequence], n_signers: int = 7
) -> SignerGrouping:
    """Group clips into ``n_signers`` signers by recording session and body proportions."""
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    if len(entries) != len(seqs) or not entries:
        raise DatasetError("infer_signers needs one sequence per entry, and at least one")
    table = [body_measurements(s) for s in seqs]
    camera = np.array([[t[k] for k in CAMERA] for t in table])
    body = np.array([[t[k] for k in PROPORTIONS] for t in table])
    bad = [
        e.id
        for e, row in zip(entries, np.c_[camera, body], strict=True)
        if not np.isfinite(row).all()
    ]
    if bad:
        raise DatasetError(
            f"{len(bad)} clip(s) never show the head and shoulders (e.g. {bad[0]}): "
            "signers cannot be inferred from them; drop them first"
        )
    numbers = [video_number(e) for e in entries]
    session = recording_sessions(numbers, camera)
    n_sessions = int(session.max()) + 1
    if n_sessions < n_signers:
        raise DatasetError(f"only {n_sessions} recording sessions for {n_signers} signers")
    weights = np.bincount(session)
    per_session = np.array([np.median(body[session == s], axis=0) for s in range(n_sessions)])
    scaler = StandardScaler().fit(body)
    z = scaler.transform(per_session)
    repeated = np.repeat(z, weights, axis=0)
    owner = np.repeat(np.arange(n_sessions), weights)
    cluster = AgglomerativeClustering(n_signers, linkage="ward").fit_predict(repeated)
    session_group = np.array([np.bincount(cluster[owner == s]).argmax() for s in range(n_sessions)])
    # name groups s1.. by their first video number (then first entry): stable across runs
    first = {}
    for i, s in enumerate(session):
        g = session_group[s]
        key = (numbers[i] if numbers[i] is not None else 1 << 40, i)
        first[g] = min(first.get(g, key), key)
    name = {g: f"s{rank + 1}" for rank, g in enumerate(sorted(first, key=first.get))}
    clip_group = session_group[session]
    centroids = np.array([z[session_group == g].mean(0) for g in range(n_signers)])
    own = scaler.transform(body)
    nearest = np.argmin(((own[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    sessions_of: dict[str, int] = {}
    for g in session_group:
        sessions_of[name[g]] = sessions_of.get(name[g], 0) + 1
    n_labels = len(set(session_group))
    silhouette = float(silhouette_score(z, session_group)) if 1 < n_labels < n_sessions else 0.0
    pairs = _turn_pairs(session, numbers, [e.label for e in entries])
    merged = sum(session_group[a] == session_group[b] for a, b in pairs)
    return SignerGrouping(
        turn_pairs=len(pairs),
        turn_pairs_merged=int(merged),
        group_of={e.id: name[g] for e, g in zip(entries, clip_group, strict=True)},
        n_sessions=n_sessions,
        silhouette=silhouette,
        agreement=float((nearest == clip_group).mean()),
        sessions_of=dict(sorted(sessions_of.items(), key=lambda kv: int(kv[0][1:]))),
    )


def _turn_pairs(
    session: np.ndarray, numbers: list[int | None], labels: list[str]
) -> list[tuple[int, int]]:
    """Sessions of at least 3 clips, one starting within ``4 * SESSION_GAP`` numbers of the other's
    end, whose signs overlap by at least half: a category recorded by one person, then another."""
    spans, signs = {}, {}
    for s, n, label in zip(session, numbers, labels, strict=True):
        if n is None:
            continue
        lo, hi = spans.get(s, (n, n))
        spans[s] = (min(lo, n), max(hi, n))
        signs.setdefault(s, []).append(label)
    big = [s for s in spans if len(signs[s]) >= 3]
    pairs = []
    for a in big:
        for b in big:
            if a == b or not 0 < spans[b][0] - spans[a][1] <= 4 * SESSION_GAP:
                continue
            sa, sb = set(signs[a]), set(signs[b])
            if len(sa & sb) >= 0.5 * min(len(sa), len(sb)):
                pairs.append((int(a), int(b)))
    return pairs


def infer_cache_signers(
    cache_dir: str | Path, n_signers: int = 7, write: bool = True
) -> SignerGrouping:
    """:func:`infer_signers` over a cache's labelled samples; with ``write``, stores each group in
    the manifest as ``extra["signer"]`` (the manifest rewritten atomically)."""
    cache = LandmarkCache(cache_dir)
    entries = [e for e in cache.require_entries() if e.label]
    grouping = infer_signers(entries, cache.load_many(entries), n_signers)
    if write:
        with cache.writer() as writer:
            updated = []
            for e in cache.entries(check_files=False):
                if e.id in grouping.group_of:
                    e.extra = {**e.extra, SIGNER_FIELD: grouping.group_of[e.id]}
                updated.append(e)
            writer.rewrite(updated)
    return grouping


__all__ = [
    "SIGNER_FIELD",
    "SignerGrouping",
    "body_measurements",
    "infer_cache_signers",
    "infer_signers",
    "recording_sessions",
    "video_number",
]
