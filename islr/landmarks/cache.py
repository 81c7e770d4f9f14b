"""The landmark cache: a folder of one compressed file per sample plus a manifest.

Layout on disk::

    CACHE_DIR/
      manifest.jsonl      one JSON object per line (see ManifestEntry); the last line for an id wins
      samples/<id>.npz    one LandmarkSequence per sample (islr.landmarks.sequence)
      failures.csv        file,reason for inputs that could not be turned into landmarks

Crash safety: a sample file is written to a temp file and renamed into place *before* its manifest
line is appended (and fsynced), so the manifest never names a missing file; a killed writer can at
worst leave a torn last manifest line, which readers ignore and the next writer repairs; an
interrupted append (Ctrl-C) takes its lines back out, so none is ever written twice. Whole-
manifest rewrites (e.g. ``islr labels`` setting splits) go through temp file + rename.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from islr.landmarks.sequence import (
    LandmarkFileError,
    LandmarkSequence,
    atomic_write_bytes,
    load_sequence,
    sequence_to_bytes,
)

MANIFEST = "manifest.jsonl"
FAILURES = "failures.csv"
SAMPLES_DIR = "samples"


class CacheError(RuntimeError):
    """The cache folder is missing, empty, locked or inconsistent."""


@dataclass
class ManifestEntry:
    """One sample of the cache.

    ``id`` is unique in the cache and may contain ``/`` (e.g. ``Adjectives/1. loud/MVI_5177``);
    ``path`` is relative to the cache root. ``label`` is the clean sign name (``loud``),
    ``label_raw`` the folder name it came from (``1. loud``). ``split`` is ``train``, ``val``,
    ``test`` or empty. ``source`` is the input file the sample came from, as a POSIX path
    relative to the folder given to the command that made it (``islr extract``/``islr import``;
    the same string names the file in ``failures.csv``); empty for generated samples (``islr
    synth``). ``source_size`` and ``source_mtime`` let a rerun skip inputs that have not changed.
    """

    id: str
    path: str = ""
    label: str = ""
    label_raw: str = ""
    split: str = ""
    n_frames: int = 0
    layout: str = ""
    source: str = ""
    source_size: int | None = None
    source_mtime: float | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> ManifestEntry:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# A sample file name is its id's last part + ".npz", written through a temp file named
# ".<name>.<8 random>.tmp": 255 bytes (the usual file-name limit) minus that overhead.
MAX_ID_PART_BYTES = 200


def sample_path_for(sample_id: str) -> str:
    """Relative path of the sample file for ``sample_id`` (ids are kept readable, not hashed).

    ``ValueError`` for an id that cannot name a file inside the cache: empty, ``.``/``..``
    parts, control characters (NUL...), or a part longer than the file system allows.
    """
    parts = [p for p in sample_id.replace("\\", "/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ValueError(f"invalid sample id {sample_id!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in sample_id):
        raise ValueError(f"invalid sample id {sample_id!r}: it contains control characters")
    if any(len(p.encode("utf-8")) > MAX_ID_PART_BYTES for p in parts):
        raise ValueError(
            f"invalid sample id {sample_id[:40]!r}...: a part longer than "
            f"{MAX_ID_PART_BYTES} bytes cannot be a file name"
        )
    return "/".join([SAMPLES_DIR, *parts]) + ".npz"


class LandmarkCache:
    """A landmark cache folder. Cheap to construct; reads the manifest on demand."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ---- reading -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def failures_path(self) -> Path:
        return self.root / FAILURES

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def entries(self, split: str | None = None, check_files: bool = True) -> list[ManifestEntry]:
        """Manifest entries in first-seen order (last line per id wins), optionally one split."""
        if not self.root.is_dir():
            raise CacheError(f"{self.root}: no such cache folder")
        by_id: dict[str, ManifestEntry] = {}
        if self.manifest_path.is_file():
            for entry in _read_manifest(self.manifest_path):
                by_id[entry.id] = entry
        out = list(by_id.values())
        if check_files:
            out = [e for e in out if (self.root / e.path).is_file()]
        if split is not None:
            out = [e for e in out if e.split == split]
        return out

    def require_entries(self, split: str | None = None) -> list[ManifestEntry]:
        """Like :meth:`entries`, but an empty result is a :class:`CacheError` with a hint."""
        entries = self.entries(split=split)
        if not entries:
            where = f" in split {split!r}" if split else ""
            raise CacheError(
                f"{self.root}: the cache has no samples{where}. Fill it with `islr extract`, "
                "`islr import` or `islr synth`"
                + (", and set splits with `islr labels`" if split else "")
            )
        return entries

    def load(self, entry: ManifestEntry | str) -> LandmarkSequence:
        if isinstance(entry, str):
            matches = [e for e in self.entries(check_files=False) if e.id == entry]
            if not matches:
                raise CacheError(f"{self.root}: no sample with id {entry!r}")
            entry = matches[0]
        return load_sequence(self.root / entry.path)

    def load_many(
        self, entries: Iterable[ManifestEntry], workers: int = 4
    ) -> list[LandmarkSequence]:
        """Load samples in order; zlib releases the GIL, so a few threads help on big caches."""
        paths = [self.root / e.path for e in entries]
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            return list(pool.map(load_sequence, paths))

    def failures(self) -> list[tuple[str, str]]:
        if not self.failures_path.is_file():
            return []
        with self.failures_path.open(newline="") as f:
            rows = list(csv.reader(f))
        return [(r[0], r[1]) for r in rows[1:] if len(r) >= 2]

    # ---- writing -----------------------------------------------------------------------------
    @contextmanager
    def writer(self, batch: int = 1) -> Iterator[CacheWriter]:
        """Exclusive write access (one writer per cache, also across processes); ``batch``
        manifest lines are buffered per fsync (see :class:`CacheWriter`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        lock_file = (self.root / ".lock").open("a")
        try:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise CacheError(
                    f"{self.root}: another islr process is writing to this cache; wait for it"
                ) from None
            writer = CacheWriter(self, batch)
            try:
                yield writer
            finally:
                writer.flush()  # the buffered entries' files are already on disk
        finally:
            lock_file.close()


class CacheWriter:
    """The one way to write a cache: adds samples, rewrites the manifest and records failures.

    Get one from ``cache.writer()``. Manifest lines may be buffered (``batch``) to save fsyncs;
    they are written when the buffer is full, by :meth:`flush`, and when the ``with`` block ends.
    A sample file is always on disk before its manifest line.
    """

    def __init__(self, cache: LandmarkCache, batch: int = 1):
        self.cache = cache
        self.batch = max(1, batch)
        self._pending: list[ManifestEntry] = []
        self._pending_lock = threading.Lock()
        _repair_torn_tail(cache.manifest_path)

    def add(self, seq: LandmarkSequence, entry: ManifestEntry) -> ManifestEntry:
        """Save ``seq`` and append ``entry`` (its path, n_frames, layout filled in)."""
        self.append_entries([self.write_sample(seq, entry)])
        return entry

    def add_bytes(self, payload: bytes, entry: ManifestEntry) -> ManifestEntry:
        """Like :meth:`add` for a sequence already serialised (e.g. by a worker process)."""
        self.append_entries([self.write_sample(payload, entry)])
        return entry

    def write_sample(self, sample: LandmarkSequence | bytes, entry: ManifestEntry) -> ManifestEntry:
        """Save a sample's file and fill in ``entry``, without appending it to the manifest.

        For writers that save from several threads and then append in a fixed order; safe to
        call from threads. The entry must then go through :meth:`append_entries`.
        """
        entry.path = entry.path or sample_path_for(entry.id)
        if isinstance(sample, LandmarkSequence):
            entry.n_frames, entry.layout = sample.n_frames, sample.layout
            sample = sequence_to_bytes(sample)
        atomic_write_bytes(self.cache.root / entry.path, sample)
        return entry

    def append_entries(self, entries: Iterable[ManifestEntry]) -> None:
        """Append manifest lines (buffered up to ``batch`` lines); the last line for an id wins."""
        with self._pending_lock:
            self._pending.extend(entries)
            if len(self._pending) >= self.batch:
                self._flush_locked()

    def flush(self) -> None:
        """Write the buffered manifest lines now (fsynced)."""
        with self._pending_lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        batch = list(self._pending)
        data = "".join(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in batch).encode()
        # All or nothing, whenever Ctrl-C's KeyboardInterrupt lands (between any two bytecodes)
        # or a full disk stops a write half-way: either the lines are in the file and no longer
        # buffered, or the file is as it was and they still are. (An interrupt between the write
        # and the clear() used to leave them buffered, and the closing flush appended them again.)
        fd = os.open(self.cache.manifest_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.fstat(fd).st_size
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                os.fsync(fd)
                self._pending.clear()
            except BaseException:
                os.ftruncate(fd, start)  # we hold the cache's lock: nobody appended since
                self._pending[:] = batch
                raise
        finally:
            os.close(fd)

    def rewrite(self, entries: Iterable[ManifestEntry]) -> None:
        """Replace the whole manifest atomically (one line per entry)."""
        with self._pending_lock:
            self._pending.clear()
        text = "".join(json.dumps(asdict(e), ensure_ascii=False) + "\n" for e in entries)
        atomic_write_bytes(self.cache.manifest_path, text.encode("utf-8"))

    def record_failure(self, file: str, reason: str) -> None:
        """Note that ``file`` could not be turned into a sample; replaces an older row for it."""
        self.clear_failures([file])
        path = self.cache.failures_path
        new = not path.is_file()
        buf = io.StringIO()
        w = csv.writer(buf)
        if new:
            w.writerow(["file", "reason"])
        w.writerow([file, " ".join(reason.split())])
        with path.open("a", newline="", encoding="utf-8") as f:
            f.write(buf.getvalue())

    def record_failures(self, rows: Iterable[tuple[str, str]]) -> None:
        """:meth:`record_failure` for many files at once (one read and one append, not one
        per file: a batch may have thousands)."""
        rows = [(file, " ".join(reason.split())) for file, reason in rows]
        if not rows:
            return
        self.clear_failures(file for file, _ in rows)
        path = self.cache.failures_path
        buf = io.StringIO()
        w = csv.writer(buf)
        if not path.is_file():
            w.writerow(["file", "reason"])
        w.writerows(rows)
        with path.open("a", newline="", encoding="utf-8") as f:
            f.write(buf.getvalue())

    def clear_failures(self, files: Iterable[str]) -> None:
        """Forget earlier failures of ``files`` (they are being retried)."""
        files = set(files)
        old = self.cache.failures()
        keep = [(f, r) for f, r in old if f not in files]
        if len(keep) == len(old):
            return
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", "reason"])
        w.writerows(keep)
        atomic_write_bytes(self.cache.failures_path, buf.getvalue().encode("utf-8"))


def _parse_line(line: str | bytes) -> ManifestEntry:
    return ManifestEntry.from_dict(json.loads(line))


def _read_manifest(path: Path) -> Iterator[ManifestEntry]:
    with path.open(encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield _parse_line(line)
        except (json.JSONDecodeError, TypeError) as e:
            if n == len(lines) - 1:  # a torn last line from a killed writer: ignore it
                continue
            raise CacheError(f"{path}: line {n + 1} is not a manifest entry ({e})") from e


def _repair_torn_tail(path: Path) -> None:
    """Make the manifest end with a newline, so appends start on a fresh line: a last line cut
    short by a killed writer is dropped; one that lacks only its newline is kept (readers have
    already counted it, and a rerun must skip its sample rather than extract it again)."""
    if not path.is_file():
        return
    raw = path.read_bytes()
    if not raw or raw.endswith(b"\n"):
        return
    cut = raw.rfind(b"\n") + 1
    try:
        _parse_line(raw[cut:])
    except (ValueError, TypeError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        atomic_write_bytes(path, raw[:cut])
    else:
        atomic_write_bytes(path, raw + b"\n")


def load_cache_arrays(
    root: str | Path, split: str | None = None
) -> tuple[list[ManifestEntry], list[LandmarkSequence]]:
    """All samples (optionally one split) of the cache at ``root``, loaded into memory."""
    cache = LandmarkCache(root)
    entries = cache.require_entries(split)
    try:
        return entries, cache.load_many(entries)
    except LandmarkFileError as e:
        raise CacheError(f"{root}: {e}") from e
