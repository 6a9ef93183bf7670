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
from uritoken_client import sign_client_request, verify_return  # noqa: E402
from uritoken_mint import key_from_base64url  # noqa: E402

VECTORS = os.path.join(HERE, "..", "..", "tests", "vectors", "client-requests.txt")
RETURNS = os.path.join(HERE, "..", "..", "tests", "vectors", "return-urls.txt")


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
    returns = read_vectors(RETURNS)
    for v in returns:
        keys = {int(v["key_id"]): key_from_base64url(v["key"])}
        got = verify_return(v["location"], keys, now=int(v["time"]))
        want = {"reason": v["reason"], "key_id": int(v["key_id"]), "session": None if v["session"] == "-" else
                v["session"], "time": int(v["time"]), "path": v["path"]}
        tampered = v["location"].replace("uritoken_time=" + v["time"], "uritoken_time=" + str(int(v["time"]) + 1))
        ok = (got == want and verify_return(tampered, keys, now=int(v["time"])) is None
              and verify_return(v["location"], keys, now=int(v["time"]) + 301) is None)
        passed, failed = passed + ok, failed + (not ok)
        print(("ok  " if ok else "FAIL"), "return", v["name"], "" if ok else f"got {got}")
    if not blocks or not returns:
        failed += 1
        print("FAIL no vectors read")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
