"""Signer groups: group folds never split a group; signers inferred from recording sessions and
body proportions (on made-up people whose truth is known, and on INCLUDE-50 when present)."""

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from islr.datasets.labels import entry_field, group_folds
from islr.datasets.signers import body_measurements, infer_signers
from islr.errors import DatasetError
from islr.landmarks import LandmarkSequence, ManifestEntry, get_layout
from tests.conftest import shared_data

LAYOUT = get_layout("hands_pose75")


@given(
    groups=st.lists(st.integers(1, 12), min_size=2, max_size=9),
    k=st.integers(2, 5),
    seed=st.integers(0, 3),
)
@settings(max_examples=60, deadline=None)
def test_group_folds_never_split_a_group(groups, k, seed):
    entries = [
        ManifestEntry(id=f"g{g}-{i}", label="a", extra={"signer": f"p{g}"})
        for g, n in enumerate(groups)
        for i in range(n)
    ]
    if len(groups) < k:
        with pytest.raises(DatasetError, match="cannot fill"):
            group_folds(entries, k, "signer", seed)
        return
    fold_of = group_folds(entries, k, "signer", seed)
    assert set(fold_of) == {e.id for e in entries}
    folds_of_group = {}
    for e in entries:
        folds_of_group.setdefault(e.extra["signer"], set()).add(fold_of[e.id])
    assert all(len(f) == 1 for f in folds_of_group.values())
    assert set(fold_of.values()) == set(range(k))  # no empty fold
    assert fold_of == group_folds(entries, k, "signer", seed)


def test_group_folds_read_columns_and_name_a_missing_field():
    entries = [ManifestEntry(id=f"x{i}", label="a", split=("train", "val", "test")[i % 3])
               for i in range(9)]  # fmt: skip
    fold_of = group_folds(entries, 3, "split")
    assert len({(entry_field(e, "split"), fold_of[e.id]) for e in entries}) == 3
    with pytest.raises(DatasetError, match="no 'signer'.*islr signers"):
        group_folds(entries, 2, "signer")


def _person(rng: np.random.Generator) -> dict[str, float]:
    return {"ears": rng.uniform(0.33, 0.45), "eyes": rng.uniform(0.17, 0.25),
            "mouth": rng.uniform(0.13, 0.19), "nose": rng.uniform(0.5, 0.65),
            "arm": rng.uniform(0.75, 1.0)}  # fmt: skip


def _clip(person, camera, rng, frames=20) -> LandmarkSequence:
    """Pose of a standing person: proportions from ``person``, placement (x, y, width) from
    ``camera``, a little detector noise; hands absent."""
    cx, cy, width = camera
    data = np.full((frames, LAYOUT.n_points, 3), np.nan, dtype=np.float32)
    pose = LAYOUT.slice("pose").start
    points = {
        11: (cx + width / 2, cy), 12: (cx - width / 2, cy),
        7: (cx + person["ears"] * width / 2, cy - person["nose"] * width),
        8: (cx - person["ears"] * width / 2, cy - person["nose"] * width),
        2: (cx + person["eyes"] * width / 2, cy - 1.1 * person["nose"] * width),
        5: (cx - person["eyes"] * width / 2, cy - 1.1 * person["nose"] * width),
        9: (cx + person["mouth"] * width / 2, cy - 0.8 * person["nose"] * width),
        10: (cx - person["mouth"] * width / 2, cy - 0.8 * person["nose"] * width),
        0: (cx, cy - person["nose"] * width),
        13: (cx + width / 2, cy + person["arm"] * width),
        14: (cx - width / 2, cy + person["arm"] * width),
    }  # fmt: skip
    for mp, (x, y) in points.items():
        data[:, pose + mp, 0] = x + rng.normal(0, 0.002, frames)
        data[:, pose + mp, 1] = y + rng.normal(0, 0.002, frames)
    return LandmarkSequence(data, "hands_pose75")


