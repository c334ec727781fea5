"""Sandbox authentication: OAuth 1.0a, bearer tokens, credential files."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote, unquote

import pytest
import requests
from oauthlib.oauth1 import Client as OAuth1Client
from requests_oauthlib import OAuth1

from tweetform.sandbox.auth import AuthError, Authenticator, Principal
from tweetform.sandbox.credentials import (
    DEMO_BLUESKY_ACCOUNTS,
    DEMO_CREDENTIALS,
    SandboxCredential,
    demo_credentials_as_settings,
    load_bluesky_accounts,
    load_credentials,
)

# --- the API guide's "creating a signature" example ---------------------------
GUIDE_URL = "https://api.twitter.com/1.1/statuses/update.json?include_entities=true"
GUIDE_BODY = "status=Hello%20Ladies%20%2B%20Gentlemen%2C%20a%20signed%20OAuth%20request%21"
GUIDE_KEY = "xvz1evFS4wEEPTGEFPHBog"
GUIDE_SECRET = "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"
GUIDE_TOKEN = "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"
GUIDE_TOKEN_SECRET = "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"
GUIDE_NONCE = "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"
GUIDE_TS = 1318622958
GUIDE_SIGNATURE = "hCtSmYh+iHYCEqBWrE7C7hYmtUk="

GUIDE_CRED = SandboxCredential(
    alias="guide",
    app_key=GUIDE_KEY,
    app_secret=GUIDE_SECRET,
    oauth_token=GUIDE_TOKEN,
    oauth_token_secret=GUIDE_TOKEN_SECRET,
)

# --- the API guide's app-only (bearer) example --------------------------------
BASIC_KEY = "xvz1evFS4wEEPTGEFPHBog"
BASIC_SECRET = "L8qq9PZyRg6ieKGEKhZolGC0vJWLw8iEJ88DRdyOg"
BASIC_HEADER = "Basic eHZ6MWV2RlM0d0VFUFRHRUZQSEJvZzpMOHFxOVBaeVJnNmllS0dFS2hab2xHQzB2SldMdzhpRUo4OERSZHlPZw=="

USERS = [c for c in DEMO_CREDENTIALS if c.kind == "user"]
APPS = [c for c in DEMO_CREDENTIALS if c.kind == "app"]
BASE = "http://127.0.0.1:8765"
SECRETS = [
    v
    for c in (*DEMO_CREDENTIALS, GUIDE_CRED)
    for v in (c.app_secret, c.oauth_token_secret, c.bearer_token)
    if v
]


def fixed_clock(t: float = GUIDE_TS):
    return lambda: t


def guide_header(signature: str = GUIDE_SIGNATURE) -> str:
    parts = [
        ("oauth_consumer_key", GUIDE_KEY),
        ("oauth_nonce", GUIDE_NONCE),
        ("oauth_signature", signature),
        ("oauth_signature_method", "HMAC-SHA1"),
        ("oauth_timestamp", str(GUIDE_TS)),
        ("oauth_token", GUIDE_TOKEN),
        ("oauth_version", "1.0"),
    ]
    return "OAuth " + ", ".join(f'{k}="{quote(v, safe="")}"' for k, v in parts)


def guide_headers(signature: str = GUIDE_SIGNATURE) -> dict[str, str]:
    return {
        "Authorization": guide_header(signature),
        "Content-Type": "application/x-www-form-urlencoded",
    }


def expect_error(status: int, code: int, reason: str | None = None):
    """Context manager: an AuthError with this status/code, free of secrets."""

    class _Check:
        def __enter__(self):
            self._raises = pytest.raises(AuthError)
            self.info = self._raises.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self._raises.__exit__(*exc)
            err = self.info.value
            assert (err.status, err.v11_code) == (status, code), (err.status, err.v11_code, err.reason)
            if reason is not None:
                assert err.reason == reason
            text = f"{err} {err.message} {err.reason} {err!r}"
            for secret in SECRETS:
                assert secret not in text
            return suppressed

    return _Check()


def sign_requests(cred, method, url, *, data=None, params=None, secret=None, token_secret=None):
    """An independently signed request (requests + requests-oauthlib)."""
    auth = OAuth1(
        cred.app_key,
        secret or cred.app_secret,
        cred.oauth_token,
        token_secret or cred.oauth_token_secret,
    )
    return requests.Request(method, url, data=data, params=params, auth=auth).prepare()


def sign_at(cred, url, timestamp, nonce, method="GET", signature_method="HMAC-SHA1"):
    """Headers of a request signed with a chosen timestamp and nonce."""
    client = OAuth1Client(
        cred.app_key,
        client_secret=cred.app_secret,
        resource_owner_key=cred.oauth_token,
        resource_owner_secret=cred.oauth_token_secret,
        timestamp=str(timestamp),
        nonce=nonce,
        signature_method=signature_method,
    )
    _, headers, _ = client.sign(url, method)
    return headers


# --- OAuth 1.0a: the guide's test vector --------------------------------------
def test_guide_vector_verifies():
    auth = Authenticator([GUIDE_CRED], clock=fixed_clock())
    principal = auth.authenticate("POST", GUIDE_URL, guide_headers(), GUIDE_BODY)
    assert principal == Principal("guide", "user", GUIDE_KEY)


def test_guide_vector_one_character_changed_fails_with_32():
    auth = Authenticator([GUIDE_CRED], clock=fixed_clock())
    tampered = "i" + GUIDE_SIGNATURE[1:]
    with expect_error(401, 32, "bad_signature"):
        auth.authenticate("POST", GUIDE_URL, guide_headers(tampered), GUIDE_BODY)
    # A failed attempt does not burn the nonce: the genuine request still passes.
    assert auth.authenticate("POST", GUIDE_URL, guide_headers(), GUIDE_BODY).alias == "guide"


@pytest.mark.parametrize(
    "change",
    [
        lambda m, u, b: ("GET", u, b),
        lambda m, u, b: (m, u.replace("true", "false"), b),
        lambda m, u, b: (m, u.replace("update", "updates"), b),
        lambda m, u, b: (m, u, b.replace("Ladies", "Lads")),
        lambda m, u, b: (m, u.replace("api.twitter.com", "127.0.0.1:8765"), b),
    ],
    ids=["method", "query", "path", "body", "host"],
)
def test_guide_vector_signature_covers_request(change):
    auth = Authenticator([GUIDE_CRED], clock=fixed_clock())
    method, url, body = change("POST", GUIDE_URL, GUIDE_BODY)
    with expect_error(401, 32, "bad_signature"):
        auth.authenticate(method, url, guide_headers(), body)


def test_guide_vector_bytes_body_and_lowercase_header_names():
    auth = Authenticator([GUIDE_CRED], clock=fixed_clock())
    headers = {k.lower(): v for k, v in guide_headers().items()}
    principal = auth.authenticate("post", GUIDE_URL, headers, GUIDE_BODY.encode())
    assert principal.kind == "user"


def test_body_counts_only_when_form_encoded():
    auth = Authenticator([GUIDE_CRED], clock=fixed_clock())
    headers = {"Authorization": guide_header()}  # no Content-Type
    with expect_error(401, 32, "bad_signature"):
        auth.authenticate("POST", GUIDE_URL, headers, GUIDE_BODY)


@pytest.mark.parametrize("skew", [-300, 300, -299, 120])
def test_timestamp_inside_window(skew):
    auth = Authenticator([GUIDE_CRED], clock=fixed_clock(GUIDE_TS + skew))
    assert auth.authenticate("POST", GUIDE_URL, guide_headers(), GUIDE_BODY).alias == "guide"


@pytest.mark.parametrize("skew", [-301, 301, 3600, -86400])
def test_timestamp_outside_window_is_135(skew):
    auth = Authenticator([GUIDE_CRED], clock=fixed_clock(GUIDE_TS + skew))
    with expect_error(401, 135, "timestamp"):
        auth.authenticate("POST", GUIDE_URL, guide_headers(), GUIDE_BODY)


# --- OAuth 1.0a: an independent client (requests + requests-oauthlib) --------
@pytest.mark.parametrize(
    ("url", "params"),
    [
        (BASE + "/1.1/friends/ids.json", {"user_id": "12", "cursor": "-1", "count": "5000"}),
        (BASE + "/1.1/users/lookup.json", {"user_id": "12,13,14", "screen_name": "jack,biz"}),
        (BASE + "/1.1/search/tweets.json", {"q": "hello world, again", "lang": "en"}),
        (BASE + "/1.1/search/tweets.json", {"q": "café naïve 東京 #tag @user 🙂", "count": "100"}),
        (BASE + "/2/tweets/search/recent?query=from:jack has:links&max_results=100", None),
        (BASE + "/2/users/12/following?user.fields=created_at,description&max_results=1000", None),
        (BASE + "/2/tweets/search/recent?query=\u00e9t\u00e9 OR \u4e16\u754c&next_token=b26v89c19zqg8o3f", None),
        (BASE + "/1.1/search/tweets.json?q=a%2Cb%20c&q=second", None),
        (BASE + "/2/users?ids=1,2,3", {"expansions": "pinned_tweet_id", "tweet.fields": "a,b"}),
        ("http://localhost:8765/1.1/application/rate_limit_status.json", {"resources": "friends,statuses"}),
        ("http://[::1]:8765/1.1/friends/list.json", {"screen_name": "a b", "skip_status": "true"}),
        ("http://127.0.0.1/1.1/statuses/lookup.json", {"id": "857699969263964161,1", "map": "true"}),
    ],
)
def test_requests_oauthlib_signed_requests_pass(url, params):
    auth = Authenticator(DEMO_CREDENTIALS)
    prepared = sign_requests(USERS[0], "GET", url, params=params)
    principal = auth.authenticate(prepared.method, prepared.url, prepared.headers, prepared.body)
    assert principal == Principal("demo-user-1", "user", USERS[0].app_key)


def test_requests_oauthlib_every_demo_user_passes():
    auth = Authenticator(DEMO_CREDENTIALS)
    for cred in USERS:
        prepared = sign_requests(cred, "GET", BASE + "/1.1/friends/ids.json", params={"screen_name": "x,y z"})
        principal = auth.authenticate(prepared.method, prepared.url, prepared.headers, prepared.body)
        assert (principal.alias, principal.kind, principal.app_key) == (cred.alias, "user", cred.app_key)


def test_requests_oauthlib_form_post_passes():
    auth = Authenticator(DEMO_CREDENTIALS)
    prepared = sign_requests(
        USERS[1],
        "POST",
        BASE + "/1.1/statuses/update.json?include_entities=true",
        data={"status": "Hello Ladies + Gentlemen, a signed OAuth request! é"},
    )
    # requests-oauthlib leaves bytes header values; they are accepted as such.
    assert prepared.headers["Content-Type"] == b"application/x-www-form-urlencoded"
    principal = auth.authenticate(prepared.method, prepared.url, prepared.headers, prepared.body)
    assert principal.alias == "demo-user-2"
    # The body is signed: changing it breaks the signature (fresh
    # authenticator, so the nonce is not a replay).
    with expect_error(401, 32, "bad_signature"):
        Authenticator(DEMO_CREDENTIALS).authenticate(prepared.method, prepared.url, prepared.headers, "status=changed")


def test_relative_url_is_completed_from_host_header():
    auth = Authenticator(DEMO_CREDENTIALS)
    prepared = sign_requests(USERS[2], "GET", BASE + "/1.1/users/show.json", params={"screen_name": "jack"})
    path = prepared.url[len(BASE):]
    headers = dict(prepared.headers, Host="127.0.0.1:8765")
    assert auth.authenticate("GET", path, headers).alias == "demo-user-3"


def test_raw_unicode_query_is_accepted():
    # An HTTP layer handing over a decoded URL still verifies: the decoded
    # parameter values are what is signed.
    auth = Authenticator(DEMO_CREDENTIALS)
    prepared = sign_requests(USERS[0], "GET", BASE + "/1.1/search/tweets.json", params={"q": "café 東京,x"})
    raw = prepared.url.split("?")[0] + "?" + unquote(prepared.url.split("?")[1]).replace("+", " ")
    assert "東京" in raw
    assert auth.authenticate("GET", raw, prepared.headers).alias == "demo-user-1"


@pytest.mark.parametrize("which", ["app_secret", "oauth_token_secret"])
def test_wrong_secret_is_32(which):
    auth = Authenticator(DEMO_CREDENTIALS)
    cred = USERS[0]
    # another app's secret (demo-user-1..4 share one app)
    wrong = {"secret": USERS[-1].app_secret} if which == "app_secret" else {"token_secret": USERS[1].oauth_token_secret}
    prepared = sign_requests(cred, "GET", BASE + "/1.1/friends/ids.json?user_id=12", **wrong)
    with expect_error(401, 32, "bad_signature"):
        auth.authenticate(prepared.method, prepared.url, prepared.headers)


def test_unknown_consumer_key_or_token_is_32():
    auth = Authenticator(DEMO_CREDENTIALS)
    stranger = SandboxCredential("stranger", "k" * 25, "s" * 50, "1-" + "t" * 40, "u" * 45)
    prepared = sign_requests(stranger, "GET", BASE + "/1.1/friends/ids.json")
    with expect_error(401, 32, "unknown_key"):
        auth.authenticate(prepared.method, prepared.url, prepared.headers)
    # A known token used with another app's key.
    mixed = SandboxCredential(
        "mixed", USERS[-1].app_key, USERS[-1].app_secret, USERS[0].oauth_token, USERS[0].oauth_token_secret
    )
    prepared = sign_requests(mixed, "GET", BASE + "/1.1/friends/ids.json")
    with expect_error(401, 32, "unknown_key"):
        auth.authenticate(prepared.method, prepared.url, prepared.headers)


def test_replayed_nonce_is_rejected():
    auth = Authenticator(DEMO_CREDENTIALS)
    prepared = sign_requests(USERS[0], "GET", BASE + "/1.1/friends/ids.json?user_id=12&cursor=-1")
    auth.authenticate(prepared.method, prepared.url, prepared.headers)
    with expect_error(401, 32, "replayed_nonce"):
        auth.authenticate(prepared.method, prepared.url, prepared.headers)
    # Signed again (new nonce), the same request passes.
    again = sign_requests(USERS[0], "GET", BASE + "/1.1/friends/ids.json?user_id=12&cursor=-1")
    assert auth.authenticate(again.method, again.url, again.headers).alias == "demo-user-1"


def test_same_nonce_under_another_credential_is_not_a_replay():
    now = 1_700_000_000
    auth = Authenticator(DEMO_CREDENTIALS, clock=fixed_clock(now))
    url = BASE + "/1.1/friends/ids.json"
    for cred in USERS[:3]:
        assert auth.authenticate("GET", url, sign_at(cred, url, now, "samenonce123")).alias == cred.alias


def test_nonce_memory_is_bounded():
    t = [1_700_000_000.0]
    auth = Authenticator(DEMO_CREDENTIALS, timestamp_window=60, clock=lambda: t[0])
    url = BASE + "/2/users/12/following"
    for i in range(500):
        auth.authenticate("GET", url, sign_at(USERS[i % 8], url, int(t[0]), f"nonce{i}"))
        t[0] += 1
    # Only nonces whose timestamps are still inside the window are kept.
    assert auth.remembered_nonces <= 62
    t[0] += 1000
    auth.authenticate("GET", url, sign_at(USERS[0], url, int(t[0]), "last"))
    assert auth.remembered_nonces == 1


def test_old_timestamp_is_135():
    now = 1_700_000_000
    auth = Authenticator(DEMO_CREDENTIALS, clock=fixed_clock(now))
    url = BASE + "/1.1/friends/ids.json"
    with expect_error(401, 135, "timestamp"):
        auth.authenticate("GET", url, sign_at(USERS[0], url, now - 900, "oldnonce"))
    assert auth.authenticate("GET", url, sign_at(USERS[0], url, now - 200, "oknonce")).alias == "demo-user-1"


def test_only_hmac_sha1_is_accepted():
    now = 1_700_000_000
    auth = Authenticator(DEMO_CREDENTIALS, clock=fixed_clock(now))
    url = BASE + "/1.1/friends/ids.json"
    headers = sign_at(USERS[0], url, now, "n256", signature_method="HMAC-SHA256")
    with expect_error(401, 32, "signature_method"):
        auth.authenticate("GET", url, headers)


def test_missing_authorization_is_215_400():
    auth = Authenticator(DEMO_CREDENTIALS)
    with expect_error(400, 215, "missing"):
        auth.authenticate("GET", BASE + "/1.1/friends/ids.json", {})
    with expect_error(400, 215, "missing"):
        auth.authenticate("GET", BASE + "/1.1/friends/ids.json", {"authorization": "  "})
    err = AuthError(400, 215, "Bad Authentication data.", "missing")
    assert err.message == "Bad Authentication data."


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "OAuth garbage",
        "OAuth ",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer two words",
        'OAuth oauth_consumer_key="abc"',
        'OAuth oauth_consumer_key="a", oauth_nonce="n", oauth_signature="s", '
        'oauth_signature_method="HMAC-SHA1", oauth_timestamp="1318622958"',  # no token
        guide_header().replace('oauth_timestamp="1318622958"', 'oauth_timestamp="soon"'),
        guide_header().replace('oauth_version="1.0"', 'oauth_version="2.0"'),
    ],
)
def test_garbage_authorization_is_215(value):
    auth = Authenticator([GUIDE_CRED], clock=fixed_clock())
    with expect_error(400, 215):
        auth.authenticate("POST", GUIDE_URL, {"Authorization": value}, GUIDE_BODY)


def test_duplicate_oauth_params_in_query_and_header_is_215():
    auth = Authenticator([GUIDE_CRED], clock=fixed_clock())
    url = GUIDE_URL + "&oauth_nonce=" + GUIDE_NONCE
    with expect_error(400, 215, "malformed"):
        auth.authenticate("POST", url, guide_headers(), GUIDE_BODY)


# --- app-only: bearer tokens -------------------------------------------------
def test_basic_example_decodes_to_documented_key_and_secret():
    raw = base64.b64decode(BASIC_HEADER.split(" ", 1)[1]).decode()
    key, _, secret = raw.partition(":")
    assert (unquote(key), unquote(secret)) == (BASIC_KEY, BASIC_SECRET)


def test_issue_bearer_with_documented_basic_header_round_trip():
    app = SandboxCredential("guide-app", app_key=BASIC_KEY, app_secret=BASIC_SECRET)
    auth = Authenticator([app])
    token = auth.issue_bearer(
        {"Authorization": BASIC_HEADER, "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"},
        b"grant_type=client_credentials",
    )
    assert token.startswith("AAAAAAAAAAAAAAAAAAAAA") and len(token) == 112
    assert BASIC_SECRET not in token
    # The same token until invalidated, as the API does.
    assert auth.issue_bearer({"authorization": BASIC_HEADER}, "grant_type=client_credentials") == token
    principal = auth.authenticate("GET", BASE + "/2/tweets/search/recent?query=x", {"Authorization": f"Bearer {token}"})
    assert principal == Principal("guide-app", "app", BASIC_KEY)


def basic(key: str, secret: str) -> dict[str, str]:
    raw = f"{quote(key, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


# an app known only through its users' credentials (no app-only entry)
LONE_USER = SandboxCredential("lone-user", "L" * 25, "l" * 50, "9-" + "t" * 40, "v" * 45)


def test_user_credential_app_may_get_an_app_only_bearer():
    auth = Authenticator([*DEMO_CREDENTIALS, LONE_USER])
    cred = LONE_USER
    token = auth.issue_bearer(basic(cred.app_key, cred.app_secret), "grant_type=client_credentials")
    principal = auth.authenticate("GET", BASE + "/1.1/search/tweets.json?q=a", {"Authorization": "Bearer " + token})
    assert principal == Principal(cred.alias, "app", cred.app_key)
    # Deterministic across authenticators (the HTTP layer may restart).
    other = Authenticator([*DEMO_CREDENTIALS, LONE_USER])
    assert other.issue_bearer(basic(cred.app_key, cred.app_secret), "grant_type=client_credentials") == token
    # A demo user's app has an app-only credential: its bearer token is that app's.
    lab = USERS[3]
    token = auth.issue_bearer(basic(lab.app_key, lab.app_secret), "grant_type=client_credentials")
    assert token == APPS[0].bearer_token
    assert auth.app_of(auth.authenticate("GET", BASE + "/2/users?ids=1", {"Authorization": "Bearer " + token})) == (
        lab.app_key, "demo-app-1")


def test_app_credential_gets_its_fixed_bearer_and_fixed_bearer_authenticates():
    auth = Authenticator(DEMO_CREDENTIALS)
    for app in APPS:
        assert auth.issue_bearer(basic(app.app_key, app.app_secret), "grant_type=client_credentials") == app.bearer_token
        principal = auth.authenticate("GET", BASE + "/2/users?ids=1", {"authorization": "Bearer " + app.bearer_token})
        assert principal == Principal(app.alias, "app", app.app_key)


def test_bearer_only_credential():
    cred = SandboxCredential("only-bearer", bearer_token="AAAA" + "b" * 60)
    auth = Authenticator([cred])
    assert auth.authenticate("GET", BASE + "/2/users?ids=1", {"Authorization": "Bearer " + cred.bearer_token}) == (
        Principal("only-bearer", "app", None)
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Bearer " + APPS[0].bearer_token},
        basic(APPS[0].app_key, APPS[1].app_secret),
        basic("unknown-key", APPS[0].app_secret),
        {"Authorization": "Basic " + base64.b64encode(APPS[0].app_key.encode()).decode()},
    ],
    ids=["none", "not-base64", "not-basic", "wrong-secret", "unknown-key", "no-colon"],
)
def test_issue_bearer_wrong_credentials_is_403_99(headers):
    auth = Authenticator(DEMO_CREDENTIALS)
    with expect_error(403, 99, "bad_credentials"):
        auth.issue_bearer(headers, "grant_type=client_credentials")


@pytest.mark.parametrize("body", [None, "", b"", "grant_type=password", "foo=bar", "grant_type"])
def test_issue_bearer_missing_grant_type_is_403_170(body):
    auth = Authenticator(DEMO_CREDENTIALS)
    with expect_error(403, 170, "grant_type"):
        auth.issue_bearer(basic(APPS[0].app_key, APPS[0].app_secret), body)


def test_bad_bearer_is_89():
    auth = Authenticator(DEMO_CREDENTIALS)
    with expect_error(401, 89, "invalid_token"):
        auth.authenticate("GET", BASE + "/2/users?ids=1", {"Authorization": "Bearer AAAAAAAAAAAAAAAAAAAAAnope"})
    # A near miss of a real token is no token either.
    with expect_error(401, 89, "invalid_token"):
        auth.authenticate("GET", BASE + "/2/users?ids=1", {"Authorization": "Bearer " + APPS[0].bearer_token[:-1]})


# --- revocation ----------------------------------------------------------------
def test_revoked_credentials_fail_with_89_and_restore():
    auth = Authenticator(DEMO_CREDENTIALS)
    user, app = USERS[4], APPS[1]
    bearer = {"Authorization": "Bearer " + app.bearer_token}
    auth.revoke(user.alias)
    auth.revoke(app.alias)
    assert auth.is_revoked(user.alias)
    prepared = sign_requests(user, "GET", BASE + "/1.1/friends/ids.json")
    with expect_error(401, 89, "revoked"):
        auth.authenticate(prepared.method, prepared.url, prepared.headers)
    with expect_error(401, 89, "revoked"):
        auth.authenticate("GET", BASE + "/2/users?ids=1", bearer)
    with expect_error(403, 99, "revoked"):
        auth.issue_bearer(basic(app.app_key, app.app_secret), "grant_type=client_credentials")
    # Others are unaffected.
    other = sign_requests(USERS[5], "GET", BASE + "/1.1/friends/ids.json")
    assert auth.authenticate(other.method, other.url, other.headers).alias == USERS[5].alias
    auth.restore(user.alias)
    auth.restore(app.alias)
    prepared = sign_requests(user, "GET", BASE + "/1.1/friends/ids.json")
    assert auth.authenticate(prepared.method, prepared.url, prepared.headers).alias == user.alias
    assert auth.authenticate("GET", BASE + "/2/users?ids=1", bearer).alias == app.alias
    with pytest.raises(KeyError):
        auth.revoke("no-such-alias")


def test_revoking_a_user_credential_also_revokes_its_issued_bearer():
    auth = Authenticator([*DEMO_CREDENTIALS, LONE_USER])
    cred = LONE_USER
    token = auth.issue_bearer(basic(cred.app_key, cred.app_secret), "grant_type=client_credentials")
    auth.revoke(cred.alias)
    with expect_error(401, 89, "revoked"):
        auth.authenticate("GET", BASE + "/2/users?ids=1", {"Authorization": "Bearer " + token})


# --- authenticator setup ----------------------------------------------------------
def test_shared_app_key_with_different_secret_is_rejected():
    a = SandboxCredential("a", "key" * 8, "s1" * 25, "1-" + "t" * 40, "x" * 45)
    b = SandboxCredential("b", "key" * 8, "s2" * 25, "2-" + "t" * 40, "y" * 45)
    with pytest.raises(ValueError, match="'b'") as info:
        Authenticator([a, b])
    assert "s1" * 25 not in str(info.value) and "s2" * 25 not in str(info.value)


def test_shared_app_key_serves_several_users():
    a = SandboxCredential("a", "key" * 8, "s" * 50, "1-" + "t" * 40, "x" * 45)
    b = SandboxCredential("b", "key" * 8, "s" * 50, "2-" + "t" * 40, "y" * 45)
    auth = Authenticator([a, b])
    for cred in (a, b):
        prepared = sign_requests(cred, "GET", BASE + "/1.1/friends/ids.json")
        assert auth.authenticate(prepared.method, prepared.url, prepared.headers).alias == cred.alias


def test_no_credentials_is_an_error():
    with pytest.raises(ValueError):
        Authenticator([])


# --- credentials ---------------------------------------------------------------------
def test_demo_credentials_shape():
    aliases = [c.alias for c in DEMO_CREDENTIALS]
    assert aliases == [f"demo-user-{i}" for i in range(1, 9)] + ["demo-app-1", "demo-app-2"]
    # two apps of four users each (plus each app's app-only credential), as labs have
    apps = {c.app_key: [d.alias for d in DEMO_CREDENTIALS if d.app_key == c.app_key] for c in DEMO_CREDENTIALS}
    assert sorted(apps.values()) == [[*(f"demo-user-{i}" for i in range(1, 5)), "demo-app-1"],
                                     [*(f"demo-user-{i}" for i in range(5, 9)), "demo-app-2"]]
    values = set()
    for cred in DEMO_CREDENTIALS:
        assert re.fullmatch(r"[A-Za-z0-9]{25}", cred.app_key)
        assert re.fullmatch(r"[A-Za-z0-9]{50}", cred.app_secret)
        if cred.kind == "user":
            assert re.fullmatch(r"[0-9]+-[A-Za-z0-9]{40}", cred.oauth_token)
            assert re.fullmatch(r"[A-Za-z0-9]{45}", cred.oauth_token_secret)
            assert cred.bearer_token is None
        else:
            assert cred.oauth_token is None and cred.oauth_token_secret is None
            assert re.fullmatch(r"A{21}[A-Za-z0-9]{91}", cred.bearer_token)
        for v in (cred.oauth_token, cred.oauth_token_secret, cred.bearer_token):
            if v:
                assert v not in values
                values.add(v)
    assert [c.kind for c in DEMO_CREDENTIALS].count("user") == 8


def test_demo_credentials_as_settings_round_trip():
    settings = demo_credentials_as_settings()
    assert settings[0] == {
        "alias": "demo-user-1",
        "app_key": USERS[0].app_key,
        "app_secret": USERS[0].app_secret,
        "oauth_token": USERS[0].oauth_token,
        "oauth_token_secret": USERS[0].oauth_token_secret,
    }
    assert set(settings[len(DEMO_CREDENTIALS) - 1]) == {"alias", "app_key", "app_secret", "bearer_token"}
    assert set(settings[-1]) == {"alias", "handle", "app_password"}  # then the Bluesky accounts
    assert load_credentials(settings) == list(DEMO_CREDENTIALS)
    assert load_bluesky_accounts(settings) == list(DEMO_BLUESKY_ACCOUNTS)
    settings[0]["alias"] = "changed"  # fresh dicts: the demo set is untouched
    assert DEMO_CREDENTIALS[0].alias == "demo-user-1"


def test_repr_hides_secrets():
    for cred in (*DEMO_CREDENTIALS, GUIDE_CRED):
        text = repr(cred)
        assert cred.alias in text
        for secret in (cred.app_secret, cred.oauth_token_secret, cred.bearer_token):
            if secret:
                assert secret not in text


def test_load_tweetform_shapes(tmp_path):
    entries = [
        {"alias": "u", "app_key": "k1", "app_secret": "s1", "oauth_token": "1-t", "oauth_token_secret": "ts"},
        {"alias": "b", "bearer_token": "AAAAbearer"},
        {"alias": "a", "app_key": "k2", "app_secret": "s2", "proxy": "http://ignored"},
    ]
    creds = load_credentials(entries)
    assert [(c.alias, c.kind) for c in creds] == [("u", "user"), ("b", "app"), ("a", "app")]
    assert creds[1].app_key is None and creds[1].bearer_token == "AAAAbearer"
    assert load_credentials({"credentials": entries}) == creds
    path = tmp_path / "creds.json"
    path.write_text(json.dumps({"credentials": entries}))
    assert load_credentials(path) == creds
    assert load_credentials(str(path)) == creds


def test_load_tweetf0rm_config(tmp_path):
    config = {
        "apikeys": {
            "i0mf0rmer01": {
                "app_key": "APP_KEY_1",
                "app_secret": "APP_SECRET_1",
                "oauth_token": "1-OAUTH_TOKEN_1",
                "oauth_token_secret": "OAUTH_TOKEN_SECRET_1",
            },
            "i0mf0rmer02": {
                "app_key": "APP_KEY_2",
                "app_secret": "APP_SECRET_2",
                "oauth_token": "2-OAUTH_TOKEN_2",
                "oauth_token_secret": "OAUTH_TOKEN_SECRET_2",
            },
        },
        "redis_config": {"host": "localhost", "port": 6379, "db": 0, "password": None},
        "verbose": "True",
        "output": "./data",
        "archive_output": "./data",
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    creds = load_credentials(path)
    assert [c.alias for c in creds] == ["i0mf0rmer01", "i0mf0rmer02"]
    assert creds[0] == SandboxCredential(
        "i0mf0rmer01", "APP_KEY_1", "APP_SECRET_1", "1-OAUTH_TOKEN_1", "OAUTH_TOKEN_SECRET_1"
    )
    assert all(c.kind == "user" for c in creds)
    assert load_credentials(config) == creds


SECRET = "VerySecretValue0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ([{"alias": "x", "app_key": "k", "oauth_token": "1-t", "oauth_token_secret": SECRET}], r"credential 'x': app_secret is missing"),
        ([{"alias": "ok", "bearer_token": "B"}, {"alias": "y", "app_secret": SECRET}], r"credential 'y': app_key is missing"),
        ([{"alias": "z", "app_key": "k", "app_secret": SECRET, "oauth_token": "1-t"}], r"'z'.*oauth_token_secret"),
        ([{"alias": "w", "app_key": "k", "app_secret": 12345, "bearer_token": SECRET}], r"'w'.*app_secret"),
        ([{"alias": "v", "app_key": "k", "app_secret": SECRET + " "}], r"'v'.*whitespace"),
        ([{"alias": "n"}], r"credential 'n': needs OAuth 1.0a user keys"),
        ([{"app_key": "k", "app_secret": SECRET}], r"credentials\[0\]: credential has no alias"),
        ([SECRET], r"credentials\[0\]: a credential must be an object"),
        ({"apikeys": {"cfg1": {"app_key": "k", "oauth_token": "1-t", "oauth_token_secret": SECRET}}},
         r"credential 'cfg1': app_secret is missing"),
        ({"apikeys": [SECRET]}, r"apikeys"),
        ({"something": SECRET}, r"expected a list"),
        (SECRET.encode(), r"expected a list"),
        ([], r"no credentials"),
        ([{"alias": "d", "bearer_token": "B1"}, {"alias": "d", "bearer_token": SECRET}], r"duplicate credential aliases \['d'\]"),
    ],
)
def test_malformed_credentials_errors_do_not_leak_secrets(source, expected):
    with pytest.raises(ValueError, match=expected) as info:
        load_credentials(source)
    assert SECRET not in str(info.value)
    assert str(12345) not in str(info.value)


def test_unreadable_or_invalid_json_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"apikeys": {"a": {"app_secret": "' + SECRET + '" oops')
    with pytest.raises(ValueError, match="is not JSON") as info:
        load_credentials(bad)
    assert SECRET not in str(info.value)
    with pytest.raises(ValueError, match="cannot read"):
        load_credentials(tmp_path / "missing.json")


def test_credential_constructor_validates_without_leaking():
    with pytest.raises(ValueError, match="oauth_token_secret") as info:
        SandboxCredential("c", "k", SECRET, "1-t")
    assert SECRET not in str(info.value)
