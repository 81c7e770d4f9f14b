"""`islr web build`: the static site's folder, manifest and service worker (fast: no browser).

The page's vendored files are stood in for by small files (the real ones come from `make web`;
tests/test_web_app.py runs the real site in Chromium)."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from islr.cli import build_app
from islr.errors import InputError
from islr.serving.routers.page import STATIC_DIR
from islr.serving.site import PAGE_FILES, build_site, vendor_files


@pytest.fixture
def static(tmp_path: Path) -> Path:
    """The page's own files, and stand-ins for the vendored ones."""
    folder = tmp_path / "static"
    folder.mkdir()
    for f in ("index.html", "sw.js", *PAGE_FILES):
        shutil.copy2(STATIC_DIR / f, folder / f)
    for pose in ("full", "lite"):
        for f in vendor_files(pose):
            (folder / f).parent.mkdir(parents=True, exist_ok=True)
            (folder / f).write_bytes(f"stand-in for {f}\n".encode() * 50)
    return folder


def test_the_site_holds_the_page_the_model_and_a_manifest_of_both(static, tmp_path):
    site = tmp_path / "site"
    manifest = build_site("include50", site, static_dir=static)
    assert json.loads((site / "site.json").read_text()) == manifest
    stored = {f["stored"] for f in manifest["files"]}
    on_disk = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert on_disk == stored | {"site.json", "sw.js"}
    for f in manifest["files"]:
        data = (site / f["stored"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["bytes"], f["sha256"])
        if f["stored"] != f["path"]:  # gzipped binaries unpack to the original
            assert f["stored"] == f["path"] + ".gz"
            original = gzip.decompress(data)
            if f["path"].startswith("static/"):
                assert original == (static / f["path"].removeprefix("static/")).read_bytes()
    paths = {f["path"] for f in manifest["files"]}
    assert "static/vendor/holistic/pose_landmark_full.tflite" in paths
    assert not any("pose_landmark_lite" in p for p in paths)  # only what the page fetches
    # the model as the page reads it: GET /v1/model's answer, with the files' places
    info = json.loads((site / "model/model.json").read_text())
    assert info["onnx_url"] == "model/include50.onnx" and info["onnx_url"] in paths
    assert info["segmenter"]["url"] in paths and info["stream"]["segmenter"] == "learned"
    assert info["source"] == "include50.onnx"  # not this machine's path
    vocabulary = json.loads((site / "model/vocabulary.json").read_text())
    assert vocabulary["allow_enroll"] is True and vocabulary["file"] is None
    reference = json.loads((site / "model/reference.json").read_text())
    assert reference["known_embeddings"] and reference["known_prototypes"]
    # the service worker knows this build and every file, the manifest included
    worker = (site / "sw.js").read_text()
    first = json.loads(worker.split("\n", 1)[0].removeprefix("const SITE = ").removesuffix(";"))
    assert first["build"] == manifest["build"]
    assert {p for p, _ in first["files"]} == paths | {"site.json"}


def test_a_rebuild_replaces_the_site_and_changes_its_build(static, tmp_path):
    site = tmp_path / "site"
    full = build_site("include50", site, static_dir=static)
    again = build_site("include50", site, static_dir=static)
    assert again["build"] == full["build"]  # deterministic
    lite = build_site("include50", site, static_dir=static, pose="lite")
    assert lite["build"] != full["build"]
    assert not (site / "static/vendor/holistic/pose_landmark_full.tflite.gz").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_requests_get_one_line_and_touch_nothing(static, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not an islr site"):
        build_site("include50", precious, static_dir=static)
    assert (precious / "notes.txt").read_text() == "mine"
    with pytest.raises(InputError, match="--pose"):
        build_site("include50", tmp_path / "site", static_dir=static, pose="heavy")
    (static / "vendor/ort/ort.wasm.min.js").unlink()
    with pytest.raises(InputError, match="make web"):
        build_site("include50", tmp_path / "site", static_dir=static)
    assert not (tmp_path / "site").exists()


def test_the_cli_says_what_it_wrote(static, tmp_path, monkeypatch):
    import islr.serving.routers.page as page

    monkeypatch.setattr(page, "STATIC_DIR", static)
    result = CliRunner().invoke(
        build_app(), ["web", "build", "include50", "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    assert "http.server" in result.output and "build " in result.output
    result = CliRunner().invoke(
        build_app(), ["web", "build", "include50", "--out", str(tmp_path / "s"), "--pose", "x"]
    )
    assert result.exit_code == 2 and "--pose must be one of" in result.output


def test_the_build_needs_the_core_install_only(static, tmp_path):
    """No torch, no MediaPipe: `islr web build` of an .onnx model runs on the light install."""
    from test_extras import TRAIN, VIDEO, run_without

    code = (
        "from pathlib import Path\nfrom islr.serving.site import build_site\n"
        f"m = build_site('include50', {str(tmp_path / 'site')!r}, static_dir=Path({str(static)!r}))\n"
        "print(m['build'])"
    )
    done = run_without(TRAIN + VIDEO, code)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "site.json").is_file()