def test_signers_are_found_from_sessions_and_proportions():
    rng = np.random.default_rng(0)
    people = [_person(rng) for _ in range(4)]
    entries, seqs, truth, number = [], [], {}, 100
    for session in range(12):  # each person records 3 sessions, each with another placement
        who = session % 4
        camera = (rng.uniform(0.4, 0.6), rng.uniform(0.3, 0.5), rng.uniform(0.2, 0.3))
        for _ in range(5):
            number += int(rng.integers(1, 4))
            entries.append(ManifestEntry(id=f"sign_MVI_{number}", label="sign",
                                         extra={"video": f"MVI_{number}"}))  # fmt: skip
            seqs.append(_clip(people[who], camera, rng))
            truth[entries[-1].id] = who
        number += 2 * 20  # the next session starts beyond the session gap
    grouping = infer_signers(entries, seqs, n_signers=4)
    assert grouping.n_sessions == 12
    pairs = Counter((truth[i], g) for i, g in grouping.group_of.items())
    assert len(pairs) == 4  # each person exactly one group, each group one person
    assert grouping.agreement == 1.0 and grouping.silhouette > 0.5
    assert grouping == infer_signers(entries, seqs, n_signers=4)


def test_measurements_need_the_head_and_shoulders():
    rng = np.random.default_rng(1)
    seq = _clip(_person(rng), (0.5, 0.4, 0.25), rng)
    m = body_measurements(seq)
    assert m["shoulder_width"] == pytest.approx(0.25, abs=0.01)
    seq.data[:, LAYOUT.slice("pose").start + 7] = np.nan  # an ear never seen
    entry = ManifestEntry(id="a_MVI_1", label="a")
    with pytest.raises(DatasetError, match="never show the head"):
        infer_signers([entry] * 8, [seq] * 8, n_signers=2)


def test_include50_signers_keep_sessions_whole(tmp_path):
    data = shared_data("include50")
    from islr.datasets.importers import import_include_splits
    from islr.datasets.signers import infer_cache_signers
    from islr.landmarks import LandmarkCache

    import_include_splits(data, tmp_path / "cache")
    grouping = infer_cache_signers(tmp_path / "cache", 7)
    entries = LandmarkCache(tmp_path / "cache").entries()
    assert {e.extra["signer"] for e in entries} == {f"s{i}" for i in range(1, 8)}
    assert all(grouping.group_of[e.id] == e.extra["signer"] for e in entries)
    # the four back-to-back sessions of the adjectives (MVI 9217-9542) are at least 3 people
    sessions = [(9217, 9296), (9298, 9376), (9378, 9456), (9458, 9542)]
    from islr.datasets.signers import video_number

    groups = [{e.extra["signer"] for e in entries if lo <= video_number(e) <= hi}
              for lo, hi in sessions]  # fmt: skip
    assert all(len(g) == 1 for g in groups)
    assert len(set.union(*groups)) >= 3
    assert grouping.agreement > 0.75


def test_cli_signers_writes_the_field_cv_groups_by(tmp_path):
    from typer.testing import CliRunner

    from islr.cli import build_app
    from islr.landmarks import LandmarkCache

    rng = np.random.default_rng(2)
    people = [_person(rng) for _ in range(3)]
    cache = LandmarkCache(tmp_path / "cache")
    with cache.writer() as writer:
        number = 10
        for session in range(6):
            camera = (rng.uniform(0.4, 0.6), rng.uniform(0.3, 0.5), rng.uniform(0.2, 0.3))
            for _ in range(4):
                number += 1
                sid = f"sign{number % 2}_MVI_{number}"
                entry = ManifestEntry(id=sid, label=f"sign{number % 2}", split="train",
                                      layout="hands_pose75", extra={"video": f"MVI_{number}"})  # fmt: skip
                writer.add(_clip(people[session % 3], camera, rng), entry)
            number += 50
    app = build_app()
    dry = CliRunner().invoke(
        app, ["signers", str(tmp_path / "cache"), "--groups", "3", "--dry-run"]
    )
    assert dry.exit_code == 0, dry.output
    assert "6 recording sessions" in " ".join(dry.output.split())
    assert all("signer" not in e.extra for e in cache.entries())
    result = CliRunner().invoke(app, ["signers", str(tmp_path / "cache"), "--groups", "3"])
    assert result.exit_code == 0, result.output
    groups = Counter(e.extra["signer"] for e in cache.entries())
    assert groups == {"s1": 8, "s2": 8, "s3": 8}
    too_many = CliRunner().invoke(app, ["signers", str(tmp_path / "cache"), "--groups", "9"])
    assert too_many.exit_code != 0 and "only 6 recording sessions" in too_many.output
