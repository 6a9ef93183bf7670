#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds every host name of tests/vectors/host-names.txt and compares (host '-': refused).

Usage: test_host_names.py [VECTORS_FILE]; exits 1 on any failure.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_vectors import read_vectors  # noqa: E402
from uritoken_mint import host_name  # noqa: E402

VECTORS = os.path.join(HERE, "..", "..", "tests", "vectors", "host-names.txt")


def main():
    blocks = read_vectors(sys.argv[1] if len(sys.argv) > 1 else VECTORS)
    passed = failed = 0
    for v in blocks:
        try:
            got = host_name(v["address"], v["node_hash"], v["zone"])
        except ValueError:
            got = "-"
        ok = got == v["host"]
        passed, failed = passed + ok, failed + (not ok)
        print(("ok  " if ok else "FAIL"), v["name"], "" if ok else f"got {got}, want {v['host']}")
    if not blocks:
        failed += 1
        print("FAIL no vectors read")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
