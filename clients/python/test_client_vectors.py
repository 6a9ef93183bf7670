#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Signs every request of tests/vectors/client-requests.txt and compares the signature.

Usage: test_client_vectors.py [VECTORS_FILE]; exits 1 on any failure.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_vectors import read_vectors  # noqa: E402
from uritoken_client import sign_client_request  # noqa: E402
from uritoken_mint import key_from_base64url  # noqa: E402

VECTORS = os.path.join(HERE, "..", "..", "tests", "vectors", "client-requests.txt")


def main():
    blocks = read_vectors(sys.argv[1] if len(sys.argv) > 1 else VECTORS)
    passed = failed = 0
    for v in blocks:
        body = b"" if v["body"] == "-" else v["body"].encode()
        got = sign_client_request(key_from_base64url(v["key"]), int(v["key_id"]), v["method"], v["target"], body,
                                  time=int(v["time"]), nonce=v["nonce"])["X-UriToken-Signature"]
        ok = got == v["signature"]
        passed, failed = passed + ok, failed + (not ok)
        print(("ok  " if ok else "FAIL"), v["name"], "" if ok else f"got {got}, want {v['signature']}")
    if not blocks:
        failed += 1
        print("FAIL no vectors read")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
