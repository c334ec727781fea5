"""Spider arguments: validated once, before any request, with one clear line on error.

The same rules apply to ``-a name=value`` on the command line and to the keys
of a job message in Redis.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

BUCKET = re.compile(r"^[A-Za-z0-9_-]+$")
JOB = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")  # never "." or "..": job ids name files too
SCREEN_NAME = re.compile(r"^@?[A-Za-z0-9_]{1,15}$")
COMMON = frozenset({"bucket", "api", "job", "budget"})
SEED_ARGUMENTS = {"users": {"user_id", "screen_name", "file"}, "tweets": {"tweet_id", "file"}, "query": {"query"}}
MAX_ID = 2**63 - 1  # the API's ids are signed 64-bit integers
MAX_MESSAGE_BYTES = 16 << 20  # a job message (Redis inbox, push, --legacy): about 800,000 ids
DEEP_DEPTH = 3  # a network crawl this deep without max_users gets a warning with the plan's estimate


class ArgumentError(ValueError):
    """A bad spider argument; the message is the one line shown to the user."""


@dataclass
class JobArgs:
    spider: str
    job: str
    api: str
    bucket: str
    user_ids: list[int] = field(default_factory=list)
    screen_names: list[str] = field(default_factory=list)
    tweet_ids: list[int] = field(default_factory=list)
    data_type: str = "ids"
    depth: int = 1
    max_users: int | None = None
    since_id: int | None = None
    since_ids: str = ""  # since_id=auto: "user_id:tweet_id,…" resolved from the output dir, "auto" for users not yet looked up (spiders/timeline.py)
    max_tweets: int | None = None
    query: str | None = None
    lang: str | None = None
    geocode: str | None = None
    archive: bool = False
    budget: float | None = None  # US dollars the job may spend (tweetform.cost.budget)
    skip_known: bool = False  # users/tweets: leave out ids already in the bucket

    def as_message(self) -> dict[str, Any]:
        """JSON-safe form without defaults (for Redis job messages and logs)."""
        defaults = {f.name: (f.default_factory() if f.default_factory is not MISSING else f.default) for f in fields(self)}
        return {k: v for k, v in self.__dict__.items() if k in ("spider", "job", "api", "bucket") or v != defaults.get(k)}


def new_job_id(spider: str) -> str:
    return f"{spider}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"


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


def read_id_file(path: str, numeric: bool) -> list[str]:
    """One id (or screen name) per line; blank lines and # comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ArgumentError(f"file {path!r} cannot be read: {exc.strerror}") from None
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


def parse_args(
    spider: str, raw: dict[str, Any], *, allowed: Iterable[str], default_bucket: str, default_api: str, seeds: str = "users"
) -> JobArgs:
    """Validate spider arguments. ``seeds`` is "users", "tweets" or "query"."""
    allowed = set(allowed) | COMMON | SEED_ARGUMENTS[seeds]
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ArgumentError(f"unknown argument {unknown[0]!r} for spider {spider!r}; it takes: {', '.join(sorted(allowed))}")
    api = str(raw.get("api") or default_api).strip().lstrip("v")
    if api not in ("2", "1.1"):
        raise ArgumentError(f"api must be 2 or 1.1, not {raw.get('api')!r}")
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

    if seeds == "tweets":
        if "tweet_id" in raw:
            args.tweet_ids = _ids(raw["tweet_id"], "tweet_id")
        if "file" in raw:
            for value in read_id_file(str(raw["file"]), numeric=True):
                if not is_id(value):
                    raise ArgumentError(f"file {raw['file']!r}: {value!r} is not a tweet id")
                args.tweet_ids.append(int(value))
        if not args.tweet_ids:
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
        if query is None or not str(query).strip():
            raise ArgumentError("search needs query=TEXT")
        args.query = str(query).strip()
        if len(args.query) > 1024:
            raise ArgumentError("query is longer than 1024 characters")

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
        else:
            args.since_id = _ids(raw["since_id"], "since_id")[0]
    if "since_ids" in raw:
        args.since_ids = str(raw["since_ids"]).strip()
        if not re.match(r"^(auto|\d{1,19}:\d{1,19})(,(auto|\d{1,19}:\d{1,19}))*$", args.since_ids):
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
    if "budget" in raw:
        try:
            args.budget = float(str(raw["budget"]).strip().lstrip("$"))
        except ValueError:
            raise ArgumentError(f"budget must be an amount in US dollars, like 5 or 2.50, not {raw['budget']!r}") from None
        if not args.budget > 0 or args.budget == float("inf"):
            raise ArgumentError(f"budget must be more than 0 US dollars, not {raw['budget']!r}")
    if "skip_known" in raw:
        args.skip_known = str(raw["skip_known"]).lower() in ("1", "true", "yes")
    if "archive" in raw:
        args.archive = str(raw["archive"]).lower() in ("1", "true", "yes")
        if args.archive and api != "2":
            raise ArgumentError("archive=true (full-archive search) needs api=2")
    return args


