# SPDX-License-Identifier: Apache-2.0
"""Reference minter for mod_uritoken tokens (format v1), standard library only.

The format is specified in docs/token-format.md and pinned by the
known-answer vectors in tests/vectors/tokens.txt (see test_vectors.py).

    from uritoken_mint import mint, key_from_base64url
    key = key_from_base64url("<secret column of the key file line>")
    token = mint(key, 7, "site42", int(time.time()) + 3600, scope="/gallery/12/")
    url = f"https://media.example.net/_uk_{token}/gallery/12/photo.jpg"
"""

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import struct
import time

__all__ = ["mint", "key_from_base64url", "subscriber_id", "host_name"]

VERSION = 1
FLAG_NOT_BEFORE, FLAG_SCOPE, FLAG_IPV4, FLAG_IPV6, FLAG_SUBSCRIBER = 0x01, 0x02, 0x04, 0x08, 0x10
SCOPE_EXACT = 0x80
_CLIENT_RE = re.compile(r"[A-Za-z0-9._-]{1,32}")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")


def _is_uint(value, bits: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < (1 << bits)


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_from_base64url(text: str) -> bytes:
    """Decodes the 43-character secret of a key file line into its 32 bytes."""
    if len(text) != 43 or not _B64URL_RE.fullmatch(text):
        raise ValueError("key must be 43 characters of base64url without padding")
    key = base64.urlsafe_b64decode(text + "=")
    if _b64url_encode(key) != text:  # non-canonical trailing bits
        raise ValueError("key is not canonical base64url")
    return key


def _scope(scope: str):
    """Returns (descriptor byte, canonical path bytes) for a decoded scope path.

    "/gallery/12/" (trailing slash) is a directory prefix, "/video/a.mp4"
    one exact file; repeated slashes are merged.
    """
    if not scope.startswith("/") or "%" in scope or "\0" in scope:
        raise ValueError("scope must be an absolute, decoded path (no '%')")
    segments = [s for s in scope.split("/") if s]
    for seg in segments:
        if seg in (".", "..") or seg.lower().startswith("_uk_"):
            raise ValueError(f"scope segment {seg!r} is not allowed")
    if not 1 <= len(segments) <= 127:
        raise ValueError("scope must have 1 to 127 segments")
    exact = not scope.endswith("/")
    path = ("/" + "/".join(segments) + ("" if exact else "/")).encode("utf-8")
    if len(path) > 0xFFFF:
        raise ValueError("scope is too long")
    return len(segments) | (SCOPE_EXACT if exact else 0), path


def _network(network: str):
    """Returns (flag, prefix length, masked address bytes) for "a.b.c.d/n",
    "x:y::/n" or a bare address (full length). IPv4-mapped IPv6 is IPv4."""
    addr_text, slash, length_text = network.partition("/")
    if "%" in addr_text:
        raise ValueError("network must not carry a zone id")
    addr = ipaddress.ip_address(addr_text)
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = addr.max_prefixlen
    length = bits
    if slash:
        if not (length_text.isdigit() and length_text.isascii() and len(length_text) <= 3):
            raise ValueError("network prefix length must be a number")
        length = int(length_text)
    if not 1 <= length <= bits:
        raise ValueError(f"network prefix length must be 1 to {bits}")
    mask = ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)
    masked = (int(addr) & mask).to_bytes(bits // 8, "big")
    return (FLAG_IPV4 if bits == 32 else FLAG_IPV6), length, masked


def subscriber_id(secret: bytes, client: str, account: str) -> bytes:
    """The 8-byte subscriber field for the site's account id (docs/token-format.md, "Subscriber").

    secret is 32 bytes the site keeps to itself (never a token key); account
    is any string (UTF-8) or bytes. No personal identifier reaches a URL.
    """
    if len(secret) != 32:
        raise ValueError("secret must be 32 bytes")
    if not isinstance(client, str) or not _CLIENT_RE.fullmatch(client):
        raise ValueError("client must be 1 to 32 of A-Z a-z 0-9 . _ -")
    account = account.encode("utf-8") if isinstance(account, str) else bytes(account)
    return hmac.new(secret, b"uritoken-subscriber-v1\n" + client.encode("ascii") + b"\n" + account,
                    hashlib.sha256).digest()[:8]


def mint(key: bytes, key_id: int, client: str, expires: int, session: bytes = None,
         not_before: int = None, scope: str = None, network: str = None,
         subscriber: bytes = None, issued: int = None) -> str:
    """Mints a token: the characters to put after "/_uk_" in the URL.

    key         the 32-byte secret (key_from_base64url of the key file column)
    key_id      the key's id, 1..65535
    client      the key's client id, 1..32 of [A-Za-z0-9._-]
    expires     unix seconds (u32); the server refuses more than its
                UriTokenMaxTTL (default 7 days) ahead
    session     8 bytes; random if None (fix it only for tests)
    not_before  unix seconds, earlier than expires; None for none
    scope       decoded path "/dir/sub/" (a tree) or "/dir/file.mp4" (one file)
    network     client network "192.0.2.0/24", "2001:db8::/48" or one address
    subscriber  8 bytes (subscriber_id); None for a token bound to no subscriber
    issued      with a subscriber: when minted, unix seconds (default now), not after expires
    """
    if len(key) != 32:
        raise ValueError("key must be 32 bytes")
    if not _is_uint(key_id, 16) or key_id == 0:
        raise ValueError("key_id must be 1 to 65535")
    if not isinstance(client, str) or not _CLIENT_RE.fullmatch(client):
        raise ValueError("client must be 1 to 32 of A-Z a-z 0-9 . _ -")
    if not _is_uint(expires, 32):
        raise ValueError("expires must fit in 32 bits")
    session = secrets.token_bytes(8) if session is None else bytes(session)
    if len(session) != 8:
        raise ValueError("session must be 8 bytes")

    flags, optional, bound = 0, b"", b""
    if not_before is not None:
        if not _is_uint(not_before, 32) or not_before >= expires:
            raise ValueError("not_before must be earlier than expires")
        flags |= FLAG_NOT_BEFORE
        optional += struct.pack(">I", not_before)
    if scope is not None:
        descriptor, path = _scope(scope)
        flags |= FLAG_SCOPE
        optional += bytes([descriptor])
        bound += struct.pack(">H", len(path)) + path
    if network is not None:
        flag, length, masked = _network(network)
        flags |= flag
        optional += bytes([length])
        bound += masked
    if subscriber is not None:
        subscriber = bytes(subscriber)
        issued = int(time.time()) if issued is None else issued
        if len(subscriber) != 8:
            raise ValueError("subscriber must be 8 bytes (subscriber_id)")
        if not _is_uint(issued, 32) or issued > expires:
            raise ValueError("issued must not be later than expires")
        flags |= FLAG_SUBSCRIBER
        optional += subscriber + struct.pack(">I", issued)

    payload = (struct.pack(">BBHI", VERSION, flags, key_id, expires) + session + optional
               + bytes([len(client)]) + client.encode("ascii"))
    tag = hmac.new(key, payload + bound, hashlib.sha256).digest()[:16]
    return _b64url_encode(payload + tag)


_NODE_HASH_RE = re.compile(r"[0-9a-f]{32}")
_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def host_name(address: str, node_hash: str, zone: str) -> str:
    """The host name of one media server at one of its addresses (docs/https.md), e.g.
    host_name("203.0.113.7", node_hash, "media.example.net") ->
    "203-0-113-7.<node_hash>.media.example.net"; IPv6 written out in full. Raises ValueError."""
    if not isinstance(node_hash, str) or not _NODE_HASH_RE.fullmatch(node_hash):
        raise ValueError("node_hash must be 32 lower-case hex digits (uritoken node-identity)")
    apex = (zone[:-1] if zone.endswith(".") else zone).lower()
    labels = apex.split(".") if apex.isascii() else []
    if len(labels) < 2 or not all(_LABEL_RE.fullmatch(label) for label in labels):
        raise ValueError("zone is not a host name (letters, digits and '-' in dot-separated labels)")
    ip = ipaddress.ip_address(address)  # ValueError if it is not one
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    label = str(ip).replace(".", "-") if ip.version == 4 else ip.exploded.replace(":", "-")
    name = f"{label}.{node_hash}.{apex}"
    if len(name) > 253:
        raise ValueError("zone is too long: the host name would pass 253 characters")
    return name
