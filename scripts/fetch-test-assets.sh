#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What the browser tests need besides Debian's packages: hls.js, the HLS
# player real sites embed, so that a real player (not a script imitating
# one) meets the module in headless Chromium (tests/integration/
# return_url_test.cc). From the npm registry, pinned by version and by the
# registry's sha512 integrity; into build/vendor/hls.min.js, fetched once.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.7.4
integrity=sha512-3GlxGdPvT2YHvQYOt+yOzT/DEior/qJVNIylHA77kgeoBTdQQqi70GwefNEUmHQeNGyjC8U62+bruqW/Tpm+tg==
dest=build/vendor
[[ -s $dest/hls.min.js && $(cat "$dest/hls.version" 2>/dev/null) == "$version" ]] && exit 0
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 3 -o "$tmp/hls.tgz" "https://registry.npmjs.org/hls.js/-/hls.js-$version.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tmp/hls.tgz" | base64 -w0)"
if [[ $got != "$integrity" ]]; then
  echo "fetch-test-assets: hls.js-$version.tgz has integrity $got, not $integrity" >&2
  exit 1
fi
tar -xzf "$tmp/hls.tgz" -C "$tmp" package/dist/hls.min.js
mv "$tmp/package/dist/hls.min.js" "$dest/hls.min.js"
echo "$version" > "$dest/hls.version"
echo "fetch-test-assets: hls.js $version in $dest"
