"""``islr web build``: the web page and a model as a static site that needs no islr process.

The folder holds the page (``index.html``, ``static/``), the vendored MediaPipe Holistic and
onnxruntime-web files it fetches, the model (``model/``: the classifier, its learned segmenter,
and as JSON what ``GET /v1/model`` and ``GET /v1/vocabulary`` would answer plus the model's
embedding reference, for adding signs in the browser), a service worker (``sw.js``) and
``site.json``, the manifest: every file with its size and SHA-256, and the build's hash. Any
static file server runs it (``python -m http.server`` in the folder); a phone needs HTTPS for the
camera (GitHub Pages, any web host). The page finds no ``/v1/model`` there and reads ``site.json``
instead (docs/web-app.md).

Large binaries are stored gzipped (``X.gz``): the service worker fetches them once, unpacks them
and caches them under their own names, so the site stays under 30 MB and, after one visit, starts
with the network off. A new build has a new hash, so its service worker replaces the old cache.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from islr.errors import InputError

SITE_FORMAT = 1
MANIFEST = "site.json"
# Binaries fetched whole and compressible: stored gzipped, unpacked by the service worker.
GZIP_SUFFIXES = (".wasm", ".data", ".tflite", ".onnx")
# The page's own files (islr/serving/static), copied as they are.
PAGE_FILES = (
    "app.js",
    "calibration.js",
    "enrol_panel.js",
    "enroll.js",
    "local_vocabulary.js",
    "refit.js",
    "model_input.js",
    "segmenter.js",
    "streaming.js",
    "vocabulary.js",
    "style.css",
    "app.webmanifest",
    "icon-192.png",
    "icon-512.png",
)
# The landmarker's pose model by Holistic's modelComplexity (the page's ?pose= option).
POSE_MODELS = {"lite": "pose_landmark_lite.tflite", "full": "pose_landmark_full.tflite"}


@dataclass
class SiteFile:
    path: str  # where the page asks for it, relative to the site
    stored: str  # where it lies in the folder (path + ".gz" when gzipped)
    bytes: int  # its size as stored
    sha256: str  # of the stored file

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "stored": self.stored,
            "bytes": self.bytes,
            "sha256": self.sha256,
        }


def vendor_files(pose: str) -> list[str]:
    """The vendored files (``static/vendor/...``) the page fetches with pose model ``pose``."""
    from islr.serving.routers.page import VENDOR_FILES

    if pose not in POSE_MODELS:
        raise InputError(f"--pose must be one of {', '.join(POSE_MODELS)}, got {pose!r}")
    files = [f for f in VENDOR_FILES if not f.startswith("vendor/holistic/pose_landmark_")]
    return [*files, f"vendor/holistic/{POSE_MODELS[pose]}"]


def site_answers(model: str | Path, vocab: str | Path | None) -> dict[str, Any]:
    """What the server would serve for ``model``: its ``/v1/model`` and ``/v1/vocabulary``
    answers (from the server's own code), the classifier's and segmenter's bytes, and the
    embedding reference the page needs to add signs without a server."""
    from islr.serving.app import ServeConfig, create_app
    from islr.serving.routers.model import model_info
    from islr.serving.routers.vocabulary import vocabulary_listing

    state = create_app(model, ServeConfig(allow_enroll=True, vocabulary=vocab)).state.islr
    engine = state.engine
    info = asyncio.run(model_info(state))
    vocabulary = vocabulary_listing(state) if engine.embedding_dim is not None else None
    return {
        "info": info,
        "vocabulary": vocabulary,
        "reference": engine.reference.to_dict(),
        "onnx": state.onnx_bytes,
        "segmenter": engine.segmenter.model_bytes if engine.segmenter is not None else None,
    }


def build_site(
    model: str | Path,
    out: str | Path,
    vocab: str | Path | None = None,
    pose: str = "full",
    static_dir: Path | None = None,
) -> dict[str, Any]:
    """Write the static site of ``model`` to ``out`` (replacing a previous build there, never
    another folder); returns its manifest (``site.json``)."""
    from islr.serving.routers.page import STATIC_DIR, WEB_ASSETS_HELP

    static = static_dir or STATIC_DIR
    out = Path(out)
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())
    ):
        raise InputError(f"{out} exists and is not an islr site: give an empty or new folder")
    vendored = vendor_files(pose)
    missing = [
        f for f in ("index.html", "sw.js", *PAGE_FILES, *vendored) if not (static / f).is_file()
    ]
    if missing:
        raise InputError(f"the page's file {missing[0]} is missing: {WEB_ASSETS_HELP}")
    answers = site_answers(model, vocab)
    name = Path(str(answers["info"].get("source") or "model")).stem or "model"

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.build-", dir=out.parent))
    tmp.chmod(0o755)  # a web host serves it to everyone
    try:
        files: list[SiteFile] = []

        def put(path: str, data: bytes) -> None:
            stored = path + ".gz" if path.endswith(GZIP_SUFFIXES) else path
            if stored != path:
                data = gzip.compress(data, 9, mtime=0)
            target = tmp / stored
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            files.append(SiteFile(path, stored, len(data), hashlib.sha256(data).hexdigest()))

        def put_json(path: str, value: Any) -> None:
            put(path, (json.dumps(value, separators=(",", ":")) + "\n").encode())

        put("index.html", (static / "index.html").read_bytes())
        for f in PAGE_FILES:
            put(f"static/{f}", (static / f).read_bytes())
        for f in vendored:
            put(f"static/{f}", (static / f).read_bytes())
        info = dict(answers["info"])
        info["onnx_url"] = f"model/{name}.onnx"
        put(info["onnx_url"], answers["onnx"])
        if info.get("segmenter") and answers["segmenter"] is not None:
            info["segmenter"] = {**info["segmenter"], "url": f"model/{name}.segmenter.onnx"}
            put(info["segmenter"]["url"], answers["segmenter"])
        info.update(source=f"{name}.onnx", stream_source="model", pose_model=pose)
        put_json("model/model.json", info)
        if answers["vocabulary"] is not None:
            put_json("model/vocabulary.json", {**answers["vocabulary"], "file": None})
            put_json("model/reference.json", answers["reference"])

        build = hashlib.sha256(
            "".join(f"{f.path}\0{f.sha256}\n" for f in sorted(files, key=lambda f: f.path)).encode()
        ).hexdigest()[:16]
        manifest = {
            "format": SITE_FORMAT,
            "build": build,
            "model": {
                "name": name,
                "info": "model/model.json",
                "vocabulary": "model/vocabulary.json"
                if answers["vocabulary"] is not None
                else None,
                "reference": "model/reference.json" if answers["vocabulary"] is not None else None,
            },
            "pose_model": pose,
            "files": [f.to_dict() for f in files],
            "bytes": sum(f.bytes for f in files),
        }
        # the service worker knows the build and its files: a new build is a new worker
        worker = (static / "sw.js").read_text()
        head, sep, rest = worker.partition("\n")
        if not head.startswith("const SITE = "):
            raise InputError("static/sw.js must start with its `const SITE = ...` line")
        site = {"build": build, "files": [[f.path, f.stored] for f in files] + [[MANIFEST] * 2]}
        (tmp / "sw.js").write_text(f"const SITE = {json.dumps(site)};{sep}{rest}")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")

        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
