"""An install that works anywhere: a wheel built from the repository (not an editable install) carries
every file tweetform needs at run time.

Once per session the wheel is built (``pip wheel``, with the build-system's pinned setuptools) from a
copy of the source, and installed into a fresh virtualenv. tweetform's dependencies are this test
run's own, seen through a ``.pth`` line, so nothing is downloaded again; a path listed in a ``.pth``
file has its own ``.pth`` files ignored, so the editable install of the source tree is not
active there. The crawls run from a directory outside the repository, with
``SCRAPY_SETTINGS_MODULE=tweetform.settings`` (no ``scrapy.cfg`` there), so only the installed
package can be imported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import ROOT
from crawling import bucket, crawl_env
from test_distributed import WORLD, assert_network_equals_truth

BUILD_IGNORED = shutil.ignore_patterns(".git", ".venv", "data", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                       "tests", "bench", "docs")


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """(the fresh virtualenv's python, a working directory outside the repository)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=BUILD_IGNORED)  # the build writes build/ and *.egg-info: not into the checkout
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--quiet", "--wheel-dir", str(base / "dist")],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((base / "dist").glob("tweetform-*.whl"))
    env_dir = base / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "_tweetform_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = base / "elsewhere"
    work.mkdir()
    yield python, work


def run(python: Path, work: Path, env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "scrapy", *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)


def installed_env(box: Any, output: Path, redis_url: str, **extra: str) -> dict[str, str]:
    env = crawl_env(box, output)
    env.pop("PYTHONPATH", None)
    env.update(SCRAPY_SETTINGS_MODULE="tweetform.settings", REDIS_URL=redis_url, TWEETFORM_HEARTBEAT="0.3", TWEETFORM_HEARTBEAT_TTL="1.5",
               TWEETFORM_PROGRESS="off", **extra)
    return env


def test_the_wheel_holds_every_file_of_the_package(installed: tuple[Path, Path]):
    python, work = installed
    where = subprocess.run([str(python), "-c", "import tweetform, pathlib; print(pathlib.Path(tweetform.__file__).parent)"],
                           cwd=work, capture_output=True, text=True, check=True).stdout.strip()
    package = Path(where)
    assert package.parent.name == "site-packages" and ROOT not in package.parents  # the installed copy, not the checkout
    wanted = sorted(str(p.relative_to(ROOT / "tweetform")) for p in (ROOT / "tweetform").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts)
    assert [name for name in wanted if not (package / name).is_file()] == []  # before: collect/lua/*.lua were missing


def test_a_redis_crawl_and_a_collect_mode_crawl_run_from_the_wheel(installed: tuple[Path, Path], sandbox_factory, redis_url: str,
                                                                   tmp_path: Path):
    python, work = installed
    box = sandbox_factory(*WORLD)
    seed = box.get("/_sandbox/examples")["ordinary"][0]

    shared = tmp_path / "shared"  # a crawl whose state is in Redis
    done = run(python, work, installed_env(box, shared, redis_url), "crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2",
               "-a", "job=installed")
    assert done.returncode == 0, done.stderr[-3000:]
    assert_network_equals_truth(box, shared, seed, 2)

    host, collected = tmp_path / "host", tmp_path / "collected"  # collect mode: pages go through Redis to `scrapy collect`
    env = installed_env(box, host, redis_url, TWEETFORM_COLLECT="true", TWEETFORM_COLLECT_LOCK_TTL="3")
    collector = subprocess.Popen([str(python), "-m", "scrapy", "collect", "--data", str(collected)], cwd=work, env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        done = run(python, work, env, "crawl", "friends", "-a", f"user_id={seed}", "-a", "depth=2", "-a", "job=collected")
        assert done.returncode == 0, done.stderr[-3000:]
        # the crawl ends once its pages are handed over; the job is done when the collector has written them
        waited = run(python, work, env, "wait", "collected", "--timeout", "120")
        assert waited.returncode == 0, waited.stdout + waited.stderr
    finally:
        collector.terminate()
        out, _ = collector.communicate(timeout=60)
    assert collector.returncode == 0, out[-3000:]
    assert_network_equals_truth(box, collected, seed, 2)
    assert not [p for p in host.rglob("*") if p.is_file()]  # a worker in collect mode writes nothing itself
    assert json.loads((collected / "_jobs" / "collected.json").read_text())["job"] == "collected"
    assert bucket(collected, "friend_ids")