# --- job messages (Redis inboxes, ``scrapy push --legacy``): JSON types checked before the values ------------

_JSON_TYPES = {dict: "an object", list: "an array", bool: "a boolean", str: "a string", int: "a number", float: "a number"}
# one, a comma list, or a JSON array (the plural and "id" ones are tweetf0rm's command fields)
ID_FIELDS = frozenset({"user_id", "tweet_id", "screen_name", "user_ids", "tweet_ids", "ids", "screen_names", "id"})
INT_FIELDS = frozenset({"depth", "max_users", "max_tweets", "since_id"})
BOOL_FIELDS = frozenset({"archive", "skip_known"})
NUMBER_FIELDS = frozenset({"budget", "api"})
STRING_FIELDS = frozenset({"spider", "cmd", "job", "bucket", "query", "lang", "geocode", "data_type", "file"})


def _json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def check_message_size(raw: bytes | str, what: str = "job message") -> None:
    """Refuse a message too large to be one job (a worker would refuse it anyway)."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE_BYTES:
        raise ArgumentError(f"{what} is {size:,} bytes, more than the {MAX_MESSAGE_BYTES:,} allowed: split it into several jobs")


def decode_message(raw: bytes | str, what: str = "job message") -> dict[str, Any]:
    """A job message's JSON object, or ArgumentError saying what is wrong with it."""
    check_message_size(raw, what)
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno} column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise ArgumentError(f"{what} is not JSON{where}") from None
    except RecursionError:  # e.g. '[' * 50000: the decoder recurses once per level
        raise ArgumentError(f"{what} is nested too deeply") from None
    if not isinstance(message, dict):
        raise ArgumentError(f"{what} must be a JSON object, not {_json_type(message)}")
    return message


def message_arguments(message: dict[str, Any]) -> dict[str, str]:
    """A message's fields as spider argument strings; a field of the wrong JSON type is refused by name."""
    out: dict[str, str] = {}
    for name, value in message.items():
        if value is None:
            continue
        if not isinstance(name, str) or not name:
            raise ArgumentError("job message has an empty field name")
        kind = _json_type(value)
        if name in ID_FIELDS and isinstance(value, list):
            bad = next((v for v in value if isinstance(v, bool) or not isinstance(v, (str, int))), None)
            if bad is not None or not value:
                raise ArgumentError(f"{name} must be ids (numbers or strings), not an array holding {_json_type(bad) if value else 'nothing'}")
            out[name] = ",".join(str(v) for v in value)
        elif name in ID_FIELDS or name in INT_FIELDS:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ArgumentError(f"{name} must be a whole number{'' if name in INT_FIELDS else ' or a comma list'}, not {kind}")
            out[name] = str(value)
        elif name in BOOL_FIELDS:
            if not isinstance(value, (bool, str)):
                raise ArgumentError(f"{name} must be true or false, not {kind}")
            out[name] = ("true" if value else "false") if isinstance(value, bool) else value
        elif name in NUMBER_FIELDS:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise ArgumentError(f"{name} must be a number or a string, not {kind}")
            out[name] = str(value)
        elif name in STRING_FIELDS or isinstance(value, (dict, list)):
            if not isinstance(value, str):
                raise ArgumentError(f"{name} must be a string, not {kind}")
            out[name] = value
        else:  # other fields (unknown ones are refused by parse_args, by name)
            out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def legacy_command(raw: bytes | str, what: str = "tweetf0rm command") -> dict[str, Any]:
    """A tweetf0rm command's JSON object, its fields' JSON types checked (see ``from_legacy``)."""
    command = decode_message(raw, what)
    message_arguments(command)
    return command
