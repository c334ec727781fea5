"""Compressed output and ``scrapy archive``: what was crawled reads back the same, compressed or packed."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from crawling import ROOT, bucket, run_crawl, unit_crawler

from tweetform.commands.export import export_graph, export_tweets, input_files
from tweetform.export.archive import archive_bucket
from tweetform.export.files import bucket_files, iter_pages
from tweetform.items import make_page, page_id
from tweetform.pipelines.buckets import BucketPipeline

FAST = ("--users", "3000", "--seed", "7", "--window", "1", "--limit", "/friends/ids=200", "--limit", "/followers/ids=200",
        "--limit", "/friends/list=200", "--limit", "/followers/list=200", "--limit", "/2/users/:id/following=200",
        "--limit", "/2/users/:id/followers=200")


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def scrapy(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


# --- gzip JSONL written directly ---------------------------------------------------------

def pipeline(tmp_path: Path) -> BucketPipeline:
    crawler = unit_crawler(settings_dict={"TWEETFORM_OUTPUT_DIR": str(tmp_path), "TWEETFORM_OUTPUT_COMPRESS": True})
    crawler.stats.open_spider()
    return BucketPipeline.from_crawler(crawler)


def page(n: int, key: str = "12"):
    url = f"http://x/2/users/{key}/following?pagination_token={n}"
    raw = json.dumps({"data": [{"id": str(1000 + n), "name": "A", "username": f"a{n}"}], "meta": {"result_count": 1}}).encode()
    prov = {"url": url, "endpoint": "/2/users/:id/following", "bucket": "friend_ids", "key": key, "source_user_id": key,
            "depth": 1, "job": "j", "page_id": page_id("j", "friend_ids", key, url)}
    return make_page(json.loads(raw), raw, prov)


def test_gzip_output_is_plain_gzip_and_written_once(tmp_path: Path):
    pipe = pipeline(tmp_path)
    for n in (1, 2, 1):
        pipe.process_item(page(n))
    pipe.close_spider()
    path = tmp_path / "friend_ids" / "12.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines()  # an ordinary (multi-member) gzip file
    assert [json.loads(x)["data"][0]["id"] for x in lines] == ["1001", "1002"]
    # a second run appends, and knows what the file holds already
    pipe = pipeline(tmp_path)
    for n in (2, 3):
        pipe.process_item(page(n))
    pipe.close_spider()
    assert [p["data"][0]["id"] for p in iter_pages([path])] == ["1001", "1002", "1003"]


def test_gzip_torn_last_member_is_cut(tmp_path: Path):
    pipe = pipeline(tmp_path)
    pipe.process_item(page(1))
    pipe.process_item(page(2))
    pipe.close_spider()
    path = tmp_path / "friend_ids" / "12.jsonl.gz"
    whole = path.read_bytes()
    with open(path, "ab") as fh:  # a writer killed in the middle of a member
        fh.write(gzip.compress(b'{"data":[{"id":"9"}],"__tweetform":{"page_id":"x"}}\n', mtime=0)[:25])
    assert [p["data"][0]["id"] for p in iter_pages([path])] == ["1001", "1002"]  # readers skip it
    pipe = pipeline(tmp_path)
    pipe.process_item(page(3))
    pipe.close_spider()
    assert path.read_bytes().startswith(whole)
    assert [p["data"][0]["id"] for p in iter_pages([path])] == ["1001", "1002", "1003"]


def test_compressed_crawl_exports_like_a_plain_one(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*FAST)
    ex = box.get("/_sandbox/examples")
    seed = ex["ordinary"][0]
    plain, packed = tmp_path / "plain", tmp_path / "gz"
    ok(run_crawl(box, "friends", plain, user_id=seed, depth=2, max_users=8))
    ok(run_crawl(box, "friends", packed, user_id=seed, depth=2, max_users=8, settings={"TWEETFORM_OUTPUT_COMPRESS": "True"}))
    gz_files = sorted(p.name for p in (packed / "friend_ids").iterdir())
    assert gz_files and all(n.endswith(".jsonl.gz") for n in gz_files)
    assert gz_files == sorted(p.name + ".gz" for p in (plain / "friend_ids").iterdir())
    for name in ("plain", "gz"):
        message = export_graph(input_files(tmp_path / name, ["friend_ids"], []), "csv", tmp_path / f"{name}.csv")
        assert message.startswith("wrote ")
    edges = {n: set((tmp_path / f"{n}.csv").read_text().splitlines()[1:]) for n in ("plain", "gz")}
    assert edges["plain"] == edges["gz"]
    truth = {f"{k},{t}" for k in bucket(plain, "friend_ids") for t in box.truth("following", int(k))}
    assert edges["gz"] == truth


# --- scrapy archive ----------------------------------------------------------------------

def age(folder: Path, seconds: float) -> None:
    past = time.time() - seconds
    for path in folder.iterdir():
        os.utime(path, (past, past))


def test_archive_round_trip(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*FAST)
    ex = box.get("/_sandbox/examples")
    data = tmp_path / "data"
    users = f"{ex['long_timeline'][0]},{ex['ordinary'][1]}"
    ok(run_crawl(box, "timeline", data, user_id=users, max_tweets=120))
    ok(run_crawl(box, "friends", data, user_id=ex["ordinary"][0], depth=2, max_users=6, api="1.1"))
    before = {b: export(data, b, tmp_path / f"before-{b}") for b in ("timelines", "friend_ids")}
    originals = {p.name: p.read_bytes() for b in ("timelines", "friend_ids") for p in (data / b).iterdir()}
    age(data / "timelines", 3600)
    age(data / "friend_ids", 3600)
    fresh = data / "friend_ids" / "999.jsonl"  # a file still being written: not idle, not archived
    shutil.copy(next((data / "friend_ids").glob("*.jsonl")), fresh)

    result = ok(scrapy("archive", "--older-than", "30", "--data", str(data)))
    assert "archived 2 files of timelines" in result.stdout
    archives = sorted((data / "timelines").glob("timelines-*.tar.gz"))
    assert len(archives) == 1 and not list((data / "timelines").glob("*.jsonl"))
    assert [p.name for p in (data / "friend_ids").glob("*.jsonl")] == ["999.jsonl"]
    with tarfile.open(archives[0]) as tar:  # the archive holds the files exactly as they were
        for member in tar.getmembers():
            fh = tar.extractfile(member)
            assert fh is not None and fh.read() == originals[Path(member.name).name]
    # every export reads the archives as it read the files
    fresh.unlink()
    after = {b: export(data, b, tmp_path / f"after-{b}") for b in ("timelines", "friend_ids")}
    assert after == before
    assert archive_bucket(data, "timelines", idle=30 * 60) is None  # nothing idle is left


def export(data: Path, bucket_name: str, target: Path) -> list[str]:
    files = input_files(data, [bucket_name], [])
    if bucket_name == "timelines":
        export_tweets(files, "csv", target)
        return sorted(line.split(",")[0] for line in target.read_text(encoding="utf-8").splitlines()[1:])
    export_graph(files, "csv", target)
    return sorted(target.read_text().splitlines())


def test_archive_keeps_a_file_written_while_packing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "friend_ids"
    folder.mkdir()
    for key in ("1", "2"):
        (folder / f"{key}.jsonl").write_text('{"ids":[3],"__tweetform":{"page_id":"p%s"}}\n' % key)
    age(folder, 600)
    real_add = tarfile.TarFile.add

    def add_then_append(self, name, *args, **kwargs):  # a crawl appends to 2.jsonl meanwhile
        real_add(self, name, *args, **kwargs)
        if str(name).endswith("2.jsonl"):
            with open(name, "a") as fh:
                fh.write('{"ids":[4],"__tweetform":{"page_id":"p3"}}\n')

    monkeypatch.setattr(tarfile.TarFile, "add", add_then_append)
    result = archive_bucket(tmp_path, "friend_ids", idle=60)
    assert result is not None and result.files == 2 and [p.name for p in result.kept] == ["2.jsonl"]
    assert not (folder / "1.jsonl").exists() and (folder / "2.jsonl").exists()
    # nothing lost, nothing twice: the archived prefix and the file are read as one
    pages = list(iter_pages(bucket_files(tmp_path, "friend_ids")))
    assert sorted(p["__tweetform"]["page_id"] for p in pages) == ["p1", "p2", "p3"]


def test_a_file_a_writer_holds_open_is_not_archived(tmp_path: Path):
    """Idle or not, a file the bucket pipeline still has open stays where it is (later pages
    would otherwise go to a removed file); once the writer lets go it is archived."""
    pipe = pipeline(tmp_path)
    pipe.process_item(page(1, key="1"))
    pipe.process_item(page(2, key="2"))
    pipe.files.pop(("friend_ids", "2")).close()  # the writer is done with 2.jsonl.gz
    age(tmp_path / "friend_ids", 3600)
    result = archive_bucket(tmp_path, "friend_ids", idle=60)
    assert result is not None and result.files == 1 and [p.name for p in result.held] == ["1.jsonl.gz"]
    pipe.process_item(page(3, key="1"))  # the crawl goes on writing to the file it holds
    pipe.close_spider()
    assert [p.name for p in (tmp_path / "friend_ids").glob("*.jsonl.gz")] == ["1.jsonl.gz"]
    again = archive_bucket(tmp_path, "friend_ids", idle=0)
    assert again is not None and again.files == 1 and not again.held
    pages = list(iter_pages(bucket_files(tmp_path, "friend_ids")))
    assert sorted(p["data"][0]["id"] for p in pages) == ["1001", "1002", "1003"]


def test_a_writer_opening_a_file_being_archived_starts_a_new_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tweetform.pipelines import buckets

    pipe = pipeline(tmp_path)
    pipe.process_item(page(1))
    pipe.close_spider()
    path = tmp_path / "friend_ids" / "12.jsonl.gz"
    real_hold = buckets.hold_shared
    calls = []

    def archived_meanwhile(fd: int) -> None:  # the archiver removes the file between open and lock
        calls.append(fd)
        if len(calls) == 1:
            assert archive_bucket(tmp_path, "friend_ids", idle=0) is not None
        real_hold(fd)

    monkeypatch.setattr(buckets, "hold_shared", archived_meanwhile)
    pipe = pipeline(tmp_path)
    pipe.process_item(page(2))
    pipe.close_spider()
    assert len(calls) == 2 and [p["data"][0]["id"] for p in iter_pages([path])] == ["1002"]  # not written to the removed file
    assert sorted(p["data"][0]["id"] for p in iter_pages(bucket_files(tmp_path, "friend_ids"))) == ["1001", "1002"]


def test_a_resumed_job_does_not_write_again_a_page_that_was_archived(tmp_path: Path):
    """Its file was archived after the first run; the second run (same job id) re-fetches a
    page: the archive made since the job started already holds it."""
    from tweetform.manifest import write_manifest

    write_manifest(tmp_path, "j", started="2026-01-01T00:00:00.000Z")
    pipe = pipeline(tmp_path)
    pipe.process_item(page(1))
    pipe.process_item(page(2))
    pipe.close_spider()
    assert archive_bucket(tmp_path, "friend_ids", idle=0) is not None
    pipe = pipeline(tmp_path)
    for n in (2, 1, 3):
        pipe.process_item(page(n))
    pipe.close_spider()
    assert pipe.stats.get_value("tweetform/pages/written") == 1
    assert [p["data"][0]["id"] for p in iter_pages([tmp_path / "friend_ids" / "12.jsonl.gz"])] == ["1003"]
    write_manifest(tmp_path, "j", started="2099-01-01T00:00:00.000Z")  # archives older than the job: not read
    fresh = pipeline(tmp_path)
    fresh._file("friend_ids", "12", "j")
    assert ("j", page(1)["__tweetform"]["page_id"]) not in fresh.files[("friend_ids", "12")].seen
    fresh.close_spider()


def test_since_id_auto_sees_tweets_in_archives_and_leaves_out_the_jobs_own(tmp_path: Path):
    from tweetform.spiders.arguments import parse_args
    from tweetform.spiders.timeline import resolve_auto_since_ids

    def timeline_page(job: str, key: str, ids: list[int]):
        url = f"http://x/2/users/{key}/tweets?job={job}&n={ids[0]}"
        raw = json.dumps({"data": [{"id": str(i), "text": "t"} for i in ids]}).encode()
        prov = {"url": url, "bucket": "timelines", "key": key, "job": job, "page_id": page_id(job, "timelines", key, url)}
        return make_page(json.loads(raw), raw, prov)

    pipe = pipeline(tmp_path)
    pipe.process_item(timeline_page("old", "1", [50, 40]))
    pipe.process_item(timeline_page("old", "2", [70]))
    pipe.close_spider()
    assert archive_bucket(tmp_path, "timelines", idle=0) is not None  # both files now only in the archive
    pipe = pipeline(tmp_path)
    pipe.process_item(timeline_page("newer", "1", [60, 55]))
    pipe.process_item(timeline_page("again", "2", [90]))  # the job being resolved, run before: left out
    pipe.close_spider()
    job = parse_args("timeline", {"user_id": "1,2,3", "since_id": "auto", "job": "again"}, allowed={"since_id"},
                     default_bucket="timelines", default_api="2")
    resolve_auto_since_ids(job, tmp_path)
    assert job.since_ids == "1:60,2:70,3:0"
