r"""The batch behind every ``islr import``: parallel, resumable, one failures.csv row per bad input.

A format lists its inputs as :class:`ImportJob`\ s and gives a ``convert(job) -> (sequence,
manifest entry)``; :func:`run_import` does the rest. Threads convert the inputs, other threads
write the sample files (fsynced, many at once); the calling thread appends their manifest lines
in input order once their files are written, so a sample's file is on disk before its line. A rerun skips every input whose size and mtime (and
stored layout) match its manifest entry (only its split is updated if ``--split`` changed).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from islr.errors import DatasetError
from islr.landmarks.cache import LandmarkCache, ManifestEntry, sample_path_for
from islr.landmarks.labels import LabelError, normalise_label
from islr.landmarks.sequence import LandmarkFileError, LandmarkSequence, sequence_to_bytes

_BATCH = 64  # manifest lines appended (and fsynced) per batch; sample files are written first
_WRITE_THREADS = 8

ProgressFn = Callable[[int, int, str], None]  # (done, total, current file)


@dataclass
class ImportSummary:
    """What one import run did."""

    format: str
    found: int = 0
    imported: int = 0
    skipped: int = 0  # unchanged since the last import
    resplit: int = 0  # unchanged, but given the new --split
    failures: list[tuple[str, str]] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)


class ImportFileError(ValueError):
    """One input file cannot be imported (recorded in failures.csv, the batch goes on)."""


@dataclass(frozen=True)
class ImportJob:
    """One input to import: a file (or, for MP_Data, a folder of frames).

    ``source`` is its POSIX path relative to the folder given to ``islr import`` (the manifest's
    ``source`` and the ``failures.csv`` row name it); ``size`` and ``mtime`` let a rerun skip it
    when unchanged; ``info`` carries what a listing already knows (label, signer...).
    """

    source: str
    path: Path
    size: int
    mtime: float
    info: dict = field(default_factory=dict, compare=False)


Convert = Callable[[ImportJob], tuple[LandmarkSequence, ManifestEntry]]


def file_job(path: Path, root: Path, **info) -> ImportJob:
    """An :class:`ImportJob` for ``path``, named relative to ``root``."""
    stat = path.stat()
    source = path.relative_to(root).as_posix() if path != root else path.name
    return ImportJob(source, path, stat.st_size, stat.st_mtime, dict(info))


def default_import_workers() -> int:
    """Threads converting files at once: the CPUs this process may use (at least 2: reading
    waits on the disk, zlib and pyarrow release the GIL)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(2, cpus)


def find_inputs(
    src: Path, suffix: str, skip: Callable[[Path], bool] = lambda p: False
) -> list[Path]:
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise DatasetError(f"{src}: no such file or folder")
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and p.suffix.lower() == suffix and not p.name.startswith(".") and not skip(p)
    )
    if not files:
        raise DatasetError(f"{src}: no {suffix} files found (is this the right folder?)")
    return files


def _reason(error: BaseException) -> str:
    """One line for failures.csv: our own errors as they are, anything else with its type."""
    if isinstance(error, ImportFileError | LandmarkFileError):
        return str(error)
    if isinstance(error, RecursionError):
        return "nested too deeply to read"
    if isinstance(error, OSError) and error.strerror:
        return f"cannot read: {error.strerror}"
    return f"{type(error).__name__}: {error}"


class _SampleIds:
    """Which input owns each sample id, shared by the converting threads: a sample file is only
    written by the input that claimed its id (another input with the same id fails)."""

    def __init__(self, existing: list[ManifestEntry], exists: Callable[[str], bool] | None):
        self._owner = {e.id: e.source for e in existing}
        self._exists = exists
        self._lock = threading.Lock()

    def claim(self, sample_id: str, source: str) -> None:
        with self._lock:
            other = self._owner.get(sample_id)
            if other and other != source and (self._exists is None or self._exists(other)):
                raise ImportFileError(
                    f"sample id {sample_id!r} was already imported from {other}; "
                    "import one of the two into another cache"
                )
            self._owner[sample_id] = source

    def release(self, sample_id: str, source: str) -> None:
        with self._lock:
            if self._owner.get(sample_id) == source:
                del self._owner[sample_id]


