"""A job: its validated arguments (:class:`JobArgs`), the one-line error for bad ones, and the
JSON job message format (Redis inboxes, ``scrapy push``, tweetf0rm commands).

The state layer stores and shares jobs, so the type lives here, below ``state`` and ``spiders``;
the spiders' argument rules (``spiders/arguments.py``) build it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

MAX_MESSAGE_BYTES = 16 << 20  # a job message (Redis inbox, push, --legacy): about 800,000 ids


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
    since_ids: str = ""  # since_id=auto: "user_id:tweet_id,…" (api=bluesky: "DID@time,…") resolved from the output dir, "auto" for users not yet looked up (spiders/timeline.py)
    max_tweets: int | None = None
    query: str | None = None
    lang: str | None = None
    geocode: str | None = None
    archive: bool = False
    budget: float | None = None  # US dollars the job may spend (tweetform.cost.budget); inf: unlimited; None: the default
    skip_known: bool = False  # users/tweets: leave out ids already in the bucket
    queries: list[str] = field(default_factory=list)  # search/counts file=: one query per line, each its own key
    start_time: str | None = None  # search/counts/timeline archive: ISO 8601 UTC, as the API takes it
    end_time: str | None = None
    granularity: str | None = None  # counts: minute, hour or day
    conversation_ids: list[int] = field(default_factory=list)  # conversation: given, so no look-up of the seeds
    list_ids: list[int] = field(default_factory=list)  # lists: relation lookup/members/followers/tweets
    relation: str | None = None  # lists: what of a list (or of a user's lists) to collect
    # api=bluesky seeds: DIDs (user_id=), handles (screen_name=, resolved to DIDs first), at:// post URIs (tweet_id=)
    dids: list[str] = field(default_factory=list)
    handles: list[str] = field(default_factory=list)
    uris: list[str] = field(default_factory=list)
    feed_filter: str | None = None  # timeline, api=bluesky: getAuthorFeed's filter (filter=)
    include: str | None = None  # cascade: the reactions followed (replies,quotes,retweets[,likes])

    @property
    def all_queries(self) -> list[str]:
        """Every query of a search or counts job (``query``, or the lines of ``file``)."""
        return ([self.query] if self.query else []) + self.queries


    @property
    def claim_cap(self) -> int | None:
        """The most ids the job's claims expand: users (friends, followers: ``max_users``) or posts
        (cascade: ``max_tweets``)."""
        return self.max_tweets if self.spider == "cascade" else self.max_users

    @property
    def conversations_job(self) -> str:
        """The job id under which a cascade claims the conversations it searches (each once per job,
        not counted in ``max_tweets``): the job's own id and ``:conversations``."""
        return f"{self.job}:conversations"

    @property
    def by_levels(self) -> bool:
        """Expanded level by level (the store keeps each level's claims in order, see ``state.base``):
        with a cap, and always for a cascade (a post's depth is its breadth-first level)."""
        return self.claim_cap is not None or self.spider == "cascade"

    def as_message(self) -> dict[str, Any]:
        """JSON-safe form without defaults (for Redis job messages and logs)."""
        defaults = {f.name: (f.default_factory() if f.default_factory is not MISSING else f.default) for f in fields(self)}
        out = {k: v for k, v in self.__dict__.items() if k in ("spider", "job", "api", "bucket") or v != defaults.get(k)}
        if out.get("budget") == float("inf"):
            out["budget"] = "unlimited"  # JSON has no infinity (tweetform.cost.UNLIMITED reads it back)
        return out


def new_job_id(spider: str) -> str:
    return f"{spider}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"



# --- job messages (Redis inboxes, ``scrapy push --legacy``): JSON types checked before the values ------------

_JSON_TYPES = {dict: "an object", list: "an array", bool: "a boolean", str: "a string", int: "a number", float: "a number"}
# one, a comma list, or a JSON array (the plural and "id" ones are tweetf0rm's command fields)
ID_FIELDS = frozenset({"user_id", "tweet_id", "screen_name", "user_ids", "tweet_ids", "ids", "screen_names", "id",
                       "list_id", "conversation_id"})
INT_FIELDS = frozenset({"depth", "max_users", "max_tweets", "since_id"})
BOOL_FIELDS = frozenset({"archive", "skip_known"})
NUMBER_FIELDS = frozenset({"budget", "api"})
STRING_FIELDS = frozenset({"spider", "cmd", "job", "bucket", "query", "lang", "geocode", "data_type", "file",
                           "start_time", "end_time", "granularity", "relation"})
#: a JSON array of strings, passed on as its JSON text (search/counts file=: the queries)
STRING_LIST_FIELDS = frozenset({"queries"})


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
        if name in STRING_LIST_FIELDS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ArgumentError(f"{name} must be an array of strings, not {kind}")
            out[name] = json.dumps(value)
        elif name in ID_FIELDS and isinstance(value, list):
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
