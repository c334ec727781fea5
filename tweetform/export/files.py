"""Reading bucket files, plain or compressed, and writing gzip JSONL a page at a time.

Every export and tool reads through :func:`iter_pages`, which takes the three
forms a bucket's pages can be in, alike:

* ``<key>.jsonl`` — one page per line, as the bucket pipeline writes them;
* ``<key>.jsonl.gz`` — the same lines gzip-compressed (``TWEETFORM_OUTPUT_COMPRESS``):
  every line is its own gzip *member*, appended with one ``write``, so the file is
  an ordinary multi-member gzip file (``zcat`` and :mod:`gzip` read it whole)
  and a killed writer leaves at most one torn member at the end, which
  :func:`complete_members_end` finds and the pipeline cuts off;
* ``<bucket>-<UTC time>.tar.gz`` — archives made by ``scrapy archive``, holding
  such files.

A page read twice (from an archive and from a file written again after it, or
from two archives) is yielded once: pages are identified by their job and
``__tweetform.page_id``. Two jobs that crawled the same lists each keep their
own pages; ``jobs=`` reads only the given jobs' pages.

``<output>/_jobs/`` holds job manifests (:mod:`tweetform.manifest`), not pages:
no reader takes it for a bucket.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable, Iterator

from tweetform.items import PROVENANCE

logger = logging.getLogger(__name__)

PLAIN = ".jsonl"
GZIP = ".jsonl.gz"
ARCHIVE = ".tar.gz"
_GZIP_WBITS = 31  # zlib: gzip header and trailer


def gzip_member(data: bytes) -> bytes:
    """``data`` as one complete gzip member (no timestamp: the same line gives the same bytes)."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def iter_members(fh: IO[bytes], chunk: int = 1 << 16) -> Iterator[tuple[int, bytes]]:
    """``(end offset, payload)`` of each complete gzip member of a stream, in order.

    Stops at the first member that is torn (a killed writer) or not gzip at all."""
    consumed = 0
    d = zlib.decompressobj(_GZIP_WBITS)
    out: list[bytes] = []
    while True:
        data = fh.read(chunk)
        if not data:
            return
        while data:
            try:
                out.append(d.decompress(data))
            except zlib.error:
                return
            if not d.eof:
                consumed += len(data)
                break
            used = len(data) - len(d.unused_data)
            consumed += used
            yield consumed, b"".join(out)
            data = d.unused_data
            d, out = zlib.decompressobj(_GZIP_WBITS), []


def complete_members_end(path: Path) -> int:
    """Where the last complete gzip member of a file ends (0 if none)."""
    end = 0
    with open(path, "rb") as fh:
        for end, _ in iter_members(fh):
            pass
    return end


def _lines_of_plain(fh: IO[bytes]) -> Iterator[bytes]:
    for line in fh:
        # a last line without its newline is a page only if it is whole (files from other
        # tools may end so); one still being written, or torn by a crash, is skipped
        if line.endswith(b"\n") or line.rstrip().endswith(b"}") and _is_json(line):
            yield line


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _lines_of_gzip(fh: IO[bytes]) -> Iterator[bytes]:
    """Whole lines of a gzip stream of any number of members; a torn last member ends it."""
    try:
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            for line in gz:
                if line.endswith(b"\n"):
                    yield line
    except (EOFError, gzip.BadGzipFile, zlib.error):
        return


