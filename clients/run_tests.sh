#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the known-answer vector tests of the Python, Node and PHP minters
# against tests/vectors/tokens.txt and tests/vectors/host-names.txt, and of their client-site API helpers
# against tests/vectors/client-requests.txt. All three interpreters are required
# (CI installs php-cli): a missing one is a failure, not a skip.
# Exit status: 0 if every language passed, 1 otherwise.
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
status=0
summary=()

run() {  # run LANGUAGE INTERPRETER TEST_FILE
  local lang="$1" interp="$2" test="$3" out rc
  echo "== $lang =="
  if ! command -v "$interp" >/dev/null 2>&1; then
    echo "$interp not found: install it (Debian: apt-get install $4)"
    summary+=("$lang: MISSING ($interp not installed)")
    status=1
    return
  fi
  out="$("$interp" "$here/$test" 2>&1)"
  rc=$?
  echo "$out"
  if [ "$rc" -ne 0 ]; then
    status=1
    summary+=("$lang: FAILED (exit $rc): $(echo "$out" | tail -n 1)")
  else
    summary+=("$lang: ok: $(echo "$out" | tail -n 1)")
  fi
}

run python python3 python/test_vectors.py python3
run node node node/test_vectors.js nodejs
run php php php/test_vectors.php php-cli
# a server's host name at an address (tests/vectors/host-names.txt)
run python-host-names python3 python/test_host_names.py python3
run node-host-names node node/test_host_names.js nodejs
run php-host-names php php/test_host_names.php php-cli
# the client-site API's request signatures (tests/vectors/client-requests.txt)
run python-client-api python3 python/test_client_vectors.py python3
run node-client-api node node/test_client_vectors.js nodejs
run php-client-api php php/test_client_vectors.php php-cli

echo "== summary =="
printf '%s\n' "${summary[@]}"
exit "$status"
