"""``scrapy authorize ALIAS``: get a credential from the API and save it in settings_local.py.

User context (OAuth 1.0a PIN flow, with requests-oauthlib)::

    scrapy authorize lab-user-1 --app lab-app        # reuse the app key/secret of a configured credential
    scrapy authorize lab-user-1 --app-key KEY        # the app secret is asked for (not echoed)

prints the URL to open; the account that approves the app gets a PIN, which
is typed back; the access token and secret are appended to settings_local.py.

App-only: ``scrapy authorize lab-bearer --bearer --app-key KEY`` fetches the
app's bearer token (``POST oauth2/token``) and saves it.

settings_local.py (``$TWEETFORM_SETTINGS_LOCAL``, else the one in the current
directory, else beside scrapy.cfg) is created with mode 600, or set to 600,
since it now holds secrets. Only the alias is ever printed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from scrapy.commands import ScrapyCommand
from scrapy.utils.conf import closest_scrapy_cfg

from tweetform.config import load_local_settings, local_settings_path
from tweetform.credentials import Credential, CredentialError, load_credentials, parse_credentials
from tweetform.commands.errors import one_line_errors


class AuthorizeError(Exception):
    """The one line shown when authorizing fails (never a secret)."""


def settings_file(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    found = local_settings_path()
    if found is not None:
        return found
    cfg = closest_scrapy_cfg()
    return (Path(cfg).parent if cfg else Path.cwd()) / "settings_local.py"


def aliases_in(path: Path) -> list[str]:
    if not path.exists():
        return []
    try:
        creds = load_local_settings(path).get("TWEETFORM_CREDENTIALS") or []
    except Exception as exc:  # a broken settings file: say so, do not append to it
        raise AuthorizeError(f"{path} cannot be loaded ({type(exc).__name__}); fix it first") from None
    return [str(c.get("alias")) for c in creds if isinstance(c, dict)]


def append_credential(path: Path, entry: dict[str, str], comment: str) -> None:
    """Append one credential to TWEETFORM_CREDENTIALS in a settings_local.py (mode 600)."""
    parse_credentials([entry])  # the same checks a crawl applies
    if entry["alias"] in aliases_in(path):
        raise AuthorizeError(f"{path} already has a credential named {entry['alias']!r}; choose another alias")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    text = (f"\n# added by `scrapy authorize` on {stamp}: {comment}\n"
            f"TWEETFORM_CREDENTIALS = [*globals().get(\"TWEETFORM_CREDENTIALS\", []), {json.dumps(entry, indent=4)}]\n")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    print(prompt, end="", flush=True)
    value = sys.stdin.readline().strip()
    print()  # what a terminal would have echoed
    return value


def user_flow(base: str, app_key: str, app_secret: str, pin: str | None, timeout: float = 30.0) -> dict[str, str]:
    """OAuth 1.0a PIN flow; returns oauth_token, oauth_token_secret, user_id, screen_name."""
    from requests.exceptions import RequestException
    from requests_oauthlib import OAuth1Session
    from requests_oauthlib.oauth1_session import TokenMissing, TokenRequestDenied

    from tweetform.requests_safety import quiet_credential_loggers

    quiet_credential_loggers()  # requests-oauthlib logs the access token and secret it receives at DEBUG
    try:
        session = OAuth1Session(app_key, client_secret=app_secret, callback_uri="oob")
        request_token = session.fetch_request_token(f"{base}/oauth/request_token", timeout=timeout)
        url = session.authorization_url(f"{base}/oauth/authorize")
        print("Open this URL in a browser, log in as the account to authorize and approve the app:")
        print(f"  {url}", flush=True)
        if not pin:
            pin = input("PIN: ").strip() if sys.stdin.isatty() else read_secret("PIN: ")
        if not pin:
            raise AuthorizeError("no PIN given")
        session = OAuth1Session(app_key, client_secret=app_secret, resource_owner_key=request_token["oauth_token"],
                                resource_owner_secret=request_token["oauth_token_secret"], verifier=pin)
        return session.fetch_access_token(f"{base}/oauth/access_token", timeout=timeout)
    except TokenRequestDenied as exc:
        what = "the PIN" if "access_token" in str(exc.response.url if exc.response is not None else "") else "the app key and secret"
        raise AuthorizeError(f"the API refused {what} (HTTP {exc.status_code})") from None
    except TokenMissing:
        raise AuthorizeError("the API's answer has no token") from None
    except (RequestException, ValueError) as exc:
        raise AuthorizeError(f"could not reach {base}: {type(exc).__name__}") from None


def bearer_flow(base: str, app_key: str, app_secret: str, timeout: float = 30.0) -> str:
    """App-only: the app's bearer token from ``POST oauth2/token``."""
    import requests

    from tweetform.api.auth import basic_header

    cred = Credential(alias="-", app_key=app_key, app_secret=app_secret)
    try:
        resp = requests.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"},
                             headers={"Authorization": basic_header(cred)}, timeout=timeout)
    except requests.RequestException as exc:
        raise AuthorizeError(f"could not reach {base}: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise AuthorizeError(f"the API refused the app key and secret (HTTP {resp.status_code})")
    try:
        body: Any = resp.json()
        token = body["access_token"]
    except (ValueError, KeyError, TypeError):
        raise AuthorizeError("the API's answer has no access_token") from None
    if str(body.get("token_type", "bearer")).lower() != "bearer":
        raise AuthorizeError(f"unexpected token type {body.get('token_type')!r}")
    return str(token)


class Command(ScrapyCommand):
    requires_project = True
    requires_crawler_process = False
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "ALIAS [--app ALIAS | --app-key KEY] [--bearer] [--pin PIN] [--file settings_local.py]"

    def short_desc(self) -> str:
        return "Get a user (PIN flow) or app-only credential and save it to settings_local.py"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        one_line_errors(parser)  # a bad option value: one line, exit 2
        parser.add_argument("--app", metavar="ALIAS", help="use the app key and secret of this configured credential")
        parser.add_argument("--app-key", metavar="KEY", help="the app's API key (the secret is asked for)")
        parser.add_argument("--bearer", action="store_true", help="app-only: fetch the app's bearer token")
        parser.add_argument("--pin", metavar="PIN", help="the PIN, when known already (otherwise it is asked for)")
        parser.add_argument("--file", metavar="PATH", help="the settings file to append to (default settings_local.py)")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        try:
            if len(args) != 1:
                raise AuthorizeError("give the alias to save the credential under, e.g. `scrapy authorize lab-user-1 --app-key KEY`")
            alias = args[0]
            if not alias.strip() or any(c.isspace() for c in alias):
                raise AuthorizeError(f"alias {alias!r} must be one word")
            path = settings_file(opts.file)
            if alias in aliases_in(path):
                raise AuthorizeError(f"{path} already has a credential named {alias!r}; choose another alias")
            app_key, app_secret = self.app_keys(opts)
            base = str(self.settings.get("TWEETFORM_API_BASE")).rstrip("/")
            if opts.bearer:
                token = bearer_flow(base, app_key, app_secret)
                entry = {"alias": alias, "app_key": app_key, "bearer_token": token}
                comment = "app-only bearer token"
            else:
                got = user_flow(base, app_key, app_secret, opts.pin)
                entry = {"alias": alias, "app_key": app_key, "app_secret": app_secret,
                         "oauth_token": got["oauth_token"], "oauth_token_secret": got["oauth_token_secret"]}
                who = f"@{got['screen_name']}" if got.get("screen_name") else "the account"
                comment = f"user context for {who}" + (f" (id {got['user_id']})" if got.get("user_id") else "")
            append_credential(path, entry, comment)
        except (AuthorizeError, CredentialError, OSError) as exc:
            print(f"tweetform: {exc}", file=sys.stderr)
            self.exitcode = 2
            return
        print(f"saved credential {alias!r} ({comment}) to {path} (mode 600)")
        if os.environ.get("TWEETFORM_CREDENTIALS"):
            print("note: the TWEETFORM_CREDENTIALS environment variable overrides settings_local.py while it is set")

    def app_keys(self, opts: argparse.Namespace) -> tuple[str, str]:
        assert self.settings is not None
        if opts.app:
            creds = {c.alias: c for c in load_credentials(self.settings)}
            cred = creds.get(opts.app)
            if cred is None:
                raise AuthorizeError(f"no configured credential named {opts.app!r} (configured: {', '.join(creds) or 'none'})")
            if not (cred.app_key and cred.app_secret):
                raise AuthorizeError(f"credential {opts.app!r} has no app key and secret")
            return cred.app_key, cred.app_secret
        if not opts.app_key:
            raise AuthorizeError("give the app: --app ALIAS (a configured credential) or --app-key KEY")
        secret = read_secret("app secret (API key secret): ")
        if not secret:
            raise AuthorizeError("no app secret given")
        return opts.app_key, secret


__all__ = ["Command", "append_credential", "bearer_flow", "user_flow"]