def iter_archive_lines(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(member name, line)`` for every whole line of the bucket files in an archive."""
    for where, line in _lines_of_archive(path):
        yield where.rsplit("!", 1)[-1], line


def _lines_of_archive(path: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith((PLAIN, GZIP)):
                continue
            fh = tar.extractfile(member)
            if fh is None:
                continue
            name = f"{path}!{member.name}"
            lines = _lines_of_gzip(fh) if member.name.endswith(GZIP) else _lines_of_plain(fh)
            for line in lines:
                yield name, line


def iter_lines(path: Path) -> Iterator[tuple[str, bytes]]:
    """``(where, line)`` for every whole line of a plain, gzip or archive file."""
    name = path.name
    if name.endswith(ARCHIVE):
        yield from _lines_of_archive(path)
        return
    with open(path, "rb") as fh:
        lines = _lines_of_gzip(fh) if name.endswith(GZIP) else _lines_of_plain(fh) if name.endswith(PLAIN) else ()
        for line in lines:
            yield str(path), line


#: ``<output>/_jobs/``: job manifests, never a bucket
JOBS_DIR = "_jobs"


def bucket_files(root: Path, bucket: str) -> list[Path]:
    """The files holding a bucket's pages: plain, gzip and archives, archives first
    (they hold the oldest pages), each group sorted by name."""
    folder = root / bucket
    if bucket == JOBS_DIR or not folder.is_dir():
        return []
    files = [p for p in folder.iterdir() if p.is_file()]
    archives = sorted(p for p in files if p.name.endswith(ARCHIVE))
    pages = sorted(p for p in files if p.name.endswith((PLAIN, GZIP)))
    return archives + pages


def iter_keys_lines(root: Path, bucket: str, keys: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """``(key, line)`` for every whole line of the given keys of a bucket: their plain or gzip
    files and their copies in archives (each archive read once, whatever the number of keys)."""
    wanted = set(keys)
    folder = root / bucket
    if bucket == JOBS_DIR or not folder.is_dir() or not wanted:
        return
    for key in sorted(wanted):
        for suffix in (PLAIN, GZIP):
            path = folder / f"{key}{suffix}"
            if path.is_file():
                for _, line in iter_lines(path):
                    yield key, line
    for path in sorted(p for p in folder.iterdir() if p.name.endswith(ARCHIVE) and p.is_file()):
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                name = Path(member.name).name
                key = name[: -len(GZIP)] if name.endswith(GZIP) else name[: -len(PLAIN)] if name.endswith(PLAIN) else None
                if not member.isfile() or key not in wanted:
                    continue
                fh = tar.extractfile(member)
                if fh is not None:
                    for line in _lines_of_gzip(fh) if name.endswith(GZIP) else _lines_of_plain(fh):
                        yield key, line


@dataclass
class ReadStats:
    files: int = 0
    pages: int = 0
    duplicates: int = 0
    unreadable: int = 0
    other_jobs: int = 0  # pages of jobs not asked for
    jobs: set[str] = field(default_factory=set)  # the jobs whose pages were read
    seen: set[tuple[str, str]] = field(default_factory=set, repr=False)


def job_of(page: dict[str, Any]) -> str:
    prov = page.get(PROVENANCE)
    return str(prov.get("job") or "") if isinstance(prov, dict) else ""


def iter_pages(paths: Iterable[Path], stats: ReadStats | None = None,
               jobs: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every page (parsed JSON object) of the given files, each page once per job;
    ``jobs``: only pages of these jobs."""
    stats = stats if stats is not None else ReadStats()
    wanted = set(jobs) if jobs is not None else None
    for path in paths:
        stats.files += 1
        for where, line in iter_lines(Path(path)):
            if not line.strip():
                continue
            try:
                page = json.loads(line)
            except ValueError:
                stats.unreadable += 1
                logger.warning("skipping a line that is not JSON in %s", where)
                continue
            if not isinstance(page, dict):
                stats.unreadable += 1
                continue
            job = job_of(page)
            if wanted is not None and job not in wanted:
                stats.other_jobs += 1
                continue
            pid = (page.get(PROVENANCE) or {}).get("page_id") if isinstance(page.get(PROVENANCE), dict) else None
            if pid:
                if (job, pid) in stats.seen:
                    stats.duplicates += 1
                    continue
                stats.seen.add((job, pid))
            stats.jobs.add(job)
            stats.pages += 1
            yield page


def open_text_output(path: Path) -> IO[str]:
    """A text file to write an export to; ``.gz`` names are gzip-compressed."""
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "wb"), encoding="utf-8", newline="")
    return open(path, "w", encoding="utf-8", newline="")
