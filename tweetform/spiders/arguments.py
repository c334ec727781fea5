"""Spider arguments: validated once, before any request, with one clear line on error.

The same rules apply to ``-a name=value`` on the command line and to the keys
of a job message in Redis.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from tweetform.api import bluesky
from tweetform.api.endpoints import BLUESKY
from tweetform.config import BOOL_SPELLINGS
from tweetform.cost import parse_budget
from tweetform.job import ArgumentError, JobArgs, new_job_id

BUCKET = re.compile(r"^[A-Za-z0-9_-]+$")
JOB = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")  # never "." or "..": job ids name files too
SCREEN_NAME = re.compile(r"^@?[A-Za-z0-9_]{1,15}$")
COMMON = frozenset({"bucket", "api", "job", "budget"})
SEED_ARGUMENTS = {"users": {"user_id", "screen_name", "file"}, "tweets": {"tweet_id", "file"}, "query": {"query", "file", "queries"},
                  "lists": {"list_id", "file"}, "none": set()}  # none: the stream (its posts come from the app's rules)
GRANULARITIES = ("minute", "hour", "day")
FEED_FILTERS = ("posts_with_replies", "posts_no_replies", "posts_with_media", "posts_and_author_threads", "posts_with_video")
MAX_ID = 2**63 - 1  # the API's ids are signed 64-bit integers
#: one api=bluesky since_ids entry: a DID and the sort time of its newest post in the bucket (0: none)
SINCE_DID = r"did:(?:plc:[a-z2-7]{24}|web:[a-zA-Z0-9.-]{1,253})@(?:0|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"
DEEP_DEPTH = 3  # a network crawl this deep without max_users gets a warning with the plan's estimate


def is_id(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes '²' or Arabic-Indic digits, which int() refuses or reads."""
    return text.isascii() and text.isdigit()


def _ids(raw: str, name: str) -> list[int]:
    out = []
    for part in str(raw).split(","):
        part = part.strip()
        if not part:
            continue
        if not is_id(part) or int(part) == 0:
            raise ArgumentError(f"{name} must be numeric ids separated by commas; {part[:40]!r} is not an id")
        if int(part) > MAX_ID:
            raise ArgumentError(f"{name} {part[:40]} is past 64 bits: the API's ids are below 2^63")
        out.append(int(part))
    if not out:
        raise ArgumentError(f"{name} is empty")
    return out


def _names(raw: str) -> list[str]:
    out = []
    for part in str(raw).split(","):
        part = part.strip()
        if not part:
            continue
        if not SCREEN_NAME.match(part):
            raise ArgumentError(f"screen_name {part!r} is not a valid screen name (1-15 letters, digits or _)")
        out.append(part.lstrip("@"))
    if not out:
        raise ArgumentError("screen_name is empty")
    return out


def _positive(raw: Any, name: str, minimum: int = 1) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ArgumentError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ArgumentError(f"{name} must be at least {minimum}, not {value}")
    return value


