"""tweetf0rm's config.json read whole: ``redis_config`` is the Redis connection when REDIS_URL is
not set, ``output`` the output directory when TWEETFORM_OUTPUT_DIR is not set (each on its own),
``verbose`` the log level — through real ``scrapy`` processes, a Redis with a password and the
sandbox. The password never shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from crawling import ROOT, bucket, demo_credentials, ids_of

from tweetform import exitcodes
from tweetform.config_json import ConfigJsonError, settings_from_config
from tweetform.state.redis import keys
from tweetform.testing.servers import RedisServer

WORLD = ("--users", "3000", "--seed", "7", "--window", "1")
PASSWORD = "Cfg-Canary/Pass@7"  # percent-encoded in the URL it becomes


def tweetf0rm_config(path: Path, **fields: Any) -> Path:
    """A config.json as tweetf0rm's README shows it: apikeys by name, then the other fields."""
    apikeys = {c["alias"]: {k: c[k] for k in ("app_key", "app_secret", "oauth_token", "oauth_token_secret")}
               for c in demo_credentials("demo-user-1", "demo-user-2")}
    path.write_text(json.dumps({"apikeys": apikeys, **fields}))
    return path


def scrapy(box: Any, config: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWEETFORM_", "REDIS_", "ROTATING_PROXY_"))}
    env.update(TWEETFORM_API_BASE=box.base, TWEETFORM_CREDENTIALS_FILE=str(config), TWEETFORM_QUOTA_RESET_MARGIN="0.1",
               PYTHONWARNINGS="error", **env_extra)
    return subprocess.run([sys.executable, "-m", "scrapy", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def test_redis_config_output_and_verbose_drive_a_crawl(sandbox_factory, redis_url: str, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]
    server = RedisServer(password=PASSWORD)
    try:
        config = tweetf0rm_config(tmp_path / "config.json", verbose="True", output="./data",
                                  redis_config={"host": "127.0.0.1", "port": server.port, "db": 3, "password": PASSWORD})
        done = scrapy(box, config, "crawl", "friends", "-a", f"user_id={seed}", "-a", "job=cfg")
        shown = done.stdout + done.stderr
        assert done.returncode == exitcodes.DONE, shown[-3000:]
        # output: the config's directory, relative to the file
        pages = bucket(tmp_path / "data", "friend_ids")
        assert ids_of(pages[str(seed)]) == box.truth("following", seed)
        # redis_config: the job ran through that Redis, in db 3
        r = redis.Redis(port=server.port, password=PASSWORD, db=3)
        assert r.hget(keys.job("cfg"), "state") == b"done"
        assert redis.Redis(port=server.port, password=PASSWORD, db=0).dbsize() == 0
        # verbose: DEBUG lines; the password appears nowhere, plain or percent-encoded
        assert "] DEBUG: " in shown
        assert PASSWORD not in shown and "Cfg-Canary%2FPass%407" not in shown

        # each setting on its own: TWEETFORM_OUTPUT_DIR set wins over output, REDIS_URL set wins over redis_config
        elsewhere = tmp_path / "elsewhere"
        done = scrapy(box, config, "crawl", "friends", "-a", f"user_id={seed}", "-a", "job=cfg2", TWEETFORM_OUTPUT_DIR=str(elsewhere))
        assert done.returncode == exitcodes.DONE, done.stderr[-3000:]
        assert set(bucket(elsewhere, "friend_ids")) == {str(seed)} and r.hget(keys.job("cfg2"), "state") == b"done"
        done = scrapy(box, config, "crawl", "friends", "-a", f"user_id={seed}", "-a", "job=cfg3", REDIS_URL=redis_url)
        assert done.returncode == exitcodes.DONE, done.stderr[-3000:]
        assert redis.Redis.from_url(redis_url).hget(keys.job("cfg3"), "state") == b"done" and not r.exists(keys.job("cfg3"))
        assert len((tmp_path / "data" / "friend_ids" / f"{seed}.jsonl").read_bytes().splitlines()) == 2  # cfg and cfg3 wrote there
    finally:
        server.stop()


def test_a_wrong_redis_password_in_config_json_is_one_line_without_it(sandbox_factory, tmp_path: Path):
    box = sandbox_factory(*WORLD)
    server = RedisServer(password=PASSWORD)
    try:
        wrong = "Wr0ng-" + PASSWORD
        config = tweetf0rm_config(tmp_path / "config.json", redis_config={"host": "127.0.0.1", "port": server.port, "password": wrong})
        done = scrapy(box, config, "status")
    finally:
        server.stop()
    assert done.returncode == exitcodes.UNREACHABLE
    assert done.stderr.strip() == (f"tweetform: Redis at redis://:***@127.0.0.1:{server.port}/0 refused the password or user name "
                                   "(AuthenticationError)")
    assert "Wr0ng" not in done.stdout + done.stderr


@pytest.mark.parametrize("fields,message", [
    ({"redis_config": "localhost:6379"}, "redis_config must be an object with host, port, db and password, not a string"),
    ({"redis_config": {"host": "localhost", "port": 70000}}, "redis_config.port must be a whole number from 1 to 65,535, not '70000'"),
    ({"redis_config": {"port": True}}, "redis_config.port must be a whole number from 1 to 65,535, not 'True'"),
    ({"redis_config": {"db": -1}}, "redis_config.db must be a whole number from 0"),
    ({"redis_config": {"host": "a b"}}, "redis_config.host must be a host name or address, not 'a b'"),
    ({"redis_config": {"password": 12345678}}, "redis_config.password must be a string, not a number"),
    ({"redis_config": {"pasword": "x"}}, "redis_config has an unknown key 'pasword'"),
    ({"output": ""}, "output must be a directory path (a string), not a string"),
    ({"output": ["data"]}, "output must be a directory path (a string), not a list"),
    ({"verbose": "yes"}, "verbose must be true or false"),
    ({"verbose": 1}, "verbose must be true or false"),
])
def test_a_bad_config_json_field_is_named_without_its_value(tmp_path: Path, fields: dict[str, Any], message: str):
    config = tweetf0rm_config(tmp_path / "config.json", **fields)
    with pytest.raises(ConfigJsonError) as refused:
        settings_from_config(config)
    assert str(refused.value).startswith(f"{config}: {message}")


def test_a_bad_config_json_stops_every_command_with_one_line(sandbox_factory, tmp_path: Path):
    config = tweetf0rm_config(tmp_path / "config.json", redis_config={"host": "127.0.0.1", "port": "six", "password": PASSWORD})
    done = scrapy(sandbox_factory(*WORLD), config, "list")
    assert done.returncode == exitcodes.BAD_INPUT and done.stdout == ""
    assert done.stderr.splitlines() == [f"tweetform: {config}: redis_config.port must be a whole number from 1 to 65,535, not 'six'"]
    assert PASSWORD not in done.stderr


def test_config_json_settings_each_on_its_own(tmp_path: Path):
    only_output = tweetf0rm_config(tmp_path / "a.json", output="/srv/tweets")
    assert settings_from_config(only_output) == {"TWEETFORM_OUTPUT_DIR": "/srv/tweets"}
    quiet = tweetf0rm_config(tmp_path / "b.json", verbose=False, redis_config={"host": "redis-host", "password": "p@ss:w/rd"})
    assert settings_from_config(quiet) == {"REDIS_URL": "redis://:p%40ss%3Aw%2Frd@redis-host:6379/0"}
    assert settings_from_config(tweetf0rm_config(tmp_path / "c.json")) == {}  # apikeys only
    assert settings_from_config(tweetf0rm_config(tmp_path / "d.json", redis_config={}, verbose="False")) == {}  # nothing set
    assert settings_from_config(tmp_path / "missing.json") == {}  # the credentials loader reports that file
