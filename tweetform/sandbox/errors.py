"""Error bodies exactly as each API version sends them."""

from __future__ import annotations

from typing import Any

PROBLEMS = "https://api.twitter.com/2/problems/"


class ApiError(Exception):
    """An answer other than success: the status and body to send."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def v1_error(status: int, code: int, message: str) -> ApiError:
    return ApiError(status, {"errors": [{"code": code, "message": message}]})


def v1_not_authorized(path: str) -> ApiError:
    """Protected account: v1.1 answers 401 with a different body shape."""
    return ApiError(401, {"request": path, "error": "Not authorized."})


def v1_page_not_found() -> ApiError:
    return v1_error(404, 34, "Sorry, that page does not exist.")


def v2_problem(status: int, title: str, detail: str, kind: str, **extra: Any) -> ApiError:
    body = {"title": title, "detail": detail, "type": kind if kind.startswith("http") or kind == "about:blank" else PROBLEMS + kind, "status": status}
    body.update(extra)
    return ApiError(status, body)


def v2_invalid(message: str, parameters: dict[str, list[str]] | None = None) -> ApiError:
    return ApiError(
        400,
        {
            "errors": [{"parameters": parameters or {}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEMS + "invalid-request",
        },
    )


def unsupported_authentication(kind: str) -> ApiError:
    """403 for a credential kind the endpoint refuses: user context on an app-only endpoint
    (full-archive search, counts), a bearer on a user-context one (liking_users, liked_tweets)."""
    if kind == "user":
        used, supported = "OAuth 1.0a User Context", "OAuth 2.0 Application-Only"
    else:
        used, supported = "OAuth 2.0 Application-Only", "OAuth 1.0a User Context, OAuth 2.0 User Context"
    return v2_problem(
        403,
        "Unsupported Authentication",
        f"Authenticating with {used} is forbidden for this endpoint.  Supported authentication types are [{supported}].",
        "unsupported-authentication",
    )


def v2_not_found_path() -> ApiError:
    return ApiError(
        404,
        {
            "errors": [{"message": "The requested resource could not be found."}],
            "title": "Not Found Error",
            "detail": "The requested resource could not be found.",
            "type": PROBLEMS + "resource-not-found",
        },
    )


def v2_resource_error(kind: str, resource_id: str, parameter: str, resource_type: str = "user", value: str | None = None) -> dict[str, Any]:
    """A partial error inside a v2 200 answer: missing, suspended, protected or deleted."""
    noun = {"user": "user", "list": "list"}.get(resource_type, "Tweet")
    if kind == "not_found":
        title, detail, ptype = "Not Found Error", f"Could not find {noun} with {parameter}: [{value or resource_id}].", "resource-not-found"
    elif kind == "suspended":
        title, detail, ptype = "Forbidden", f"User has been suspended: [{value or resource_id}].", "resource-not-found"
    elif kind == "protected":
        title, detail, ptype = (
            "Authorization Error",
            f"Sorry, you are not authorized to see the {noun} with {parameter}: [{value or resource_id}].",
            "not-authorized-for-resource",
        )
    else:  # pragma: no cover - programming error
        raise ValueError(kind)
    return {
        "value": value or resource_id,
        "detail": detail,
        "title": title,
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": resource_id,
        "type": PROBLEMS + ptype,
    }


def rate_limited(version: str) -> ApiError:
    if version == "1.1":
        return v1_error(429, 88, "Rate limit exceeded")
    return ApiError(429, {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429})


def auth_failed(version: str, status: int, code: int, message: str) -> ApiError:
    if version == "1.1" or version == "oauth":
        return v1_error(status, code, message)
    if status == 400:
        status = 401  # v2 answers missing/malformed auth with 401
    return v2_problem(status, "Unauthorized", "Unauthorized", "about:blank")


def server_error(version: str, status: int) -> ApiError:
    if version == "1.1":
        return v1_error(status, 130, "Over capacity") if status == 503 else v1_error(status, 131, "Internal error")
    title = "Service Unavailable" if status == 503 else "Internal Server Error"
    return v2_problem(status, title, title, "about:blank")


#: v1.1 has no documented usage-cap error; the sandbox answers 429 with this code
#: (unused by the API's v1.1 error codes) so a client can tell it from a rate limit (88)
V1_USAGE_CAPPED_CODE = 429


def usage_capped(version: str, reason: str) -> ApiError:
    """Out of credits (``reason="credits"``) or over the monthly Post-read cap (``"post_cap"``)."""
    detail = "Usage cap exceeded: Monthly product cap" if reason == "post_cap" else "Usage cap exceeded: no credits left"
    if version == "1.1":
        return v1_error(429, V1_USAGE_CAPPED_CODE, detail)
    return v2_problem(
        429, "UsageCapExceeded", detail, "usage-capped",
        period="Monthly" if reason == "post_cap" else "Current", scope="Product" if reason == "post_cap" else "Account",
    )
