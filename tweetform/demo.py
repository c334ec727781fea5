"""``make demo`` / ``python -m tweetform.demo``: one real crawl, end to end.

With no credentials configured it starts the sandbox (the local API emulator)
with its demo credentials and crawls it; with credentials configured it crawls
the configured API. Either way it prints where the data went.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from scrapy.utils.project import get_project_settings

from tweetform.credentials import load_credentials

#: the demo's own budget against the sandbox, which bills like the API: this crawl costs about $113 there
#: (the default budget would stop it early). Against a real API the default budget applies.
SANDBOX_BUDGET = 150
# jack's followers, and theirs: 40 users expanded, ~45 API pages
CRAWL = ["followers", "-a", "user_id=12", "-a", "depth=2", "-a", "max_users=40"]
#: demo rate-limit window: 15 requests per credential per 10 s instead of per 15 min
DEMO_WINDOW = "10"


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    os.chdir(root)
    settings = get_project_settings()
    env = dict(os.environ)
    sandbox = None
    if not load_credentials(settings):
        from tweetform.sandbox.credentials import demo_credentials_as_settings

        sandbox = subprocess.Popen(
            [sys.executable, "-m", "tweetform.sandbox", "--port", "0", "--users", "20000", "--window", DEMO_WINDOW],
            stdout=subprocess.PIPE, text=True,
        )
        line = sandbox.stdout.readline() if sandbox.stdout else ""
        base = line.strip().rsplit(" ", 1)[-1]
        print(f"no credentials configured: crawling the sandbox at {base} with its demo credentials"
              f" (rate-limit windows of {DEMO_WINDOW} s instead of 15 min)")
        env["TWEETFORM_API_BASE"] = base
        env["TWEETFORM_CREDENTIALS"] = json.dumps(demo_credentials_as_settings()[:4])
    crawl = [*CRAWL, "-a", f"budget={SANDBOX_BUDGET}"] if sandbox is not None else CRAWL
    output = Path(env.get("TWEETFORM_OUTPUT_DIR") or settings.get("TWEETFORM_OUTPUT_DIR")).resolve()
    try:
        code = subprocess.call([sys.executable, "-m", "scrapy", "crawl", *crawl, "-L", "INFO"], env=env)
    finally:
        if sandbox is not None:
            sandbox.terminate()
            sandbox.wait()
    files = sorted(output.glob("*/*.jsonl"))
    print(f"\ndemo: crawl exit status {code}; {len(files)} files under {output}:")
    for bucket in sorted({f.parent.name for f in files}):
        in_bucket = [f for f in files if f.parent.name == bucket]
        pages = sum(1 for f in in_bucket for _ in f.open("rb"))
        print(f"  {bucket}/  {len(in_bucket)} files, {pages} pages")
    if files:
        print(f"next: scrapy export graph --bucket {files[0].parent.name} --format graphml -o net.graphml")
    return code


if __name__ == "__main__":
    sys.exit(main())
