#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Configures (once) and builds the module, library and CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -f config.mk || configure.ac -nt configure || config.mk.in -nt config.mk ]]; then
  autoconf
  ./configure -q
fi
make -j"$(nproc)" all
