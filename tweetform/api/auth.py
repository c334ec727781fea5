"""How a request is signed: OAuth 1.0a user context or an app-only bearer token."""

from __future__ import annotations

import base64
from urllib.parse import quote
from weakref import WeakKeyDictionary

from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_TYPE_AUTH_HEADER, Client

from tweetform.credentials import Credential
from tweetform.requests_safety import quiet_credential_loggers

quiet_credential_loggers()  # oauthlib logs oauth_token and the signature base string at DEBUG

# keyed by the credential itself (compared by identity), never by id(): a freed credential's id can
# be reused by another one, which must not sign with the first one's keys
_clients: WeakKeyDictionary[Credential, Client] = WeakKeyDictionary()


def oauth1_header(cred: Credential, method: str, url: str, body: bytes | str | None = None, content_type: str = "") -> str:
    """The ``Authorization: OAuth …`` header for one attempt (fresh nonce and timestamp)."""
    client = _clients.get(cred)
    if client is None:
        client = _clients[cred] = Client(
            cred.app_key,
            client_secret=cred.app_secret,
            resource_owner_key=cred.oauth_token,
            resource_owner_secret=cred.oauth_token_secret,
            signature_method=SIGNATURE_HMAC_SHA1,
            signature_type=SIGNATURE_TYPE_AUTH_HEADER,
        )
    form = body if body and content_type.startswith("application/x-www-form-urlencoded") else None
    headers = {"Content-Type": content_type} if form else {}
    _, signed, _ = client.sign(url, http_method=method, body=form, headers=headers)
    return signed["Authorization"]


def bearer_header(token: str) -> str:
    return f"Bearer {token}"


def basic_header(cred: Credential) -> str:
    """HTTP Basic of url-encoded key and secret, for ``POST oauth2/token``."""
    pair = f"{quote(cred.app_key, safe='')}:{quote(cred.app_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()
