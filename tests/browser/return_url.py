#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Refusals that lead back to the client site, in a real browser.

Run by tests/integration/return_url_test.cc against a real httpd whose
client site42 has a UriTokenReturnURL:

  return_url.py --page URL --return-prefix URL --player URL [--hls URL] --profile-root DIR

1. Navigates to --page (a tokenized page whose token has expired) and
   waits until the browser lands on a URL starting with --return-prefix;
   prints "landed: URL".
2. Opens --player, a page whose <video> plays an expired tokenized clip and
   whose script fetches an expired tokenized HLS playlist the way hls.js
   does (fetch, CORS mode); prints "video: error CODE" and "fetch: STATUS".
3. With --hls, opens a page where hls.js itself plays an expired and a
   valid tokenized playlist; prints the page's verdict ("hls: expired=...
   valid=...").
Exit 0 on success; 1 with "FAIL: ..." on stderr otherwise.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from status_page import Failure, check, start_browser  # noqa: E402


def wait_for(predicate, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise Failure("timed out waiting for " + what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--page", required=True)
    ap.add_argument("--return-prefix", required=True)
    ap.add_argument("--player", required=True)
    ap.add_argument("--hls")
    ap.add_argument("--profile-root", default=tempfile.gettempdir())
    a = ap.parse_args()
    driver = start_browser(a.profile_root)
    try:
        driver.get(a.page)
        landed = wait_for(lambda: driver.current_url if driver.current_url.startswith(a.return_prefix) else None,
                          "the browser to land on the client site (at %s)" % driver.current_url)
        check("uritoken_sig=" in landed, "no signature in " + landed)
        print("landed: " + landed, flush=True)
        driver.get(a.player)
        title = wait_for(lambda: driver.title if driver.title.startswith("done ") else None,
                         "the player page's video and fetch to finish (title %r)" % driver.title)
        _, video, fetched = title.split(" ")
        print("video: " + video.replace("=", " "), flush=True)
        print("fetch: " + fetched.split("=")[1], flush=True)
        check(video.startswith("error="), "the video played: " + title)
        if a.hls:
            driver.get(a.hls)
            title = wait_for(lambda: driver.title if driver.title.startswith("done ") else None,
                             "hls.js to finish with both playlists (title %r)" % driver.title)
            print("hls: " + title[5:], flush=True)
    finally:
        driver.quit()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
