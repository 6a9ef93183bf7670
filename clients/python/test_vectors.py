#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Mints every vector of tests/vectors/tokens.txt and compares the token.

Usage: test_vectors.py [VECTORS_FILE]
Prints one line per vector and "N passed, M failed"; exits 1 on any failure.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from uritoken_mint import key_from_base64url, mint, subscriber_id  # noqa: E402

# The repository's vectors, found from this file's location; an argument
# overrides it (e.g. to check that a corrupted copy makes the test fail).
VECTORS = os.path.join(HERE, "..", "..", "tests", "vectors", "tokens.txt")


def read_vectors(path):
    """Blocks of "field: value" lines separated by blank lines; '#' comments."""
    blocks, block = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines() + [""]:
            if line.startswith("#"):
                continue
            if not line.strip():
                if block:
                    blocks.append(block)
                block = {}
                continue
            field, _, value = line.partition(": ")
            if field != "check":  # checks are for verifiers
                block[field] = value
    return blocks


def opt(value):
    return None if value == "-" else value


def mint_vector(v, **override):
    args = dict(
        key=key_from_base64url(v["key"]),
        key_id=int(v["key_id"]),
        client=v["client"],
        expires=int(v["expires"]),
        session=bytes.fromhex(v["session"]),
        not_before=None if v["not_before"] == "-" else int(v["not_before"]),
        scope=opt(v["scope"]),
        network=opt(v["network"]),
    )
    if v.get("account", "-") != "-":
        args["subscriber"] = subscriber_id(key_from_base64url(v["subscriber_secret"]), v["client"], v["account"])
        args["issued"] = int(v["issued"])
    args.update(override)
    return mint(**args)


def main():
    passed = failed = 0

    def report(ok, name, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
        print(f"{'PASS' if ok else 'FAIL'} {name}{detail}")

    vectors = read_vectors(sys.argv[1] if len(sys.argv) > 1 else VECTORS)
    for v in vectors:
        try:
            got = mint_vector(v)
        except Exception as e:  # a refused vector is a failure, not a crash
            got = f"error: {e}"
        report(got == v["token"], v["name"], "" if got == v["token"] else
               f": got {got}, want {v['token']}")

    for v in vectors:
        if v.get("account", "-") != "-":
            got = subscriber_id(key_from_base64url(v["subscriber_secret"]), v["client"], v["account"]).hex()
            report(got == v["subscriber"], v["name"] + ": subscriber_id", "" if got == v["subscriber"] else f": got {got}")

    # Negative checks (the comparison can fail) and one equivalence.
    by_name = {v["name"]: v for v in vectors}
    typical = by_name["typical"]
    report(mint_vector(typical, expires=int(typical["expires"]) + 1) != typical["token"],
           "negative: changed expiry gives another token")
    report(mint_vector(typical, scope="/gallery/13/") != typical["token"],
           "negative: changed scope gives another token")
    ipv4 = by_name["ipv4-24"]
    report(mint_vector(ipv4, network="192.0.2.200/24") == ipv4["token"],
           "extra: host bits beyond the prefix are ignored")
    try:
        mint_vector(typical, scope="/gallery/../12/")
        report(False, "negative: dot segment in scope is refused")
    except ValueError:
        report(True, "negative: dot segment in scope is refused")
    try:
        mint_vector(typical, scope="/gallery/_UK_x/")
        report(False, "negative: a token segment in scope is refused in any letter case")
    except ValueError:
        report(True, "negative: a token segment in scope is refused in any letter case")

    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
