"""``GET`` and ``POST /2/tweets/search/stream/rules``: list, add (or validate with ``dry_run``) and delete.

A few requests per command, so a plain synchronous client (``requests``, as
``scrapy plan`` uses). The API answers refused rules with 200, ``errors`` and a
``meta.summary`` (``not_created``/``invalid``); :func:`refusal_lines` turns each
into one line for the user.
"""

from __future__ import annotations

from typing import Any

from tweetform.credentials import Credential
from tweetform.stream import RULES_PATH
from tweetform.stream.app import Rejected, Unreachable, token_from, token_request


class RulesError(Exception):
    """The API refused a rules request; ``lines`` say why (one per refused rule)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def refusal_line(error: dict[str, Any]) -> str:
    """One line for one ``errors`` entry of a rules answer."""
    title = str(error.get("title") or "Error")
    value = error.get("value")
    what = f"rule {value!r}" if value is not None else "rules request"
    if title == "DuplicateRule":
        return f"{what} refused: DuplicateRule (the app has it already, id {error.get('id')})"
    details = error.get("details") or [error.get("detail") or error.get("message") or ""]
    reason = "; ".join(str(d) for d in details if d)
    return f"{what} refused: {title}" + (f" ({reason})" if reason else "")


def problem_line(status: int, body: Any) -> str:
    """One line for an answer that is not a rules answer (400, 401, 403, 429, 5xx)."""
    if isinstance(body, dict):
        inner = body.get("errors") or []
        message = inner[0].get("message") if inner and isinstance(inner[0], dict) else None
        text = message or body.get("detail") or body.get("title")
        if text:
            return f"the API answered HTTP {status}: {text}"
    return f"the API answered HTTP {status}"


class RulesClient:
    """The rules of one app, through its bearer token."""

    def __init__(self, api_base: str, cred: Credential, timeout: float = 30.0) -> None:
        import requests

        self.base = api_base.rstrip("/")
        self.cred = cred
        self.timeout = timeout
        self.session = requests.Session()
        self._bearer = cred.bearer_token

    def _headers(self) -> dict[str, str]:
        if not self._bearer:
            url, headers, body = token_request(self.base, self.cred)
            resp = self.session.post(url, data=body, headers=headers, timeout=self.timeout)
            self._bearer = token_from(resp.status_code, _json(resp), self.cred)
        return {"Authorization": f"Bearer {self._bearer}"}

    def _call(self, method: str, params: dict[str, str] | None = None, payload: Any = None) -> dict[str, Any]:
        import requests

        try:
            resp = self.session.request(method, self.base + RULES_PATH, params=params, json=payload,
                                        headers=self._headers(), timeout=self.timeout)
        except requests.RequestException as exc:  # the token request's too
            raise Unreachable(f"the API at {self.base} could not be reached ({type(exc).__name__})") from None
        body = _json(resp)
        if resp.status_code in (401, 403):
            raise Rejected(f"the API rejected credential {self.cred.alias!r} (HTTP {resp.status_code})")
        if resp.status_code != 200 or not isinstance(body, dict):
            raise RulesError([problem_line(resp.status_code, body)])
        return body

    def list(self) -> list[dict[str, Any]]:
        """Every rule of the app, following ``next_token``."""
        rules: list[dict[str, Any]] = []
        params: dict[str, str] = {"max_results": "1000"}
        while True:
            body = self._call("GET", params)
            rules += body.get("data") or []
            token = (body.get("meta") or {}).get("next_token")
            if not token:
                return rules
            params = {**params, "pagination_token": token}

    def add(self, value: str, tag: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """The rule as created (or validated, ``dry_run``); RulesError with the API's reasons if refused."""
        rule = {"value": value, **({"tag": tag} if tag else {})}
        body = self._call("POST", {"dry_run": "true"} if dry_run else None, {"add": [rule]})
        if body.get("errors"):
            raise RulesError([refusal_line(e) for e in body["errors"]])
        data = body.get("data") or [rule]
        return data[0]

    def delete(self, ids: list[str]) -> int:
        """How many rules were deleted; RulesError naming the ids that were not."""
        body = self._call("POST", None, {"delete": {"ids": ids}})
        deleted = int(((body.get("meta") or {}).get("summary") or {}).get("deleted") or 0)
        if body.get("errors"):
            raise RulesError([refusal_line(e) for e in body["errors"]] + [f"{deleted} rule(s) deleted"])
        return deleted


def _json(resp: Any) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None
