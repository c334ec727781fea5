"""Packing finished bucket files into tar.gz archives (tweetf0rm archived its output hourly).

:func:`archive_bucket` moves every ``.jsonl`` / ``.jsonl.gz`` file of a bucket
that nobody has written for ``idle`` seconds and that no writer holds open into
one ``<bucket>/<bucket>-<UTC time>.tar.gz`` beside them. A crawl's bucket
pipeline holds a shared ``flock`` on every file it has open
(:mod:`tweetform.pipelines.buckets`); the archiver takes an exclusive one,
without waiting, and skips a file it cannot lock, so it never removes a file a
running crawl would go on appending to. It keeps its locks until the packed
files are removed: a writer opening one meanwhile waits, then finds the name
gone and starts a new file.

The archive is written under a temporary name, synced and checked before it
takes its name, and a file is removed only when it has not changed since it was
packed: a file another tool appended to meanwhile stays (its packed copy then
holds a prefix of it; readers skip pages they have already read, by page id).

Every reader (:func:`tweetform.export.files.iter_pages`) reads archives as it
reads plain and gzip files.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tarfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from tweetform.export.files import ARCHIVE, GZIP, JOBS_DIR, PLAIN

logger = logging.getLogger(__name__)


@dataclass
class ArchiveResult:
    bucket: str
    archive: Path
    files: int
    bytes_in: int
    bytes_out: int
    kept: list[Path] = field(default_factory=list)  # changed while being packed
    held: list[Path] = field(default_factory=list)  # idle, but a writer holds them open: not packed


def idle_files(folder: Path, idle: float, now: float) -> list[Path]:
    """Bucket files not modified for ``idle`` seconds, oldest first."""
    found = []
    for path in folder.iterdir():
        if not path.is_file() or not path.name.endswith((PLAIN, GZIP)) or path.name.startswith("."):
            continue
        mtime = path.stat().st_mtime
        if now - mtime >= idle:
            found.append((mtime, path.name, path))
    return [p for _, _, p in sorted(found)]


def lock_unheld(paths: list[Path], stack: ExitStack) -> tuple[list[Path], list[Path]]:
    """``(locked, held)``: the files this call could lock exclusively (kept locked until
    ``stack`` closes) and those a writer holds."""
    locked, held = [], []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            held.append(path)
            continue
        stack.callback(os.close, fd)
        locked.append(path)
    return locked, held


def archive_name(folder: Path, bucket: str, now: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    path = folder / f"{bucket}-{stamp}{ARCHIVE}"
    n = 2
    while path.exists():
        path = folder / f"{bucket}-{stamp}-{n}{ARCHIVE}"
        n += 1
    return path


def archive_bucket(root: Path, bucket: str, idle: float, now: float | None = None,
                   held: list[Path] | None = None) -> ArchiveResult | None:
    """Pack a bucket's idle files into a new archive; None when no file is idle and free.
    ``held``: gets the idle files left because a writer holds them."""
    now = time.time() if now is None else now
    folder = root / bucket
    if not folder.is_dir():
        return None
    with ExitStack() as locks:
        files, busy = lock_unheld(idle_files(folder, idle, now), locks)
        for path in busy:
            logger.info("%s is held open by a crawl: not archived", path)
        if held is not None:
            held += busy
        if not files:
            return None
        result = _pack(folder, bucket, files, now)
        result.held = busy
        return result


def _pack(folder: Path, bucket: str, files: list[Path], now: float) -> ArchiveResult:
    target = archive_name(folder, bucket, now)
    tmp = folder / f".{target.name}.part"
    packed: list[tuple[Path, int, int]] = []
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            for path in files:
                try:
                    st = path.stat()
                    tar.add(path, arcname=f"{bucket}/{path.name}", recursive=False)
                except FileNotFoundError:
                    continue  # archived by another run meanwhile
                packed.append((path, st.st_size, st.st_mtime_ns))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        with tarfile.open(tmp, "r:gz") as tar:  # read it back before anything is removed
            names = set(tar.getnames())
        missing = [p for p, _, _ in packed if f"{bucket}/{p.name}" not in names]
        if missing:
            raise OSError(f"archive check failed: {len(missing)} file(s) missing from {tmp.name}")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    result = ArchiveResult(bucket, target, len(packed), sum(size for _, size, _ in packed), target.stat().st_size)
    for path, size, mtime_ns in packed:
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        if st.st_size == size and st.st_mtime_ns == mtime_ns:
            path.unlink()
        else:
            result.kept.append(path)
            logger.warning("%s changed while it was archived: kept (its archived copy holds the older part)", path)
    return result


def buckets_in(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name != JOBS_DIR)
