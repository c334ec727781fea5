"""Bad input (issue 11 §6): each mistake is one clear line naming the field and the problem.

Most cases run the parsers in-process (job messages, tweetf0rm commands,
credentials, proxies, settings); the last ones run the real CLI (exit 2, one
line, nothing written anywhere) and a real worker (a dead-letter entry with the
reason for each bad message, and the worker goes on to finish a good job).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from crawling import ROOT, bucket, crawl_env, demo_credentials
from scrapy.settings import BaseSettings

from tweetform.config import SettingsError, check_types, env_overrides, load_local_settings, parse_env_value, type_problem
from tweetform.credentials import CredentialError, parse_credentials
from tweetform.proxies.config import ProxyConfigError, parse_proxy_file
from tweetform.job import MAX_MESSAGE_BYTES, ArgumentError
from tweetform.spiders.lookup import TweetsSpider, UsersSpider
from tweetform.spiders.network import FriendsSpider
from tweetform.spiders.search import SearchSpider
from tweetform.spiders.timeline import TimelineSpider
from tweetform.state.redis.jobs import parse_message
from tweetform.testing.servers import free_port

PAST_64_BITS = 2**64  # 18446744073709551616


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text
    return text


# --- job messages: native ones (a spider's Redis inbox) -------------------------------------------

NATIVE = [
    ("not-json", FriendsSpider, b'{"user_id": 12,', "job message is not JSON (line 1"),
    ("not-utf8", FriendsSpider, b'\xff\xfe{"user_id": 1}', "job message is not JSON"),
    ("array", FriendsSpider, b"[12, 13]", "job message must be a JSON object, not an array"),
    ("string", FriendsSpider, b'"friends 12"', "job message must be a JSON object, not a string"),
    ("number", FriendsSpider, b"12", "job message must be a JSON object, not a number"),
    ("unknown-spider", FriendsSpider, b'{"spider": "enemies", "user_id": "12"}', "message for spider 'enemies' found in 'friends'"),
    ("spider-not-string", FriendsSpider, b'{"spider": 7, "user_id": "12"}', "message for spider '7'"),
    ("unknown-argument", FriendsSpider, b'{"user_id": "12", "colour": "red"}', "unknown argument 'colour'"),
    ("user_id-object", FriendsSpider, b'{"user_id": {"id": 12}}', "user_id must be a whole number or a comma list, not an object"),
    ("user_id-boolean", FriendsSpider, b'{"user_id": true}', "user_id must be a whole number or a comma list, not a boolean"),
    ("user_id-array-of-objects", FriendsSpider, b'{"user_id": [12, {"x": 1}]}', "user_id must be ids (numbers or strings), not an array holding an object"),
    ("user_id-float", FriendsSpider, b'{"user_id": 12.5}', "user_id must be a whole number or a comma list, not a number"),
    ("user_id-negative", FriendsSpider, b'{"user_id": -12}', "'-12' is not an id"),
    ("user_id-past-64-bits", FriendsSpider, b'{"user_id": %d}' % PAST_64_BITS, "user_id 18446744073709551616 is past 64 bits"),
    ("user_id-string-past-64-bits", FriendsSpider, b'{"user_id": "12,9223372036854775808"}', "user_id 9223372036854775808 is past 64 bits"),
    ("tweet_id-past-64-bits", TweetsSpider, b'{"tweet_id": "99999999999999999999"}', "tweet_id 99999999999999999999 is past 64 bits"),
    ("since_id-past-64-bits", TimelineSpider, b'{"user_id": 12, "since_id": %d}' % PAST_64_BITS, "since_id 18446744073709551616 is past 64 bits"),
    ("depth-string", FriendsSpider, b'{"user_id": 12, "depth": "deep"}', "depth must be a whole number, not 'deep'"),
    ("depth-array", FriendsSpider, b'{"user_id": 12, "depth": [2]}', "depth must be a whole number, not an array"),
    ("depth-boolean", FriendsSpider, b'{"user_id": 12, "depth": true}', "depth must be a whole number, not a boolean"),
    ("depth-zero", FriendsSpider, b'{"user_id": 12, "depth": 0}', "depth must be at least 1, not 0"),
    ("depth-fraction", FriendsSpider, b'{"user_id": 12, "depth": 2.5}', "depth must be a whole number, not a number"),
    ("max_users-object", FriendsSpider, b'{"user_id": 12, "max_users": {}}', "max_users must be a whole number, not an object"),
    ("data_type-number", FriendsSpider, b'{"user_id": 12, "data_type": 1}', "data_type must be a string, not a number"),
    ("data_type-value", FriendsSpider, b'{"user_id": 12, "data_type": "edges"}', "data_type must be ids or users, not 'edges'"),
    ("bucket-empty", FriendsSpider, b'{"user_id": 12, "bucket": ""}', "bucket is empty"),
    ("bucket-number", FriendsSpider, b'{"user_id": 12, "bucket": 5}', "bucket must be a string, not a number"),
    ("bucket-parent", FriendsSpider, b'{"user_id": 12, "bucket": "../../etc"}', "bucket '../../etc' must be a plain word"),
    ("bucket-absolute", FriendsSpider, b'{"user_id": 12, "bucket": "/tmp/x"}', "bucket '/tmp/x' must be a plain word"),
    ("job-dots", FriendsSpider, b'{"user_id": 12, "job": ".."}', "job '..' must be 1-80 letters"),
    ("job-slash", FriendsSpider, b'{"user_id": 12, "job": "a/../../b"}', "job 'a/../../b' must be 1-80 letters"),
    ("job-array", FriendsSpider, b'{"user_id": 12, "job": ["a"]}', "job must be a string, not an array"),
    ("api-object", FriendsSpider, b'{"user_id": 12, "api": {"v": 2}}', "api must be a number or a string, not an object"),
    ("api-value", FriendsSpider, b'{"user_id": 12, "api": 3}', "api must be 2, 1.1 or bluesky, not '3'"),
    ("archive-number", SearchSpider, b'{"query": "x", "archive": 1}', "archive must be true or false, not a number"),
    ("query-array", SearchSpider, b'{"query": ["a", "b"]}', "query must be a string, not an array"),
    ("query-empty", SearchSpider, b'{"query": "   "}', "search needs query=TEXT"),
    ("query-too-long", SearchSpider, json.dumps({"query": "x" * 1025}).encode(), "query is longer than 1024 characters"),
    ("lang-number", SearchSpider, b'{"query": "x", "lang": 12}', "lang must be a string, not a number"),
    ("max_tweets-negative", TimelineSpider, b'{"user_id": 12, "max_tweets": -5}', "max_tweets must be at least 1, not -5"),
    ("screen_name-number-array", UsersSpider, b'{"screen_name": [true]}', "screen_name must be ids (numbers or strings), not an array holding a boolean"),
    ("no-seed", FriendsSpider, b'{"depth": 2}', "give user_id, screen_name or file=PATH"),
    ("screen_name-object", FriendsSpider, b'{"screen_name": {"n": "jack"}}', "screen_name must be a whole number or a comma list, not an object"),
    ("tweet_id-object", TweetsSpider, b'{"tweet_id": {"id": 1}}', "tweet_id must be a whole number or a comma list, not an object"),
    ("file-number", FriendsSpider, b'{"file": 12}', "file must be a string, not a number"),
    ("since_id-object", TimelineSpider, b'{"user_id": 12, "since_id": {}}', "since_id must be a whole number, not an object"),
    ("max_tweets-string", TimelineSpider, b'{"user_id": 12, "max_tweets": "lots"}', "max_tweets must be a whole number, not 'lots'"),
    ("geocode-array", SearchSpider, b'{"query": "x", "api": "1.1", "geocode": [1, 2]}', "geocode must be a string, not an array"),
    ("budget-object", FriendsSpider, b'{"user_id": 12, "budget": {"usd": 5}}', "budget must be a number or a string, not an object"),
    ("skip_known-number", UsersSpider, b'{"user_id": 12, "skip_known": 1}', "skip_known must be true or false, not a number"),
    ("oversized", FriendsSpider, b'{"user_id": "' + b"12," * (MAX_MESSAGE_BYTES // 3) + b'12"}',
     f"job message is {MAX_MESSAGE_BYTES // 3 * 3 + 17:,} bytes, more than the {MAX_MESSAGE_BYTES:,} allowed: split it into several jobs"),
]


@pytest.mark.parametrize("spider,raw,message", [c[1:] for c in NATIVE], ids=[c[0] for c in NATIVE])
def test_bad_native_job_message(spider: Any, raw: bytes, message: str):
    with pytest.raises(ArgumentError) as caught:
        parse_message(raw, spider, "2")
    assert message in one_line(caught.value)


# --- tweetf0rm's commands (legacy messages, in an inbox or `scrapy push --legacy`) -----------------

LEGACY = [
    ("cmd-unknown", FriendsSpider, {"cmd": "CRAWL_ENEMIES", "user_id": 12}, "unknown tweetf0rm command 'CRAWL_ENEMIES'"),
    ("cmd-number", FriendsSpider, {"cmd": 5, "user_id": 12}, "cmd must be a string, not a number"),
    ("cmd-null", FriendsSpider, {"cmd": None, "user_id": 12}, "unknown tweetf0rm command None"),
    ("user_id-object", FriendsSpider, {"cmd": "CRAWL_FRIENDS", "user_id": {"id": 12}}, "user_id must be a whole number or a comma list, not an object"),
    ("user_id-missing", FriendsSpider, {"cmd": "CRAWL_FRIENDS", "depth": 2}, "user_id is empty"),
    ("user_id-past-64-bits", FriendsSpider, {"cmd": "CRAWL_FRIENDS", "user_id": PAST_64_BITS}, "past 64 bits"),
    ("depth-string", FriendsSpider, {"cmd": "CRAWL_FRIENDS", "user_id": 12, "depth": "two"}, "depth must be a whole number, not 'two'"),
    ("depth-object", FriendsSpider, {"cmd": "CRAWL_FRIENDS", "user_id": 12, "depth": {"n": 2}}, "depth must be a whole number, not an object"),
    ("data_type-list", FriendsSpider, {"cmd": "CRAWL_FRIENDS", "user_id": 12, "data_type": ["ids"]}, "data_type must be a string, not an array"),
    ("bucket-empty", FriendsSpider, {"cmd": "CRAWL_FRIENDS", "user_id": 12, "bucket": ""}, "bucket is empty"),
    ("bucket-path", FriendsSpider, {"cmd": "CRAWL_FRIENDS", "user_id": 12, "bucket": "friend_ids/../../x"}, "must be a plain word"),
    ("batch-ids-string", FriendsSpider, {"cmd": "BATCH_CRAWL_FRIENDS", "user_ids": "12,13"}, "BATCH_CRAWL_FRIENDS needs a JSON list of ids"),
    ("batch-ids-objects", FriendsSpider, {"cmd": "BATCH_CRAWL_FRIENDS", "user_ids": [12, {"id": 13}]}, "user_ids must be ids (numbers or strings), not an array holding an object"),
    ("batch-ids-word", FriendsSpider, {"cmd": "BATCH_CRAWL_FRIENDS", "user_ids": [12, "thirteen"]}, "'thirteen' is not an id"),
    ("batch-ids-empty", FriendsSpider, {"cmd": "BATCH_CRAWL_FRIENDS", "user_ids": []}, "user_ids must be ids"),
    ("tweet-id-past-64-bits", TweetsSpider, {"cmd": "CRAWL_TWEET", "tweet_id": str(PAST_64_BITS)}, "tweet_id 18446744073709551616 is past 64 bits"),
    ("tweet-id-boolean", TweetsSpider, {"cmd": "CRAWL_TWEET", "tweet_id": True}, "tweet_id must be a whole number or a comma list, not a boolean"),
    ("search-no-query", SearchSpider, {"cmd": "SEARCH", "lang": "en"}, "SEARCH needs a query"),
    ("search-query-number", SearchSpider, {"cmd": "SEARCH", "query": 42}, "query must be a string, not a number"),
    ("screen-names-object", UsersSpider, {"cmd": "GET_UIDS_FROM_SCREEN_NAMES", "screen_names": {"a": 1}}, "screen_names must be a whole number or a comma list, not an object"),
    ("screen-names-invalid", UsersSpider, {"cmd": "GET_UIDS_FROM_SCREEN_NAMES", "screen_names": ["ok_name", "not a name!"]}, "'not a name!' is not a valid screen name"),
    ("wrong-inbox", TimelineSpider, {"cmd": "CRAWL_FRIENDS", "user_id": 12}, "message for spider 'friends' found in 'timeline'"),
    ("lang-number", SearchSpider, {"cmd": "SEARCH", "query": "x", "lang": 1}, "lang must be a string, not a number"),
    ("geocode-object", SearchSpider, {"cmd": "SEARCH", "query": "x", "geocode": {"lat": 1}}, "geocode must be a string, not an object"),
    ("job-number", FriendsSpider, {"cmd": "CRAWL_FRIENDS", "user_id": 12, "job": 7}, "job must be a string, not a number"),
    ("tweet-ids-objects", TweetsSpider, {"cmd": "BATCH_CRAWL_TWEET", "tweet_ids": [{"id": 1}]}, "tweet_ids must be ids (numbers or strings), not an array holding an object"),
    ("ids-boolean", FriendsSpider, {"cmd": "BATCH_CRAWL_FRIENDS", "ids": [True]}, "ids must be ids (numbers or strings), not an array holding a boolean"),
    ("id-object", TweetsSpider, {"cmd": "CRAWL_TWEET", "id": {"x": 1}}, "id must be a whole number or a comma list, not an object"),
    ("user-ids-number", UsersSpider, {"cmd": "GET_USERS_FROM_IDS", "user_ids": 12.5}, "user_ids must be a whole number or a comma list, not a number"),
]


@pytest.mark.parametrize("spider,command,message", [c[1:] for c in LEGACY], ids=[c[0] for c in LEGACY])
def test_bad_legacy_command(spider: Any, command: dict, message: str):
    with pytest.raises(ArgumentError) as caught:
        parse_message(json.dumps(command), spider, "2")
    assert message in one_line(caught.value)


def test_good_messages_still_parse():
    assert parse_message(b'{"user_id": [12, "13"], "depth": 2, "bucket": "b"}', FriendsSpider, "2").user_ids == [12, 13]
    job = parse_message(json.dumps({"cmd": "BATCH_CRAWL_FRIENDS", "user_ids": [12, 13], "depth": 2, "bucket": "friend_ids"}), FriendsSpider, "2")
    assert (job.user_ids, job.depth, job.bucket) == ([12, 13], 2, "friend_ids")
    assert parse_message(b'{"query": "a b", "archive": true}', SearchSpider, "2").archive is True
    assert parse_message(b'{"user_id": 9223372036854775807}', FriendsSpider, "2").user_ids == [2**63 - 1]  # the largest id


def test_empty_bucket_argument_is_refused_like_any_invalid_bucket():
    with pytest.raises(ArgumentError, match="bucket is empty"):
        FriendsSpider.parse_arguments({"user_id": "12", "bucket": ""})
    assert FriendsSpider.parse_arguments({"user_id": "12"}).bucket == "friend_ids"  # left out: the default


# --- config.json, proxy.json, settings_local.py, environment: values of the wrong type -------------

CREDENTIALS = [
    ("apikeys-list", {"apikeys": ["k1"]}, "apikeys must be an object of name -> keys"),
    ("apikeys-entry-string", {"apikeys": {"k1": "secret"}}, "apikeys['k1']: must be an object of keys, not a string"),
    ("app_key-number", {"apikeys": {"k1": {"app_key": 12345, "app_secret": "s"}}}, "credential 'k1': app_key must be a string, not a number"),
    ("token-list", [{"alias": "a", "bearer_token": ["t"]}], "credential 'a': bearer_token must be a string, not a list"),
    ("alias-number", [{"alias": 3, "bearer_token": "t"}], "alias must be a string, not a number"),
    ("credentials-object", {"credentials": {"alias": "a"}}, "credentials must be a list, not an object"),
    ("whole-file-number", 12, "expected a list of credentials or tweetf0rm's config.json, not a number"),
    ("proxies-number", [{"alias": "a", "bearer_token": "t", "proxies": 8080}], "proxies must be a list of 'host:port' strings"),
]


@pytest.mark.parametrize("data,message", [c[1:] for c in CREDENTIALS], ids=[c[0] for c in CREDENTIALS])
def test_bad_config_json(data: Any, message: str):
    with pytest.raises(CredentialError) as caught:
        parse_credentials(data, "config.json")
    text = one_line(caught.value)
    assert message in text and "secret" not in text.replace("app_secret", "")


SAME_RULES = [  # each of these was accepted by one of the two parsers and refused by the other
    ("unknown-key", [{"alias": "a", "bearer_token": "t", "colour": "red"}], "unknown keys ['colour']"),
    ("app_key-without-secret", [{"alias": "a", "app_key": "k", "oauth_token": "1-t", "oauth_token_secret": "ts"}], "app_secret is missing"),
    ("bearer-naming-its-app", [{"alias": "a", "app_key": "k", "bearer_token": "t"}], None),  # what scrapy authorize --bearer saves
    ("whitespace-in-a-secret", [{"alias": "a", "app_key": "k", "app_secret": "s s"}], "app_secret must not contain whitespace"),
    ("tweetf0rm-config", {"apikeys": {"k1": {"app_key": "k", "app_secret": "s", "oauth_token": "1-t", "oauth_token_secret": "ts"}},
                          "redis_config": {"host": "localhost"}}, None),
    ("proxies-pinned", [{"alias": "a", "bearer_token": "t", "proxies": ["127.0.0.1:8080"]}], None),
]


@pytest.mark.parametrize("data,message", [c[1:] for c in SAME_RULES], ids=[c[0] for c in SAME_RULES])
def test_the_crawler_and_the_sandbox_read_credentials_with_one_set_of_rules(data: Any, message: str | None, tmp_path: Path):
    """One parser (tweetform.credentials): a credentials file the crawler takes, the sandbox takes, and the other way round."""
    from tweetform.sandbox.credentials import load_credentials as sandbox_credentials

    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(data))
    if message is None:
        assert [c.alias for c in parse_credentials(data)] == [c.alias for c in sandbox_credentials(path)]
        return
    for read in (lambda: parse_credentials(data), lambda: sandbox_credentials(path)):
        with pytest.raises(CredentialError) as caught:
            read()
        assert message in one_line(caught.value)


@pytest.mark.parametrize("data,message", [
    ({"proxies": "127.0.0.1:8080"}, "expected {\"proxies\": [...]}"),
    ({"proxies": [8080]}, "proxies[0]: a proxy must be a non-empty string"),
    ({"proxies": [{"127.0.0.1:8080": "http", "x:1": "http"}]}, "proxies[0]: expected one"),
    ({"proxies": ["ftp://127.0.0.1:21"]}, "only http:// and https:// proxies"),
], ids=["proxies-string", "proxy-number", "proxy-pair-of-two", "proxy-scheme"])
def test_bad_proxy_json(data: Any, message: str):
    with pytest.raises(ProxyConfigError) as caught:
        parse_proxy_file(data, "proxy.json")
    assert message in one_line(caught.value)


@pytest.mark.parametrize("source,message", [
    ('CONCURRENT_REQUESTS = "many"\n', "CONCURRENT_REQUESTS must be an integer, not a string"),
    ("TWEETFORM_RETRY_BACKOFF = [1, 2]\n", "TWEETFORM_RETRY_BACKOFF must be a number, not a list"),
    ("TWEETFORM_API_BASE = ['http://x']\n", "TWEETFORM_API_BASE must be a string, not a list"),
    ("TWEETFORM_EXIT_WHEN_IDLE = 'sometimes'\n", "TWEETFORM_EXIT_WHEN_IDLE must be True or False, not a string"),
    ("TWEETFORM_CREDENTIAL_PROXIES = ['a']\n", "TWEETFORM_CREDENTIAL_PROXIES must be a dict, not a list"),
], ids=["int", "float", "str", "bool", "dict"])
def test_settings_local_value_of_the_wrong_type(tmp_path: Path, source: str, message: str):
    import tweetform.settings as defaults

    path = tmp_path / "settings_local.py"
    path.write_text(source)
    with pytest.raises(SettingsError) as caught:
        check_types(load_local_settings(path), vars(defaults), str(path))
    assert one_line(caught.value) == f"{path}: {message}"


def test_settings_local_that_cannot_run_is_one_line(tmp_path: Path):
    path = tmp_path / "settings_local.py"
    path.write_text("A = 1\nTWEETFORM_CREDENTIALS = [{'bearer_token': 'Canary-Secret-Token'}\n")
    with pytest.raises(SettingsError) as caught:
        load_local_settings(path)
    assert one_line(caught.value) == f"{path} line 2: SyntaxError while loading local settings"


SETTING_VALUES = [True, False, 0, 1, 2, -1, 0.0, 1.0, 2.5, float("inf"), float("nan"), 10**30, "0", "1", "2", " 1 ", "true", "True", "TRUE",
                  "false", "False", "yes", "no", "on", "off", "", " ", "1.0", "2.5", "1e3", "0x10", "inf", "nan", "abc", [1], {"a": 1}, (1,), b"1"]


@pytest.mark.parametrize("default,getter", [(True, "getbool"), (8, "getint"), (2.5, "getfloat")], ids=["bool", "int", "float"])
def test_every_setting_value_config_accepts_scrapy_reads(default: Any, getter: str):
    """settings_local.py, -s and the environment accept a boolean, integer or number setting only in a form
    Scrapy's getbool/getint/getfloat read (before: 'yes' or 'on' for a boolean, '2.0' for an integer passed
    the check and Scrapy raised later, mid-start); the environment and -s accept the same strings."""
    accepted = [v for v in SETTING_VALUES if type_problem(v, default) is None]
    assert accepted
    for value in accepted:
        getattr(BaseSettings({"NAME": value}), getter)("NAME")  # raises: config.py let through what Scrapy cannot read
    for raw in (v for v in SETTING_VALUES if isinstance(v, str)):
        try:
            parsed = parse_env_value(raw, default)
        except ValueError:
            assert type_problem(raw, default) is not None, raw
        else:
            assert type_problem(raw, default) is None and repr(getattr(BaseSettings({"NAME": parsed}), getter)("NAME")) == repr(parsed), raw


def test_environment_value_of_the_wrong_type_names_the_variable_not_the_value():
    with pytest.raises(SettingsError) as caught:
        env_overrides({"TWEETFORM_RETRY_BACKOFF": 1.0}, {"TWEETFORM_RETRY_BACKOFF": "Canary-Not-A-Number"})
    text = one_line(caught.value)
    assert "TWEETFORM_RETRY_BACKOFF must be a number" in text and "Canary" not in text


# --- the real CLI: exit 2, one line, nothing written anywhere -------------------------------------

def cli(env: dict[str, str], *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "ROTATING_PROXY_"))}
    env.update(TWEETFORM_CREDENTIALS=json.dumps(demo_credentials("demo-user-1")), TWEETFORM_OUTPUT_DIR=str(tmp_path / "out"),
               PYTHONWARNINGS="error", TWEETFORM_BUDGET_USD="unlimited")
    env.update(extra)
    return env


def assert_one_line_exit_2(done: subprocess.CompletedProcess, expected: str) -> None:
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 2 and lines == [expected], lines


def test_cli_bucket_leaving_the_output_directory(sandbox, tmp_path: Path):
    env = clean_env(tmp_path, TWEETFORM_API_BASE=sandbox.base)
    before = set((tmp_path.parent).iterdir())
    for bad in ("../escaped", "/tmp/escaped", ""):
        done = cli(env, "crawl", "friends", "-a", "user_id=12", "-a", f"bucket={bad}")
        expected = ("tweetform: bucket is empty: give a plain word of letters, digits, _ or - (or leave bucket out for the default)"
                    if not bad else f"tweetform: bucket {bad!r} must be a plain word of letters, digits, _ or -")
        assert_one_line_exit_2(done, expected)
    assert set(tmp_path.parent.iterdir()) == before and list(tmp_path.iterdir()) == []
    assert sum(sandbox.counters()["statuses"].values()) == 0  # nothing fetched


def test_cli_unreachable_api_base_and_proxy_list(tmp_path: Path):
    dead = f"127.0.0.1:{free_port()}"
    done = cli(clean_env(tmp_path, TWEETFORM_API_BASE=f"http://{dead}"), "crawl", "friends", "-a", "user_id=12")
    assert_one_line_exit_2(done, f"tweetform: TWEETFORM_API_BASE http://{dead} cannot be reached: {dead}: Connection refused")
    done = cli(clean_env(tmp_path, ROTATING_PROXY_LIST=f"http://user:Canary-Proxy-Pass@{dead}"), "crawl", "friends", "-a", "user_id=12")
    assert_one_line_exit_2(done, f"tweetform: no configured proxy accepts connections (http://user:***@{dead}: Connection refused): "
                                 "check ROTATING_PROXY_LIST / ROTATING_PROXY_LIST_PATH / TWEETFORM_PROXY_FILE")
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")
    done = cli(clean_env(tmp_path, TWEETFORM_OUTPUT_DIR=str(not_a_dir / "out")), "crawl", "friends", "-a", "user_id=12")
    assert_one_line_exit_2(done, f"tweetform: TWEETFORM_OUTPUT_DIR {not_a_dir / 'out'}: {not_a_dir} is not a directory")
    missing = tmp_path / "no-such-proxies.txt"
    done = cli(clean_env(tmp_path, ROTATING_PROXY_LIST_PATH=str(missing)), "crawl", "friends", "-a", "user_id=12")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1 and "ROTATING_PROXY_LIST_PATH" in done.stderr
    assert not (tmp_path / "out").exists()


def test_cli_wrong_types_in_settings_and_config_files(tmp_path: Path):
    local = tmp_path / "settings_local.py"
    local.write_text("DOWNLOAD_TIMEOUT = 'a minute'\n")
    done = cli(clean_env(tmp_path, TWEETFORM_SETTINGS_LOCAL=str(local)), "crawl", "friends", "-a", "user_id=12")
    assert_one_line_exit_2(done, f"tweetform: {local}: DOWNLOAD_TIMEOUT must be an integer, not a string")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"apikeys": {"lab": {"app_key": 1, "app_secret": "Canary-App-Secret"}}, "redis_config": {}}))
    env = clean_env(tmp_path, TWEETFORM_CREDENTIALS_FILE=str(config))
    env["TWEETFORM_CREDENTIALS"] = "[]"
    done = cli(env, "crawl", "friends", "-a", "user_id=12")
    assert_one_line_exit_2(done, "tweetform: credential 'lab': app_key must be a string, not a number")
    proxies = tmp_path / "proxy.json"
    proxies.write_text(json.dumps({"proxies": [{"127.0.0.1:3128": "http"}, 3128]}))
    done = cli(clean_env(tmp_path, TWEETFORM_PROXY_FILE=str(proxies)), "crawl", "friends", "-a", "user_id=12")
    assert_one_line_exit_2(done, f"tweetform: {proxies} proxies[1]: a proxy must be a non-empty string like 'host:port'")
    done = cli(clean_env(tmp_path), "crawl", "friends", "-a", "user_id=12", "-s", "TWEETFORM_RETRY_BACKOFF=fast")
    assert_one_line_exit_2(done, "tweetform: -s TWEETFORM_RETRY_BACKOFF=fast: must be a number")
    done = cli(clean_env(tmp_path), "crawl", "friends", "-a", "user_id=12", "-s", "CONCURRENT_REQUESTS=2.5")
    assert_one_line_exit_2(done, "tweetform: -s CONCURRENT_REQUESTS=2.5: must be an integer")
    assert not (tmp_path / "out").exists()


def test_worker_with_an_output_directory_that_is_a_file(redis_url: str, tmp_path: Path):
    (tmp_path / "out").write_text("")
    done = cli(clean_env(tmp_path, REDIS_URL=redis_url), "worker", "--spiders", "friends")
    assert_one_line_exit_2(done, f"tweetform: TWEETFORM_OUTPUT_DIR {tmp_path / 'out'}: {tmp_path / 'out'} is not a directory")


def test_cli_unknown_spider_and_unknown_command(redis_url: str, tmp_path: Path):
    env = clean_env(tmp_path)
    listed = cli(env, "list").stdout.split()  # `scrapy list`: the spider loader's names, as the line names them
    assert {"friends", "search", "quotes", "conversation", "counts"} <= set(listed)
    names = ", ".join(sorted(listed))
    done = cli(env, "crawl", "enemies", "-a", "user_id=12")
    assert_one_line_exit_2(done, f"tweetform: unknown spider 'enemies'; the spiders are: {names}")
    done = cli({**env, "REDIS_URL": redis_url}, "worker", "--spiders", "friends,enemies")
    assert_one_line_exit_2(done, f"tweetform: unknown spider(s) 'enemies'; the spiders are: {names}")
    done = cli(env, "crawlfriends")
    assert done.returncode == 2 and "Unknown command: crawlfriends" in done.stdout.splitlines()  # Scrapy's own usage message


def test_cli_refuses_ids_that_are_digits_but_not_ascii(redis_url: str, tmp_path: Path):
    env = clean_env(tmp_path, REDIS_URL=redis_url)
    expected = "tweetform: user_id must be numeric ids separated by commas; '\u00b2' is not an id"
    assert_one_line_exit_2(cli(env, "crawl", "friends", "-a", "user_id=\u00b2"), expected)
    assert_one_line_exit_2(cli(env, "push", "friends", "--user-id", "\u00b2"), expected)
    assert redis.Redis.from_url(redis_url).keys("*") == []  # nothing pushed
    assert not (tmp_path / "out").exists()


def test_push_refuses_bad_legacy_commands(redis_url: str, tmp_path: Path):
    env = clean_env(tmp_path, REDIS_URL=redis_url)
    for legacy, expected in [
        ('{"cmd": "CRAWL_FRIENDS", "user_id": 12, "depth": "two"}', "depth must be a whole number, not 'two'"),
        ('{"cmd": "CRAWL_FRIENDS", "user_id": 12,', "--legacy is not JSON (line 1 column 40)"),
        ('{"cmd": "CRAWL_FRIENDS", "user_id": 12, "bucket": ""}', "bucket is empty: give a plain word of letters, digits, _ or - (or leave bucket out for the default)"),
    ]:
        assert_one_line_exit_2(cli(env, "push", "--legacy", legacy), f"tweetform: {expected}")
    ids = tmp_path / "too-many-ids.txt"
    ids.write_text("\n".join(str(10**15 + i) for i in range(MAX_MESSAGE_BYTES // 16)))  # 17 bytes per id in the message
    done = cli(env, "push", "friends", "--file", str(ids))
    assert done.returncode == 2 and done.stderr.startswith("tweetform: the job message is ") and "split it into several jobs" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert redis.Redis.from_url(redis_url).keys("*") == []  # nothing pushed


# --- a real worker: every bad message dead-lettered with its reason, and the worker goes on ----------

def test_worker_dead_letters_bad_messages_and_goes_on(sandbox, redis_url: str, tmp_path: Path):
    from tweetform.state.redis import keys

    seed = sandbox.get("/_sandbox/examples")["ordinary"][0]
    r = redis.Redis.from_url(redis_url)
    bad = {
        b'{"user_id": 12,': "job message is not JSON",
        b'{"user_id": {"id": 12}}': "user_id must be a whole number or a comma list, not an object",
        b'{"user_id": 18446744073709551616}': "user_id 18446744073709551616 is past 64 bits",
        b'{"user_id": 12, "bucket": "../../outside"}': "bucket '../../outside' must be a plain word",
        b'{"cmd": "CRAWL_FRIENDS", "user_id": 12, "depth": [2]}': "depth must be a whole number, not an array",
        b'{"cmd": "CRAWL_ENEMIES", "user_id": 12}': "unknown tweetf0rm command 'CRAWL_ENEMIES'",
        b'{"user_id": "' + b"12," * (MAX_MESSAGE_BYTES // 3) + b'12"}': f"more than the {MAX_MESSAGE_BYTES:,} allowed",
        '{"user_id": "\u00b2"}'.encode(): "user_id must be numeric ids separated by commas; '\u00b2' is not an id",  # isdigit() yet no int
        b"[" * 50000: "job message is nested too deeply",
    }
    for raw in bad:
        r.rpush(keys.jobs_inbox("friends"), raw)
    r.rpush(keys.jobs_inbox("friends"), json.dumps({"user_id": str(seed), "job": "good-one"}))
    env = crawl_env(sandbox, tmp_path / "out", demo_credentials("demo-user-1"))
    env["REDIS_URL"] = redis_url
    done = subprocess.run([sys.executable, "-m", "scrapy", "worker", "--spiders", "friends", "-s", "TWEETFORM_EXIT_WHEN_IDLE=1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    letters = [json.loads(x) for x in r.lrange(keys.dead_letter(), 0, -1)]
    assert len(letters) == len(bad)
    for letter, (raw, reason) in zip(letters, bad.items()):
        assert reason in letter["reason"] and "\n" not in letter["reason"]
        assert letter["message"] == raw.decode(errors="replace")[:10000]
    assert bucket(tmp_path / "out", "friend_ids")[str(seed)]  # the good job after them was crawled
    assert {p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith("_")} <= {"friend_ids", "errors"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing written outside the output directory


# --- booleans, seeds files that are not text, numbers out of range, commands' own options -----------

@pytest.mark.parametrize("spider,raw,message", [
    (UsersSpider, {"user_id": "12", "skip_known": "yes"}, "skip_known must be true or false, not 'yes'"),
    (UsersSpider, {"user_id": "12", "skip_known": "maybe"}, "skip_known must be true or false, not 'maybe'"),
    (SearchSpider, {"query": "cats", "archive": "on"}, "archive must be true or false, not 'on'"),
    (TimelineSpider, {"user_id": "12", "archive": ""}, "archive must be true or false, not ''"),
], ids=["skip_known-yes", "skip_known-maybe", "archive-on", "archive-empty"])
def test_a_boolean_argument_takes_only_its_spellings(spider: Any, raw: dict[str, str], message: str):
    with pytest.raises(ArgumentError) as refused:
        spider.parse_arguments(raw)
    assert one_line(refused.value) == message
    for word, value in (("true", True), ("false", False), ("1", True), ("0", False), ("True", True), ("False", False)):
        name = next(k for k in ("skip_known", "archive") if k in raw)
        assert getattr(spider.parse_arguments({**raw, name: word}), name) is value
    # a job message's JSON boolean is the same argument
    assert parse_message(json.dumps({**raw, next(k for k in raw if k in ("skip_known", "archive")): True}), spider, "2")


@pytest.mark.parametrize("content,message", [
    (b"12\n\xff\xfe13\n", "is not text (not UTF-8 at byte 3)"),
    (b"12\n\x0013\n", "is not text (it holds NUL bytes)"),
], ids=["not-utf8", "nul"])
def test_an_ids_file_that_is_not_text_is_one_line(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "ids.txt"
    path.write_bytes(content)
    for spider, raw in ((UsersSpider, {"file": str(path)}), (FriendsSpider, {"file": str(path)}), (TweetsSpider, {"file": str(path)}),
                        (SearchSpider, {"file": str(path)})):
        with pytest.raises(ArgumentError) as refused:
            spider.parse_arguments(raw)
        assert one_line(refused.value) == f"file {str(path)!r} {message}"


@pytest.mark.parametrize("name,value,message", [
    ("TWEETFORM_BUDGET_USD", -1.0, "must be more than 0, not -1.0"),  # 0 too: only "unlimited" runs without a budget
    ("TWEETFORM_HEARTBEAT", 0, "must be more than 0, not 0"),
    ("TWEETFORM_HEARTBEAT_TTL", -3.0, "must be more than 0, not -3.0"),
    ("CONCURRENT_REQUESTS", 0, "must be at least 1, not 0"),
    ("TWEETFORM_MAX_DELIVERIES", 0, "must be at least 1, not 0"),
    ("TWEETFORM_RETRY_BACKOFF", -0.5, "must be at least 0, not -0.5"),
    ("TWEETFORM_COLLECT_MAX_BYTES", 0, "must be at least 1, not 0"),
    ("DOWNLOAD_TIMEOUT", 0, "must be more than 0, not 0"),
    ("TWEETFORM_QUOTA_RESET_MARGIN", 7200.0, "must be from -3600 to 3600, not 7200.0"),
    ("TWEETFORM_JOB_STATE_TTL", float("nan"), "must be more than 0, not nan"),
])
def test_a_numeric_setting_out_of_range_is_bad_input(name: str, value: Any, message: str):
    import tweetform.settings as defaults

    with pytest.raises(SettingsError) as refused:
        check_types({name: value}, vars(defaults), "settings_local.py")
    assert one_line(refused.value) == f"settings_local.py: {name} {message}"
    if name.startswith("TWEETFORM_"):  # the environment overrides tweetform's own settings (Scrapy's: with -s)
        with pytest.raises(SettingsError) as refused:
            env_overrides(vars(defaults), {name: str(value)})
        assert one_line(refused.value) == f"environment variable {name} {message.rsplit(', not ', 1)[0]}, not {value}"
    check_types({"TWEETFORM_QUOTA_RESET_MARGIN": -0.5, "RETRY_TIMES": 0, "TWEETFORM_BUDGET_USD": "unlimited"}, vars(defaults), "ok")  # in range


def test_cli_numbers_out_of_range_and_bad_option_values_are_one_line(tmp_path: Path):
    """Every command's own options and the settings: checked before anything starts, one line each, exit 2."""
    env = clean_env(tmp_path, TWEETFORM_API_BASE="http://127.0.0.1:9")  # nothing may be fetched anyway
    binary = tmp_path / "ids.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    cases = {
        ("sandbox", "--port", "70000"): "sandbox: bad configuration: port must be from 0 to 65,535, not 70000",
        ("sandbox", "--users", "-5"): "sandbox: bad configuration: users must be from 1 to 4,194,304, not -5",
        ("sandbox", "--port", "http"): "tweetform: scrapy sandbox: argument --port: invalid int value: 'http'",
        ("archive", "--every", "-1"): "tweetform: scrapy archive: argument --every: must be at least 0, not -1",
        ("archive", "--older-than", "soon"): "tweetform: scrapy archive: argument --older-than: must be a number, not 'soon'",
        ("export", "graph", "--format"): "tweetform: scrapy export: argument --format: expected one argument",
        ("worker", "--processes", "0"): "tweetform: scrapy worker: argument --processes: must be from 1 to 256, not 0",
        ("wait", "j1", "--timeout", "-5"): "tweetform: scrapy wait: argument --timeout: must be at least 0, not -5",
        ("plan", "friends", "-a", "user_id=12", "--sample", "-1"): "tweetform: scrapy plan: argument --sample: must be at least 0, not -1",
        ("plan", "friends", "-a", "user_id=12", "--budget", "-2"): "tweetform: scrapy plan: argument --budget: must be more than 0, not -2",
        ("proxies", "check", "--timeout", "0"): "tweetform: scrapy proxies: argument --timeout: must be more than 0, not 0",
        ("crawl", "friends", "-a", "user_id=12", "-s", "TWEETFORM_BUDGET_USD=-1"): "tweetform: -s TWEETFORM_BUDGET_USD=-1: must be more than 0",
        ("crawl", "users", "-a", f"file={binary}"): f"tweetform: file {str(binary)!r} is not text (not UTF-8 at byte 0)",
        ("crawl", "users", "-a", "user_id=12", "-a", "skip_known=yes"): "tweetform: skip_known must be true or false, not 'yes'",
    }
    started = {args: subprocess.Popen([sys.executable, "-m", "scrapy", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for args in cases}
    for args, proc in started.items():
        out, err = proc.communicate(timeout=120)
        assert_one_line_exit_2(subprocess.CompletedProcess(args, proc.returncode, out, err), cases[args])
    done = cli({**env, "TWEETFORM_HEARTBEAT": "0"}, "list")  # the environment: every command, before it starts
    assert_one_line_exit_2(done, "tweetform: environment variable TWEETFORM_HEARTBEAT must be more than 0, not 0")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.bin"]  # nothing written
