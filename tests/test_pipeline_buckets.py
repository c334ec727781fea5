"""BucketPipeline: one line per page, written once, whole lines only, safe paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scrapy.exceptions import DropItem

from crawling import unit_crawler

from tweetform.items import make_page, page_id
from tweetform.pipelines.buckets import BucketPipeline, line_for


def pipeline(tmp_path: Path) -> BucketPipeline:
    crawler = unit_crawler(settings_dict={"TWEETFORM_OUTPUT_DIR": str(tmp_path)})
    crawler.stats.open_spider()
    return BucketPipeline.from_crawler(crawler)


def page(url: str, body: bytes, bucket: str = "friend_ids", key: str = "12", job: str = "j1"):
    prov = {"url": url, "bucket": bucket, "key": key, "job": job, "page_id": page_id(job, bucket, key, url)}
    return make_page(json.loads(body), body, prov)


def test_raw_body_written_byte_for_byte_with_provenance(tmp_path: Path):
    raw = b'{"ids":[857699969263964161,12],"next_cursor":0,"note":"caf\\u00e9"}'
    line = line_for(page("http://x/1", raw))
    assert line.startswith(raw[:-1] + b',"__tweetform":')
    parsed = json.loads(line)
    assert parsed["ids"][0] == 857699969263964161 and parsed["__tweetform"]["key"] == "12"


def test_array_pages_are_wrapped(tmp_path: Path):
    raw = b'[{"id":1,"id_str":"1"}]'
    parsed = json.loads(line_for(page("http://x/t", raw)))
    assert parsed["page"] == [{"id": 1, "id_str": "1"}] and "__tweetform" in parsed


def test_same_page_twice_is_written_once_even_across_runs(tmp_path: Path):
    p = pipeline(tmp_path)
    p.process_item(page("http://x/1", b'{"ids":[1]}'))
    p.process_item(page("http://x/1", b'{"ids":[1]}'))
    p.process_item(page("http://x/2", b'{"ids":[2]}'))
    p.close_spider()
    again = pipeline(tmp_path)
    again.process_item(page("http://x/2", b'{"ids":[2]}'))
    again.close_spider()
    lines = (tmp_path / "friend_ids" / "12.jsonl").read_bytes().splitlines()
    assert [json.loads(x)["ids"] for x in lines] == [[1], [2]]


def test_torn_last_line_is_cut_when_reopened(tmp_path: Path):
    target = tmp_path / "friend_ids" / "12.jsonl"
    target.parent.mkdir(parents=True)
    whole = line_for(page("http://x/1", b'{"ids":[1]}'))
    target.write_bytes(whole + b'{"ids":[2,3')  # a writer killed mid-line
    p = pipeline(tmp_path)
    p.process_item(page("http://x/2", b'{"ids":[2,3]}'))
    p.close_spider()
    lines = target.read_bytes().splitlines()
    assert [json.loads(x)["ids"] for x in lines] == [[1], [2, 3]]


@pytest.mark.parametrize("bucket,key", [("../x", "12"), ("ok", "../../etc/passwd"), ("ok", ".hidden"), ("a/b", "1"), ("_jobs", "j1")])
def test_unsafe_paths_are_refused(tmp_path: Path, bucket: str, key: str):
    p = pipeline(tmp_path / "out")
    with pytest.raises(DropItem):
        p.process_item(page("http://x/1", b'{"ids":[1]}', bucket=bucket, key=key))
    assert not any(Path(tmp_path).rglob("*.jsonl"))


def lines_of(path: Path) -> list[tuple[str, list[int]]]:
    return [(p["__tweetform"]["job"], p["ids"]) for p in map(json.loads, path.read_bytes().splitlines())]


def test_a_later_job_writes_its_own_copy_of_the_same_pages(tmp_path: Path):
    """Longitudinal collection: next week's job fetches the same URLs (the first page of every
    list, always) and must write them; re-fetches within either job are written once."""
    first = pipeline(tmp_path)
    for url, ids in (("http://x/1", b"[1]"), ("http://x/2", b"[2]")):
        first.process_item(page(url, b'{"ids":%s}' % ids, job="week1"))
    first.close_spider()
    second = pipeline(tmp_path)
    second.process_item(page("http://x/1", b'{"ids":[1,3]}', job="week2"))
    second.process_item(page("http://x/1", b'{"ids":[1,3]}', job="week2"))  # a retry
    second.process_item(page("http://x/2", b'{"ids":[2]}', job="week1"))  # week1 resumed: already there
    second.close_spider()
    assert lines_of(tmp_path / "friend_ids" / "12.jsonl") == [("week1", [1]), ("week1", [2]), ("week2", [1, 3])]
    assert second.stats.get_value("tweetform/pages/written") == 1
    assert second.stats.get_value("tweetform/pages/duplicate_skipped") == 2


def test_page_id_is_job_bucket_key_and_url():
    assert page_id("a", "friend_ids", "12", "http://x/1") == page_id("a", "friend_ids", "12", "http://x/1")
    assert len({page_id(*args) for args in (("a", "b", "12", "u"), ("z", "b", "12", "u"), ("a", "c", "12", "u"),
                                            ("a", "b", "13", "u"), ("a", "b", "12", "v"))}) == 5


def test_two_writers_of_one_file_write_each_page_once(tmp_path: Path):
    """A writer that was opened first still learns what another appended since (it reads
    the file's new tail under the write lock before each append)."""
    a, b = pipeline(tmp_path), pipeline(tmp_path)
    a.process_item(page("http://x/1", b'{"ids":[1]}'))  # both now hold 12.jsonl open
    b.process_item(page("http://x/2", b'{"ids":[2]}'))
    a.process_item(page("http://x/2", b'{"ids":[2]}'))
    b.process_item(page("http://x/1", b'{"ids":[1]}'))
    b.process_item(page("http://x/3", b'{"ids":[3]}'))
    a.close_spider()
    b.close_spider()
    assert lines_of(tmp_path / "friend_ids" / "12.jsonl") == [("j1", [1]), ("j1", [2]), ("j1", [3])]


def test_a_torn_line_left_by_another_writer_is_cut_before_the_next_append(tmp_path: Path):
    p = pipeline(tmp_path)
    p.process_item(page("http://x/1", b'{"ids":[1]}'))
    target = tmp_path / "friend_ids" / "12.jsonl"
    with open(target, "ab") as fh:  # another process killed in the middle of its write
        fh.write(b'{"ids":[9,9')
    p.process_item(page("http://x/2", b'{"ids":[2]}'))
    p.close_spider()
    assert lines_of(target) == [("j1", [1]), ("j1", [2])]


def test_the_manifest_folder_is_no_bucket():
    from tweetform.job import ArgumentError
    from tweetform.spiders.arguments import parse_args

    with pytest.raises(ArgumentError, match="_jobs"):
        parse_args("friends", {"user_id": "12", "bucket": "_jobs"}, allowed=(), default_bucket="friend_ids", default_api="2")
