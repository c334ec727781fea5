"""``scrapy export diff``: which follow lists are compared, and the CSV it writes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from tweetform.export.diff import diff_jobs, write_diff

ROOT = Path(__file__).resolve().parent.parent


def page(job: str, source: str, ids: list[int], endpoint: str = "/2/users/:id/following") -> dict:
    data = {"data": [{"id": str(i)} for i in ids]} if endpoint.startswith("/2/") else {"ids": ids}
    return {**data, "__tweetform": {"job": job, "endpoint": endpoint, "source_user_id": source, "key": source,
                                    "bucket": "friend_ids", "page_id": f"{job}-{source}-{endpoint}"}}


def test_only_lists_both_jobs_crawled_are_compared():
    pages = [
        page("a", "1", [2, 3]), page("b", "1", [3, 4]),  # 1's friends: 1→2 removed, 1→4 added
        page("a", "5", [6]),  # only job a expanded 5: not "removed"
        page("b", "7", [8]),  # only job b expanded 7: not "added"
        page("a", "9", [1], "/followers/ids"), page("b", "9", [1, 10], "/followers/ids"),  # 10 now follows 9
        page("c", "1", [99]),  # another job: ignored
    ]
    result = diff_jobs(pages, "a", "b")
    assert result.added == {("1", "4"), ("10", "9")} and result.removed == {("1", "2")}
    assert (result.compared, result.only_first, result.only_second) == (2, 1, 1)
    out = io.StringIO()
    assert write_diff(result, out) == 3
    assert out.getvalue().splitlines() == ["change,source,target", "removed,1,2", "added,1,4", "added,10,9"]
    assert result.summary("a", "b") == ("a → b: 2 edges added, 1 removed (3 → 4 edges in 2 lists both jobs crawled; "
                                        "not compared: 1 list only a crawled, 1 only b)")


def test_diff_needs_two_jobs_in_one_line(tmp_path: Path):
    (tmp_path / "friend_ids").mkdir()
    (tmp_path / "friend_ids" / "1.jsonl").write_text(json.dumps(page("c", "1", [2])) + "\n")
    for args, message in ((["diff", "a"], "give the two jobs to compare"),
                          (["diff", "a", "b"], "no pages of job 'a'"),
                          (["diff", "a", "../b"], "job '../b' must be")):
        result = subprocess.run([sys.executable, "-m", "scrapy", "export", *args, "--data", str(tmp_path)], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
