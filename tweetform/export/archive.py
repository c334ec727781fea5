"""Packing finished bucket files into tar.gz archives (tweetf0rm archived its output hourly).

:func:`archive_bucket` moves every ``.jsonl`` / ``.jsonl.gz`` file of a bucket
that nobody has written for ``idle`` seconds into one
``<bucket>/<bucket>-<UTC time>.tar.gz`` beside them. The archive is written
under a temporary name, synced and checked before it takes its name, and a
file is removed only when it has not changed since it was packed: a file a
crawl appended to meanwhile stays (its packed copy then holds a prefix of it;
readers skip pages they have already read, by page id).

Every reader (:func:`tweetform.export.files.iter_pages`) reads archives as it
reads plain and gzip files.
"""

from __future__ import annotations

import logging
import os
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tweetform.export.files import ARCHIVE, GZIP, PLAIN

logger = logging.getLogger(__name__)


@dataclass
class ArchiveResult:
    bucket: str
    archive: Path
    files: int
    bytes_in: int
    bytes_out: int
    kept: list[Path] = field(default_factory=list)  # changed while being packed


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


def archive_name(folder: Path, bucket: str, now: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    path = folder / f"{bucket}-{stamp}{ARCHIVE}"
    n = 2
    while path.exists():
        path = folder / f"{bucket}-{stamp}-{n}{ARCHIVE}"
        n += 1
    return path


def archive_bucket(root: Path, bucket: str, idle: float, now: float | None = None) -> ArchiveResult | None:
    """Pack a bucket's idle files into a new archive; None when no file is idle."""
    now = time.time() if now is None else now
    folder = root / bucket
    if not folder.is_dir():
        return None
    files = idle_files(folder, idle, now)
    if not files:
        return None
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
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