def read_text_file(path: str) -> str:
    """A seeds file's text: one line when it cannot be read or is not text (UTF-8 without NUL bytes)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ArgumentError(f"file {path!r} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ArgumentError(f"file {path!r} is not text (not UTF-8 at byte {exc.start})") from None
    if "\x00" in text:
        raise ArgumentError(f"file {path!r} is not text (it holds NUL bytes)")
    return text


def read_id_file(path: str, numeric: bool) -> list[str]:
    """One id (or screen name) per line; blank lines and # comments skipped."""
    text = read_text_file(path)
    items = []
    for n, line in enumerate(text.splitlines(), 1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        if numeric and not is_id(value):
            if SCREEN_NAME.match(value):
                items.append(value)
                continue
            raise ArgumentError(f"file {path!r} line {n}: {value!r} is neither an id nor a screen name")
        items.append(value)
    if not items:
        raise ArgumentError(f"file {path!r} holds no ids")
    return items


def read_query_file(path: str) -> list[str]:
    """One query per line (twarc2 ``searches``); blank lines skipped. No comments: ``#`` starts hashtags."""
    text = read_text_file(path)
    queries = [line.strip() for line in text.splitlines() if line.strip()]
    if not queries:
        raise ArgumentError(f"file {path!r} holds no queries")
    return queries


def _query(text: str, where: str) -> str:
    if len(text) > 1024:
        raise ArgumentError(f"{where} is longer than 1024 characters")
    return text


def _bool(raw: Any, name: str) -> bool:
    """true or false (also 1/0, True/False: the spellings a boolean setting takes); anything else is refused."""
    text = str(raw).strip()
    if text not in BOOL_SPELLINGS:
        raise ArgumentError(f"{name} must be true or false, not {text[:40]!r}")
    return BOOL_SPELLINGS[text]


def _time(raw: Any, name: str) -> str:
    """An ISO 8601 time (``2026-11-01``, ``2026-11-01T12:00:00Z``) as the API's ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""
    text = str(raw).strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ArgumentError(f"{name} must be an ISO 8601 time like 2026-11-01T00:00:00Z, not {text[:40]!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _split(raw: Any) -> list[str]:
    return [p.strip() for p in str(raw).split(",") if p.strip()]


def _did(value: str, where: str) -> str:
    if not bluesky.is_did(value):
        raise ArgumentError(f"{where} {value[:80]!r} is not a DID (did:plc: and 24 letters a-z or digits 2-7, or did:web:HOST)")
    return value


def _handle(value: str, where: str) -> str:
    value = value.lstrip("@")
    if not bluesky.is_handle(value):
        raise ArgumentError(f"{where} {value[:80]!r} is not a Bluesky handle (a domain name like alice.bsky.social)")
    return value.lower()


def _post_uri(value: str, where: str) -> str:
    if not bluesky.POST_URI.match(value):
        raise ArgumentError(f"{where} {value[:80]!r} is not a post URI (at://DID/app.bsky.feed.post/RKEY)")
    return value


def _bluesky_seeds(args: JobArgs, raw: dict[str, Any], seeds: str) -> None:
    """api=bluesky: user_id takes DIDs, screen_name handles, tweet_id at:// post URIs; file= any of them."""
    from_file = read_id_file(str(raw["file"]), numeric=False) if "file" in raw else []
    if seeds == "users":
        if not any(k in raw for k in ("user_id", "screen_name", "file")):
            raise ArgumentError("give user_id (DIDs), screen_name (handles) or file=PATH")
        if "user_id" in raw and "screen_name" in raw:
            raise ArgumentError("give user_id or screen_name, not both")
        args.dids = [_did(v, "user_id") for v in _split(raw.get("user_id", ""))]
        args.handles = [_handle(v, "screen_name") for v in _split(raw.get("screen_name", ""))]
        for value in from_file:
            if value.startswith("did:"):
                args.dids.append(_did(value, f"file {raw['file']!r}:"))
            else:
                args.handles.append(_handle(value, f"file {raw['file']!r}:"))
        if not args.dids and not args.handles:
            raise ArgumentError("user_id/screen_name is empty")
    elif seeds == "tweets":
        args.uris = [_post_uri(v, "tweet_id") for v in [*_split(raw.get("tweet_id", "")), *from_file]]
        if not args.uris:
            raise ArgumentError("give tweet_id (at:// post URIs, comma-separated) or file=PATH")
    elif seeds == "query":
        query = str(raw.get("query") or "").strip()
        if not query:
            raise ArgumentError(f"{args.spider} needs query=TEXT")
        args.query = _query(query, "query")
    else:
        raise ArgumentError(f"{args.spider} does not work with api=bluesky")


def parse_args(
    spider: str, raw: dict[str, Any], *, allowed: Iterable[str], default_bucket: str, default_api: str, seeds: str = "users"
) -> JobArgs:
    """Validate spider arguments. ``seeds`` is "users", "tweets" or "query"."""
    allowed = set(allowed) | COMMON | SEED_ARGUMENTS[seeds]
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ArgumentError(f"unknown argument {unknown[0]!r} for spider {spider!r}; it takes: {', '.join(sorted(allowed))}")
    api = str(raw.get("api") or default_api).strip().lstrip("v")
    if api not in ("2", "1.1", BLUESKY):
        raise ArgumentError(f"api must be 2, 1.1 or bluesky, not {raw.get('api')!r}")
    bucket = str(raw["bucket"]) if raw.get("bucket") is not None else default_bucket
    if not bucket.strip():
        raise ArgumentError("bucket is empty: give a plain word of letters, digits, _ or - (or leave bucket out for the default)")
    if not BUCKET.match(bucket):
        raise ArgumentError(f"bucket {bucket!r} must be a plain word of letters, digits, _ or -")
    if bucket == "_jobs":
        raise ArgumentError("bucket '_jobs' holds the job manifests (<output>/_jobs/<job>.json): choose another name")
    job = str(raw["job"]) if raw.get("job") is not None else new_job_id(spider)
    if not JOB.match(job):
        raise ArgumentError(f"job {job[:100]!r} must be 1-80 letters, digits, _, . or -, starting with a letter or digit")
    args = JobArgs(spider=spider, job=job, api=api, bucket=bucket)

    if api == BLUESKY:
        _bluesky_seeds(args, raw, seeds)
    elif seeds == "tweets":
        if "tweet_id" in raw:
            args.tweet_ids = _ids(raw["tweet_id"], "tweet_id")
        if "file" in raw:
            for value in read_id_file(str(raw["file"]), numeric=True):
                if not is_id(value):
                    raise ArgumentError(f"file {raw['file']!r}: {value!r} is not a tweet id")
                args.tweet_ids.append(int(value))
        if not args.tweet_ids and "conversation_id" not in raw:
            raise ArgumentError("give tweet_id (one or a comma-separated list) or file=PATH")
    elif seeds == "users":
        given = [k for k in ("user_id", "screen_name", "file") if k in raw]
        if not given:
            raise ArgumentError("give user_id, screen_name or file=PATH")
        if "user_id" in raw and "screen_name" in raw:
            raise ArgumentError("give user_id or screen_name, not both")
        if "user_id" in raw:
            args.user_ids = _ids(raw["user_id"], "user_id")
        if "screen_name" in raw:
            args.screen_names = _names(raw["screen_name"])
        if "file" in raw:
            for value in read_id_file(str(raw["file"]), numeric=True):
                if is_id(value):
                    args.user_ids.append(int(value))
                else:
                    args.screen_names.append(value.lstrip("@"))
    elif seeds == "query":
        query = raw.get("query")
        if query is not None and str(query).strip():
            args.query = _query(str(query).strip(), "query")
        if "file" in raw:
            args.queries = [_query(q, f"a query of {raw['file']!r}") for q in read_query_file(str(raw["file"]))]
        if "queries" in raw:  # a job message's queries (the lines of the file, read where the job was made)
            try:
                given = json.loads(str(raw["queries"]))
            except ValueError:
                given = None
            if not isinstance(given, list) or not all(isinstance(q, str) and q.strip() for q in given):
                raise ArgumentError("queries must be a JSON array of query strings")
            args.queries = [_query(q.strip(), "a query") for q in given]
        if not args.all_queries:
            raise ArgumentError(f"{spider} needs query=TEXT or file=PATH (one query per line)")
    elif seeds == "lists":
        if "list_id" in raw:
            args.list_ids = _ids(raw["list_id"], "list_id")
        if "file" in raw:
            for value in read_id_file(str(raw["file"]), numeric=True):
                if not is_id(value):
                    raise ArgumentError(f"file {raw['file']!r}: {value!r} is not a list id")
                args.list_ids.append(int(value))
        if not args.list_ids:
            raise ArgumentError("give list_id (one or a comma-separated list) or file=PATH")

    if "data_type" in raw:
        if raw["data_type"] not in ("ids", "users"):
            raise ArgumentError(f"data_type must be ids or users, not {raw['data_type']!r}")
        args.data_type = raw["data_type"]
    if "depth" in raw:
        args.depth = _positive(raw["depth"], "depth")
    if "max_users" in raw:
        args.max_users = _positive(raw["max_users"], "max_users")
    if "since_id" in raw:
        if str(raw["since_id"]).strip().lower() == "auto":
            args.since_ids = "auto"  # after the newest tweet already in the bucket, per user
        elif api == BLUESKY:
            raise ArgumentError("since_id takes auto only with api=bluesky (after the newest post already in the bucket): "
                                "Bluesky posts have no ordered ids")
        else:
            args.since_id = _ids(raw["since_id"], "since_id")[0]
    if "since_ids" in raw:
        args.since_ids = str(raw["since_ids"]).strip()
        if api == BLUESKY:  # did@newest post time (sort time, UTC ms; 0: none yet), from since_id=auto
            if not re.match(rf"^(auto|{SINCE_DID})(,(auto|{SINCE_DID}))*$", args.since_ids):
                raise ArgumentError(f"since_ids must be DID@time pairs separated by commas, not {raw['since_ids']!r}")
        elif not re.match(r"^(auto|\d{1,19}:\d{1,19})(,(auto|\d{1,19}:\d{1,19}))*$", args.since_ids):
            raise ArgumentError(f"since_ids must be user_id:tweet_id pairs separated by commas, not {raw['since_ids']!r}")
    if "max_tweets" in raw:
        args.max_tweets = _positive(raw["max_tweets"], "max_tweets")
    if "lang" in raw:
        if not re.match(r"^[a-z]{2,3}$", str(raw["lang"])):
            raise ArgumentError(f"lang must be a language code like en, not {raw['lang']!r}")
        args.lang = str(raw["lang"])
    if "geocode" in raw:
        if api != "1.1":
            raise ArgumentError("geocode works with api=1.1 only (v2 search has no geocode parameter)")
        parts = str(raw["geocode"]).split(",")
        try:
            ok = len(parts) == 3 and parts[2][-2:] in ("km", "mi") and float(parts[2][:-2]) > 0
            ok = ok and -90 <= float(parts[0]) <= 90 and -180 <= float(parts[1]) <= 180
        except ValueError:
            ok = False
        if not ok:
            raise ArgumentError(f"geocode must be LAT,LONG,RADIUS(km|mi), e.g. 37.78,-122.39,10km, not {raw['geocode']!r}")
        args.geocode = str(raw["geocode"])
    if "budget" in raw and api == BLUESKY:
        raise ArgumentError("budget: Bluesky's API is free, a budget has nothing to bound: leave budget out for api=bluesky")
    if "budget" in raw:
        try:
            args.budget = parse_budget(raw["budget"])  # math.inf: budget=unlimited
        except ValueError as exc:
            raise ArgumentError(str(exc)) from None
    if "skip_known" in raw and api == BLUESKY:
        raise ArgumentError("skip_known works with X's APIs only (Bluesky's reads cost nothing)")
    if "skip_known" in raw:
        args.skip_known = _bool(raw["skip_known"], "skip_known")
    if "archive" in raw:
        args.archive = _bool(raw["archive"], "archive")
        if args.archive and api != "2":
            raise ArgumentError("archive=true (full-archive search) needs api=2")
    for name in ("start_time", "end_time"):
        if name in raw:
            if api not in ("2", BLUESKY):
                raise ArgumentError(f"{name} works with api=2 or bluesky only")
            setattr(args, name, _time(raw[name], name))
    if args.start_time and args.end_time and args.start_time >= args.end_time:
        raise ArgumentError(f"start_time {args.start_time} is not before end_time {args.end_time}")
    if "granularity" in raw:
        if raw["granularity"] not in GRANULARITIES:
            raise ArgumentError(f"granularity must be minute, hour or day, not {raw['granularity']!r}")
        args.granularity = str(raw["granularity"])
    if "filter" in raw:
        if api != BLUESKY:
            raise ArgumentError("filter works with api=bluesky only (getAuthorFeed's filter)")
        if raw["filter"] not in FEED_FILTERS:
            raise ArgumentError(f"filter must be one of {', '.join(FEED_FILTERS)}, not {raw['filter']!r}")
        args.feed_filter = str(raw["filter"])
    if api == BLUESKY and args.since_ids and args.spider != "timeline":
        raise ArgumentError(f"since_id=auto works with api=bluesky on timeline only, not {args.spider}")
    if "conversation_id" in raw:
        args.conversation_ids = _ids(raw["conversation_id"], "conversation_id")
    return args
