# SPDX-License-Identifier: Apache-2.0
"""The client-site API of mod_uritoken (docs/client-api.md), standard library only.

A client site revokes its own tokens and reads its verdicts on any media
node, with requests signed by its own token key:

    from uritoken_mint import key_from_base64url
    from uritoken_client import revoke, feed
    key = key_from_base64url("<secret column of the key file line>")
    api = "https://media.example.net/uritoken/client"
    revoke(api, key, 7, token=token_or_url, comment="logout")
    page = feed(api, key, 7)                   # {"verdicts": [...], "next": ..., "more": ...}
    page = feed(api, key, 7, after=page["next"])

Signatures are pinned by tests/vectors/client-requests.txt
(test_client_vectors.py).
"""

import base64
import hashlib
import hmac
import json
import secrets
import time as _time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["sign_client_request", "revoke", "feed", "verify_return", "ClientApiError"]

LABEL = b"uritoken-client-v1"


class ClientApiError(Exception):
    """The node refused the request: .status (HTTP), .error (the reason name), .message."""

    def __init__(self, status, error, message):
        super().__init__(f"HTTP {status} {error}: {message}")
        self.status, self.error, self.message = status, error, message


def sign_client_request(key: bytes, key_id: int, method: str, target: str, body: bytes = b"",
                        time: int = None, nonce: str = None) -> dict:
    """The four X-UriToken-* headers for one request; target is the path and query as sent."""
    if len(key) != 32:
        raise ValueError("key must be the 32-byte secret")
    if not 1 <= key_id <= 65535:
        raise ValueError("key_id must be 1..65535")
    time = int(_time.time()) if time is None else int(time)
    nonce = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode() if nonce is None else nonce
    if isinstance(body, str):
        body = body.encode()
    signed = b"\n".join([LABEL, method.encode(), target.encode(), str(time).encode(), nonce.encode(), body])
    mac = hmac.new(key, signed, hashlib.sha256).digest()
    return {
        "X-UriToken-Key": str(key_id),
        "X-UriToken-Time": str(time),
        "X-UriToken-Nonce": nonce,
        "X-UriToken-Signature": base64.urlsafe_b64encode(mac).rstrip(b"=").decode(),
    }


def _call(method, url, key, key_id, body=b"", context=None):
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    headers = sign_client_request(key, key_id, method, target, body)
    if method == "POST":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=body if method == "POST" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        try:
            answer = json.loads(e.read())
        except ValueError:
            answer = {}
        raise ClientApiError(e.code, answer.get("error", "unknown"), answer.get("message", "")) from None


def revoke(api_url: str, key: bytes, key_id: int, token: str = None, session: str = None,
           token_key_id: int = None, expires: int = None, comment: str = None, context=None,
           subscriber: str = None, issued_before: int = None) -> dict:
    """Revokes one of the client's tokens on every node: by token (or URL), or by session, key id and expiry;
    or, with subscriber (16 hex digits, the token field), every token so far of that subscriber (with
    issued_before, a unix time not in the future: those issued before it)."""
    if subscriber is not None:
        fields = [("subscriber", subscriber)]
        if issued_before is not None:
            fields.append(("issued_before", str(issued_before)))
    elif token is not None:
        fields = [("token", token)]
    else:
        fields = [("key", str(token_key_id)), ("session", session), ("expires", str(expires))]
    if comment is not None:
        fields.append(("comment", comment))
    body = urllib.parse.urlencode(fields, quote_via=urllib.parse.quote).encode()
    return _call("POST", api_url, key, key_id, body, context)


def feed(api_url: str, key: bytes, key_id: int, after: str = None, limit: int = None, context=None) -> dict:
    """One page of the client's verdicts after the cursor `after` (a page's "next")."""
    query = [(k, str(v)) for k, v in (("after", after), ("limit", limit)) if v]
    url = api_url + ("?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote) if query else "")
    return _call("GET", url, key, key_id, b"", context)


def verify_return(url_or_query: str, keys: dict, now: int = None, max_age: int = 300):
    """Checks where a refused viewer was sent back (UriTokenReturnURL, docs/client-api.md).

    keys maps key ids to their 32-byte secrets. Returns {"reason", "key_id", "session" (or None),
    "time", "path"} if the signature is good and the time within max_age seconds, else None.
    """
    query = urllib.parse.urlsplit(url_or_query).query if "://" in url_or_query else url_or_query.lstrip("?")
    fields = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    try:
        key_id, stamp = int(fields["uritoken_key"]), int(fields["uritoken_time"])
        reason, path, sig = fields["uritoken_reason"], fields["uritoken_path"], fields["uritoken_sig"]
    except (KeyError, ValueError):
        return None
    session = fields.get("uritoken_session", "")
    key = keys.get(key_id)
    now = int(_time.time()) if now is None else int(now)
    if key is None or abs(now - stamp) > max_age:
        return None
    signed = "\n".join(["uritoken-return-v1", reason, str(key_id), session, str(stamp), path]).encode()
    want = base64.urlsafe_b64encode(hmac.new(key, signed, hashlib.sha256).digest()).rstrip(b"=").decode()
    if not hmac.compare_digest(want, sig):
        return None
    return {"reason": reason, "key_id": key_id, "session": session or None, "time": stamp, "path": path}
