"""BucketPipeline: one line per page, written once, whole lines only, safe paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from tweetform.items import make_page, page_id
from tweetform.pipelines.buckets import BucketPipeline, line_for


def pipeline(tmp_path: Path) -> BucketPipeline:
    crawler = get_crawler(settings_dict={"TWEETFORM_OUTPUT_DIR": str(tmp_path)})
    crawler.stats.open_spider()
    return BucketPipeline.from_crawler(crawler)


def page(url: str, body: bytes, bucket: str = "friend_ids", key: str = "12"):
    prov = {"url": url, "bucket": bucket, "key": key, "page_id": page_id(bucket, key, url)}
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


@pytest.mark.parametrize("bucket,key", [("../x", "12"), ("ok", "../../etc/passwd"), ("ok", ".hidden"), ("a/b", "1")])
def test_unsafe_paths_are_refused(tmp_path: Path, bucket: str, key: str):
    p = pipeline(tmp_path / "out")
    with pytest.raises(DropItem):
        p.process_item(page("http://x/1", b'{"ids":[1]}', bucket=bucket, key=key))
    assert not any(Path(tmp_path).rglob("*.jsonl"))
