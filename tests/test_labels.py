import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from islr.cli import build_app
from islr.datasets.include import label_key, read_split_lists, video_stem
from islr.datasets.labels import LabelsConfig, apply_labels, stratified_split
from islr.datasets.synthetic import write_synthetic_cache
from islr.errors import DatasetError
from islr.extract import label_from_path, sample_id_for
from islr.landmarks import LandmarkCache, LandmarkSequence, ManifestEntry, sample_path_for
from islr.landmarks.sequence import sequence_to_bytes
from tests.conftest import shared_data


def cli(*args):
    result = CliRunner().invoke(build_app(), [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


def fake_include_cache(root: Path, list_paths: list[str]) -> Path:
    """An INCLUDE-like tree of empty videos, and a cache of tiny sequences for them whose ids,
    labels and categories are what ``islr extract`` gives those paths."""
    payload = sequence_to_bytes(LandmarkSequence(np.zeros((2, 75, 3)), "hands_pose75"))
    cache = LandmarkCache(root / "cache")
    entries = []
    for rel in list_paths:
        video = root / "videos" / rel
        video.parent.mkdir(parents=True, exist_ok=True)
        video.touch()
        label, label_raw, category = label_from_path(rel)
        sample_id = sample_id_for(rel)
        entry = ManifestEntry(
            id=sample_id,
            path=sample_path_for(sample_id),
            label=label,
            label_raw=label_raw,
            n_frames=2,
            layout="hands_pose75",
            source=rel,
            extra={"category": category} if category else {},
        )
        (cache.root / entry.path).parent.mkdir(parents=True, exist_ok=True)
        (cache.root / entry.path).write_bytes(payload)
        entries.append(entry)
    with cache.writer() as writer:
        writer.append_entries(entries)
    return cache.root


def list_lines(folder: Path, prefix: str) -> dict[str, list[str]]:
    return {
        split: [x.strip() for x in (folder / f"{prefix}_{split}.txt").read_text().splitlines()
                if x.strip()]
        for split in ("train", "val", "test")
    }  # fmt: skip


@pytest.fixture(scope="module")
def include50_tree(tmp_path_factory):
    splits = shared_data("include-splits")
    lines = list_lines(splits, "include50")
    root = tmp_path_factory.mktemp("include50_tree")
    return fake_include_cache(root, [p for v in lines.values() for p in v]), splits, lines


def test_official_lists_give_each_sample_its_split(include50_tree):
    cache, splits, lines = include50_tree
    assert {k: len(v) for k, v in lines.items()} == {"train": 689, "val": 77, "test": 192}
    # INCLUDE reuses video names across signs (MVI_0003 ...): the sign folder disambiguates
    stems = Counter(video_stem(p) for v in lines.values() for p in v)
    assert any(n > 1 for n in stems.values())
    report = apply_labels(
        cache,
        LabelsConfig(split_lists=splits, list_prefix="include50"),
    )
    # takes kept in an `Extra/` sub-folder belong to the sign folder above it
    assert not {e.label for e in LandmarkCache(cache).entries()} & {"Extra", "extra"}
    assert report.split_mode == "lists"
    assert report.split_counts == {"train": 689, "val": 77, "test": 192}
    assert not report.list_match.unlisted and not report.list_match.ambiguous
    assert all(not missing for missing in report.list_match.missing.values())
    by_id = {e.id: e.split for e in LandmarkCache(cache).entries()}
    for split, paths in lines.items():
        assert all(by_id[sample_id_for(p)] == split for p in paths)


def test_full_include_lists_cover_the_include50_videos(include50_tree):
    cache, splits, lines = include50_tree
    code, text = cli("labels", cache, "--split-lists", splits, "--min-samples", "1")
    assert code == 2 and "--list-prefix" in text  # include and include50 lists both there
    code, text = cli(
        "labels", cache, "--split-lists", splits, "--list-prefix", "include", "--min-samples", "1"
    )
    assert code == 0, text
    entries = LandmarkCache(cache).entries()
    assert all(e.split in ("train", "val", "test") for e in entries)
    full = read_split_lists(splits, "include")
    assert sum(len(v) for v in full.values()) == 3127 + 348 + 817
    assert "videos are not in the cache" in text


def test_lists_report_unlisted_and_ambiguous_samples(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "mine_train.txt").write_text(
        "Animals/1. Dog/MVI_0001.MOV\nAnimals/2. Cat/MVI_0002.MOV\nExtra/9. Owl/MVI_0009.MOV"
    )  # no final newline, as INCLUDE's files
    (lists / "mine_val.txt").write_text(
        "Animals/1. Dog/MVI_0002.mov\r\nAnimals/1. Dog/MVI_0003.MOV\r\n"
    )
    cache = fake_include_cache(
        tmp_path,
        ["Animals/1. Dog/MVI_0001.mp4", "Animals/2. Cat/MVI_0002.mp4",
         "Animals/1. Dog/MVI_0002.mp4", "Animals/1. Dog/MVI_0003.mp4",
         "Animals/1. Dog/MVI_0004.mp4"],
    )  # fmt: skip
    report = apply_labels(cache, LabelsConfig(split_lists=lists, min_samples=1))
    splits = {e.id: e.split for e in LandmarkCache(cache).entries()}
    assert splits["Animals/1. Dog/MVI_0001"] == "train"
    assert splits["Animals/2. Cat/MVI_0002"] == "train"  # same video name, told apart by sign
    assert splits["Animals/1. Dog/MVI_0002"] == "val"
    assert splits["Animals/1. Dog/MVI_0004"] == ""
    assert report.list_match.unlisted == ["Animals/1. Dog/MVI_0004"]
    assert report.list_match.missing["train"] == ["Extra/9. Owl/MVI_0009.MOV"]


@pytest.fixture
def synthetic(tmp_path):
    return write_synthetic_cache(tmp_path / "s", n_classes=6, per_class=7, seed=0).out


def test_stratified_split_properties(synthetic):
    report = apply_labels(synthetic, LabelsConfig(split="stratified", seed=3, val_frac=0.25))
    entries = LandmarkCache(synthetic).entries()
    assert report.split_counts == Counter(e.split for e in entries)
    assert {e.split for e in entries} == {"train", "val"}
    per_class = Counter((e.label, e.split) for e in entries)
    for label in report.labels:
        assert per_class[(label, "val")] == 2 and per_class[(label, "train")] == 5
    # deterministic for a seed, different for another
    again = stratified_split(entries, 0.25, 3)
    assert again == {e.id: e.split for e in entries}
    assert stratified_split(entries, 0.25, 4) != again
    # tiny classes: one sample stays in train, two samples give one of each
    few = [ManifestEntry(id=f"a{i}", label="a") for i in range(2)] + [
        ManifestEntry(id="b", label="b")
    ]
    split = stratified_split(few, 0.2, 0)
    assert sorted(split[f"a{i}"] for i in range(2)) == ["train", "val"] and split["b"] == "train"
    with pytest.raises(DatasetError, match="val-frac"):
        stratified_split(few, 1.5, 0)


def test_auto_keeps_synthetic_splits_and_writes_file_to_label(synthetic):
    before = {e.id: e.split for e in LandmarkCache(synthetic).entries()}
    code, text = cli("labels", synthetic)
    assert code == 0, text
    assert "split by keep" in text
    assert {e.id: e.split for e in LandmarkCache(synthetic).entries()} == before
    mapping = json.loads((synthetic / "file_to_label.json").read_text())
    assert mapping == {e.id: e.label for e in LandmarkCache(synthetic).entries()}


def test_class_file_and_min_samples_drop_but_keep_samples(synthetic, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("1. SYNTHETIC-00\n\nsynthetic-02\n# a comment\nSynthetic 03\n")
    report = apply_labels(synthetic, LabelsConfig(classes_file=classes))
    assert report.labels == ["synthetic-00", "synthetic-02", "synthetic-03"]
    assert report.dropped_classes["synthetic-01"] == (7, "not in --classes")
    entries = LandmarkCache(synthetic).entries()
    assert len(entries) == 42  # dropped samples stay in the cache ...
    assert {e.label for e in entries if e.split} == set(report.labels)  # ... with split ""
    mapping = json.loads((synthetic / "file_to_label.json").read_text())
    assert set(mapping.values()) == set(report.labels) and len(mapping) == 21
    code, text = cli("labels", synthetic, "--min-samples", "8")
    assert code == 2 and "no class is left" in text
    assert label_key("46. you (plural)") == label_key("YouPlural") == "youplural"


def test_unknown_classes_and_bad_lists_are_clear_errors(synthetic, tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("synthetic-00\nelephant\n")
    code, text = cli("labels", synthetic, "--classes", classes)
    assert code == 2 and "'elephant'" in text and "not in the cache" in text
    code, text = cli("labels", synthetic, "--classes", tmp_path / "nope.txt")
    assert code == 2 and "no such class list file" in text
    (tmp_path / "empty").mkdir()
    code, text = cli("labels", synthetic, "--split-lists", tmp_path / "empty")
    assert code == 2 and "no split lists" in text
    code, text = cli("labels", synthetic, "--split", "random")
    assert code == 2 and "--split must be one of" in text
    code, text = cli("labels", tmp_path / "nocache")
    assert code == 2 and "no such cache folder" in text