def _convert_one(convert: Convert, job: ImportJob, ids: _SampleIds):
    """Worker side: read and convert one input and claim its sample id; ``(entry, the sample
    file's bytes)``, or the exception."""
    try:
        seq, entry = convert(job)
        if not entry.id:
            raise ImportFileError("no sample id")
        if entry.label:  # the one form of a label (islr.landmarks.labels), whatever the format
            try:
                entry.label = normalise_label(entry.label)
            except LabelError as e:
                raise ImportFileError(f"label {entry.label!r}: {e}") from None
        try:
            sample_path_for(entry.id)
        except ValueError as e:
            raise ImportFileError(str(e)) from None
        entry.n_frames, entry.layout = seq.n_frames, seq.layout
        payload = sequence_to_bytes(seq)
        ids.claim(entry.id, job.source)
        return entry, payload
    except Exception as e:  # one bad input never stops the batch: it becomes its failure row
        return e


def run_import(
    fmt: str,
    jobs: list[ImportJob],
    out: str | Path,
    split: str,
    convert: Convert,
    progress: ProgressFn | None,
    layout: str | None = None,
    workers: int | None = None,
    exists: Callable[[str], bool] | None = None,
) -> ImportSummary:
    """Convert ``jobs`` in parallel threads into the cache at ``out``: writer threads save the
    sample files, this thread appends their manifest lines in job order (so a sample's file is
    on disk before its line). An input whose size and mtime (and, if given, stored ``layout``)
    match its manifest entry is skipped; a failed one becomes a failures.csv row.
    ``exists(source)`` tells whether an input is still there (for sample-id clashes)."""
    summary = ImportSummary(format=fmt, found=len(jobs))
    cache = LandmarkCache(out)
    with cache.writer(batch=_BATCH) as writer:
        existing = cache.entries() if cache.exists() else []
        by_source = {e.source: e for e in existing}
        todo: list[ImportJob] = []
        for job in jobs:
            old = by_source.get(job.source)
            if (
                old
                and old.source_size == job.size
                and old.source_mtime == job.mtime
                and (layout is None or old.layout == layout)
            ):
                summary.labels.add(old.label)
                if split and old.split != split:
                    writer.append_entries([replace(old, split=split)])
                    summary.resplit += 1
                else:
                    summary.skipped += 1
            else:
                todo.append(job)
        done = len(jobs) - len(todo)
        if progress is not None and done:
            progress(done, len(jobs), "")
        retried: list[str] = []
        failed: list[tuple[str, str]] = []
        n_threads = max(1, min(workers or default_import_workers(), len(todo) or 1))
        ids = _SampleIds(existing, exists)
        # Threads for the CPU work (reading, converting, compressing), as many as cores; more
        # threads for writing, which mostly waits on fsync: fsyncs in flight together are
        # committed together, where one at a time each waits for its own disk flush.
        cpu_pool = ThreadPoolExecutor(max_workers=n_threads)
        io_pool = ThreadPoolExecutor(max_workers=_WRITE_THREADS)
        window = 4 * n_threads  # jobs converting at once: memory stays flat on 94k files
        pending = deque(cpu_pool.submit(_convert_one, convert, j, ids) for j in todo[:window])
        writing: deque = deque()  # (job, entry, future of its file), in job order

        def finish_writes(block: bool) -> None:
            while writing and (block or writing[0][2].done()):
                job, entry, future = writing.popleft()
                error = future.exception()
                if error is not None:
                    ids.release(entry.id, job.source)
                    failed.append((job.source, _reason(error)))
                    continue
                old = by_source.get(job.source)
                entry.split = split or entry.split or (old.split if old else "")
                entry.source, entry.source_size, entry.source_mtime = (
                    job.source,
                    job.size,
                    job.mtime,
                )
                writer.append_entries([entry])  # its file is on disk already
                retried.append(job.source)
                summary.imported += 1
                summary.labels.add(entry.label)

        try:
            for n, job in enumerate(todo):
                result = pending.popleft().result()
                if n + window < len(todo):
                    pending.append(cpu_pool.submit(_convert_one, convert, todo[n + window], ids))
                if isinstance(result, BaseException):
                    failed.append((job.source, _reason(result)))
                else:
                    entry, payload = result
                    future = io_pool.submit(writer.write_sample, payload, entry)
                    writing.append((job, entry, future))
                finish_writes(block=len(writing) >= 4 * _WRITE_THREADS)
                if progress is not None:
                    progress(done + n + 1, len(jobs), job.source)
            finish_writes(block=True)
        finally:
            # on Ctrl-C: drop the queued jobs, let the running ones finish their files
            cpu_pool.shutdown(wait=True, cancel_futures=True)
            io_pool.shutdown(wait=True)
            writer.record_failures(failed)
            summary.failures.extend(failed)
        writer.clear_failures(retried)
    return summary
