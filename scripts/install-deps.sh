#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what building, testing and the demo need on Debian 12
# (scripts/debian-packages.txt), only if something is missing, so repeated
# runs are fast. Needs root or sudo.
set -euo pipefail

mapfile -t packages < <(grep -v '^#' "$(dirname "$0")/debian-packages.txt")
command -v node >/dev/null 2>&1 || packages+=(nodejs)
# The benchmarks: wrk for throughput, valgrind (callgrind) for instruction
# counts, nft and ip for partitions.
[[ "${1:-}" == "--bench" ]] && packages+=(wrk valgrind nftables iproute2)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Installed but older than the archive's: a library that the packages above
# were built against. A fresh Debian 12 image can carry an older libssl3
# than the one apache2-bin of the current point release needs, and mod_ssl
# then logs AH01882 and a test fails; installing a package never upgrades
# an installed dependency that merely satisfies its version constraint.
built_against=(libssl3)
for p in "${built_against[@]}"; do
  installed=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
  candidate=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}' || true)
  if [[ -n "$installed" && -n "$candidate" && "$candidate" != "(none)" ]] &&
    dpkg --compare-versions "$installed" lt "$candidate"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The candidates above came from package lists that may predate the
# packages about to be installed (a fresh image's lists are as old as the
# image): with the lists just updated, `apt-get install` brings each
# built-against library to the archive's version, or leaves it as it is.
for p in "${built_against[@]}"; do
  [[ " ${missing[*]} " == *" $p "* ]] || missing+=("$p")
done
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts the packaged apache2 service on install; we never use it,
# and it must not hold port 80 or confuse the tests.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet apache2 2>/dev/null; then
  $SUDO systemctl stop apache2 || true
fi
