#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian packages, end to end, on this machine (root only; scripts/test.sh
# runs it as its "package" step and names it skipped when not root):
#   1. builds the .debs with dpkg-buildpackage from a clean copy of the tree
#      (the working tree's files, without build/ or configure's output), so
#      the developer's build tree is not touched;
#   2. installs them with apt-get, checks that the postinst enabled the
#      module and that 'a2enmod uritoken' and the default uritoken.conf pass
#      apache2ctl -t, and compiles a small C program against the installed
#      library with pkg-config;
#   3. adds a key file made with the installed CLI and a token-required
#      directory to Debian's own apache2 configuration (a conf enabled with
#      a2enconf, on a free loopback port; 000-default and ports.conf's
#      Listen 80 are switched off), starts it with apache2ctl and fetches a
#      URL minted by the installed CLI (200 and the file), the plain URL and
#      a token signed with another key (403 each);
#   4. stops apache2, purges the packages and restores /etc/apache2 exactly
#      as it was, also when a step fails (trap).
# Prints "PASS: ..." / "FAIL: ..." lines and ends with
# "deb_test: N passed, M failed"; exits 1 if a check failed.
# Never touches an httpd it did not start: it refuses to run while Debian's
# apache2 runs (except under CI=true, where it stops it through the init
# system and starts it again at the end: a fresh CI machine may start
# apache2 when apt-get installs it) or while the packages are installed.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
packages=(libapache2-mod-uritoken uritoken liburitoken0 liburitoken-dev)
BUILD_TIMEOUT=${DEB_TEST_BUILD_TIMEOUT:-1200}  # seconds for dpkg-buildpackage

passed=0 failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() {  # check NAME COMMAND...: PASS if the command exits 0
  local name=$1; shift
  if "$@" >"$work/check.log" 2>&1; then pass "$name"; else
    fail "$name (exit $?): $*"; sed 's/^/    /' "$work/check.log" | tail -20; fi
}
finish() { echo "deb_test: $passed passed, $failed failed"; ((failed == 0)); exit $?; }

if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: deb_test needs root (it installs packages and edits /etc/apache2)"
  exit 77
fi
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
work=$(mktemp -d /tmp/uritoken-deb-test.XXXXXX)
chmod 755 "$work"  # apache2's children (www-data) read the media below it

# --- preconditions: nothing of ours to overwrite, no apache2 of someone else
for p in "${packages[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    fail "precondition: $p is already installed; the test would purge it (apt-get purge ${packages[*]} first)"
  fi
done
pidfile=/var/run/apache2/apache2.pid
apache_running() { [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; }
# Stops Debian's apache2 (by its pidfile: never another httpd); 1 if it
# still runs after 10 s. Called only once the precondition below has shown
# that it was not running, so whatever runs then was started by this test,
# by apache2ctl or by the packages' maintainer scripts (which restart
# apache2 through invoke-rc.d where the init system and policy-rc.d let them).
stop_apache() {
  apache_running || return 0
  apache2ctl stop >/dev/null 2>&1
  for _ in $(seq 100); do apache_running || return 0; sleep 0.1; done
  return 1
}
was_running=0
if apache_running; then
  if [[ ${CI:-} == true ]]; then
    # A fresh CI machine whose init system started apache2 when apt-get
    # installed it: stopped for the test through the init system, started
    # again at the end.
    invoke-rc.d apache2 stop >/dev/null 2>&1
    if stop_apache; then
      was_running=1
      echo "note: Debian's apache2 was running (CI=true): stopped for the test, started again at the end"
    else
      fail "precondition: Debian's apache2 (pid $(cat "$pidfile")) still runs after invoke-rc.d apache2 stop"
    fi
  else
    fail "precondition: Debian's apache2 is running (pid $(cat "$pidfile")); stop it first (apache2ctl stop)"
  fi
fi
for tool in dpkg-buildpackage dh dh_apache2 apt-get apache2ctl a2enmod a2enconf curl cc pkg-config python3; do
  command -v "$tool" >/dev/null || fail "precondition: $tool missing (bash scripts/install-deps.sh installs it)"
done
if ((failed > 0)); then rm -rf "$work"; finish; fi

# --- cleanup, on any exit from here on
cp -a /etc/apache2 "$work/etc-apache2.orig" || { fail "back up /etc/apache2"; rm -rf "$work"; finish; }
started=0 installed=0 keys=/etc/apache2/uritoken/deb-test.keys
cleanup() {
  trap - EXIT INT TERM
  if ((started)); then
    if stop_apache; then pass "apache2ctl stop"; else
      fail "apache2ctl stop: apache2 (pid $(cat "$pidfile")) still runs after 10 s"; fi
  fi
  if ((installed)); then
    rm -f "$keys"  # ours; so that the purge can remove /etc/apache2/uritoken
    check "apt-get purge ${packages[*]}" apt-get purge -y -q "${packages[@]}"
    local left=()
    for f in /usr/lib/apache2/modules/mod_uritoken.so /etc/apache2/mods-available/uritoken.load /etc/apache2/uritoken \
             /etc/apache2/mods-available/uritoken.conf /etc/apache2/mods-enabled/uritoken.load \
             /usr/bin/uritoken /usr/include/uritoken.h /var/lib/apache2/module/enabled_by_maint/uritoken \
             /var/lib/apache2/module/enabled_by_admin/uritoken; do
      [[ -e $f || -L $f ]] && left+=("$f")
    done
    if ((${#left[@]} == 0)); then pass "purge leaves no file of the packages"; else
      fail "purge left: ${left[*]}"; fi
    # a2enmod's bookkeeping outside /etc, should the purge have left it
    rm -f /var/lib/apache2/module/enabled_by_admin/uritoken /var/lib/apache2/module/enabled_by_maint/uritoken
  fi
  if ! stop_apache; then fail "apache2 (pid $(cat "$pidfile")) started by the purge still runs after apache2ctl stop"; fi
  rm -rf /etc/apache2 && cp -a "$work/etc-apache2.orig" /etc/apache2
  if ((was_running)); then
    # invoke-rc.d exits 0 also when policy-rc.d denies the start
    invoke-rc.d apache2 start >/dev/null 2>&1
    for _ in $(seq 50); do apache_running && break; sleep 0.1; done
    apache_running || apache2ctl start >/dev/null 2>&1
    for _ in $(seq 50); do apache_running && break; sleep 0.1; done
    if apache_running; then pass "Debian's apache2 runs again, as before the test"; else
      fail "Debian's apache2 ran before the test and does not run after it"; fi
  fi
  if diff -r --no-dereference "$work/etc-apache2.orig" /etc/apache2 >/dev/null; then
    pass "/etc/apache2 restored as it was"
  else
    fail "/etc/apache2 differs from its backup in $work/etc-apache2.orig (left for inspection)"
    finish
  fi
  rm -rf "$work"
  finish
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- 1. build from a clean copy of the working tree
mkdir "$work/src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
     while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
     tar --null -T - -cf -) | tar -xf - -C "$work/src"
else
  (cd "$repo" && tar --exclude=./build --exclude=./config.mk --exclude=./config.status --exclude=./configure \
     --exclude=./config.log --exclude=./autom4te.cache --exclude=./demo -cf - .) | tar -xf - -C "$work/src"
fi
t0=$(date +%s)
if (cd "$work/src" && DEB_BUILD_OPTIONS="parallel=2 nocheck noautodbgsym" timeout "$BUILD_TIMEOUT" \
      dpkg-buildpackage -us -uc -b -Pnocheck) >"$work/build.log" 2>&1; then
  pass "dpkg-buildpackage -us -uc -b ($(($(date +%s) - t0)) s)"
else
  fail "dpkg-buildpackage -us -uc -b (after $(($(date +%s) - t0)) s; timeout ${BUILD_TIMEOUT} s); its log ends:"
  tail -40 "$work/build.log" | sed 's/^/    /'
  exit 1
fi
debs=()
for p in "${packages[@]}"; do
  deb=$(ls "$work"/"${p}"_*.deb 2>/dev/null | head -1)
  if [[ -n $deb ]]; then debs+=("$deb"); else fail "no ${p}_*.deb built"; fi
done
((${#debs[@]} == ${#packages[@]})) && pass "built: $(cd "$work" && echo "${debs[@]##*/}")"
((failed == 0)) || exit 1
if command -v lintian >/dev/null; then  # advice, not a check
  echo "lintian (informational):"
  lintian --allow-root -I "$work"/*.changes 2>&1 | sed 's/^/    /'
fi

# --- 2. install; the module's a2enmod files and the library
if apt-get install -y -q --no-install-recommends "${debs[@]}" >"$work/install.log" 2>&1; then
  installed=1
  pass "apt-get install ${debs[*]##*/}"
else
  installed=1  # whatever got in goes out again
  fail "apt-get install"; tail -20 "$work/install.log" | sed 's/^/    /'
  exit 1
fi
if [[ -L /etc/apache2/mods-enabled/uritoken.load ]]; then pass "the postinst enabled the module (dh_apache2)"; else
  fail "the postinst did not enable the module: no /etc/apache2/mods-enabled/uritoken.load"; fi
check "a2enmod uritoken" a2enmod uritoken
check "mods-enabled has uritoken.load and uritoken.conf" \
  test -L /etc/apache2/mods-enabled/uritoken.load -a -L /etc/apache2/mods-enabled/uritoken.conf
check "apache2ctl -t with the packaged uritoken.conf and nothing else" apache2ctl -t
check "uritoken help" uritoken help
check "the DNS-01 hook and PowerDNS helpers in /usr/lib/uritoken, executable" \
  sh -c "test -x /usr/lib/uritoken/uritoken-dns01-hook && test -x /usr/lib/uritoken/uritoken-pdns-zone && test -f /usr/lib/uritoken/pdns-update-policy.lua"
check "the installed hook refuses a call without its settings, naming the file" \
  sh -c "URITOKEN_DNS01_CONF=/nonexistent /usr/lib/uritoken/uritoken-dns01-hook setup a.example x 2>&1 | grep -q /nonexistent"
check "man pages uritoken(1) and mod_uritoken(8) in the packages" \
  sh -c "dpkg -L uritoken | grep -qx /usr/share/man/man1/uritoken.1.gz && dpkg -L libapache2-mod-uritoken | grep -qx /usr/share/man/man8/mod_uritoken.8.gz"

cat >"$work/mint.c" <<'EOF'
/* Mints with the installed liburitoken and checks the token with it. */
#include <stdio.h>
#include <time.h>
#include <uritoken.h>
int main(void) {
  unsigned char key[URITOKEN_KEYBYTES];
  char token[URITOKEN_TOKEN_MAXBYTES];
  const char *reason = "?";
  uritoken_claims claims;
  if (uritoken_init() != 0) return 1;
  uritoken_keygen(key);
  if (uritoken_mint(token, sizeof token, key, 7, "pkgconfig-test", (uint32_t)time(NULL) + 60, NULL) != 0) return 1;
  if (uritoken_verify(&claims, &reason, token, key, 7, "pkgconfig-test", NULL) != URITOKEN_VALID) {
    fprintf(stderr, "verify: %s\n", reason);
    return 1;
  }
  printf("%s\n", token);
  return 0;
}
EOF
check "cc \$(pkg-config --cflags --libs uritoken) against the installed liburitoken.so" \
  sh -c "cc -Wall -Werror -o '$work/mint' '$work/mint.c' \$(pkg-config --cflags --libs uritoken) &&
         ldd '$work/mint' | grep -q 'liburitoken\.so\.0 => /.*/liburitoken\.so\.0 ' && '$work/mint' > '$work/c-token'"
check "the installed CLI reads the library's token (uritoken inspect: client pkgconfig-test)" \
  sh -c "uritoken inspect \"\$(cat '$work/c-token')\" | grep -qx 'client: pkgconfig-test'"
check "static link with pkg-config --static and liburitoken.a" \
  sh -c "cc -o '$work/mint-static' '$work/mint.c' \$(pkg-config --cflags uritoken) \
         /usr/lib/\$(dpkg-architecture -qDEB_HOST_MULTIARCH)/liburitoken.a \
         \$(pkg-config --static --libs uritoken | sed 's/-luritoken//') &&
         ! ldd '$work/mint-static' | grep -q liburitoken && '$work/mint-static' >/dev/null"

# --- 3. Debian's apache2 with a token-required directory
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/media/films"
head -c 4096 /dev/urandom | base64 > "$work/media/films/trailer.txt"
chmod -R a+rX "$work/media"
(umask 077; uritoken keygen --key-id 1 --client deb-test > "$keys") && chown root:root "$keys" && chmod 600 "$keys"
check "key file by the installed CLI: root:root 0600" sh -c "test \"\$(stat -c '%U:%G %a' '$keys')\" = 'root:root 600'"
# The same client and key id with another secret: its tokens are forgeries.
(umask 077; uritoken keygen --key-id 1 --client deb-test > "$work/other.keys")
cat > /etc/apache2/conf-available/uritoken-deb-test.conf <<EOF
# tests/package/deb_test.sh (removed when the test ends)
Listen 127.0.0.1:$port
<VirtualHost 127.0.0.1:$port>
    ServerName 127.0.0.1
    DocumentRoot $work/media
    UriTokenEngine On
    UriTokenKeyFile $keys
    <Directory $work/media>
        Require all granted
        UriTokenRequire On
    </Directory>
</VirtualHost>
EOF
printf '# emptied by tests/package/deb_test.sh (restored when the test ends)\n' > /etc/apache2/ports.conf
check "a2dissite 000-default" a2dissite -q 000-default
check "a2enconf uritoken-deb-test" a2enconf -q uritoken-deb-test
check "apache2ctl -t with the token-required directory" apache2ctl -t
stop_apache || fail "apache2 started by the postinst still runs after apache2ctl stop"
errlog=/var/log/apache2/error.log
errlog_start=$(stat -c %s "$errlog" 2>/dev/null || echo 0)  # only this run's lines count
if apache2ctl start >"$work/start.log" 2>&1; then
  started=1
  pass "apache2ctl start (127.0.0.1:$port)"
else
  started=1  # a half-started server is stopped too
  fail "apache2ctl start"; sed 's/^/    /' "$work/start.log"; tail -5 /var/log/apache2/error.log | sed 's/^/    /'
  exit 1
fi
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done

url=$(uritoken mint --key-file "$keys" --client deb-test --ttl 300 --scope /films/ \
        --url "http://127.0.0.1:$port/films/trailer.txt")
forged=$(uritoken mint --key-file "$work/other.keys" --client deb-test --ttl 300 --scope /films/ \
        --url "http://127.0.0.1:$port/films/trailer.txt")
fetch() { curl -s --max-time 10 -o "$work/body" -w '%{http_code}' "$1"; }
code=$(fetch "$url")
if [[ $code == 200 ]] && cmp -s "$work/body" "$work/media/films/trailer.txt"; then
  pass "token minted by the installed CLI: 200 and the file"
else
  fail "token minted by the installed CLI: HTTP $code, body $(wc -c < "$work/body") bytes (want 200 and the file)"
fi
code=$(fetch "http://127.0.0.1:$port/films/trailer.txt")
if [[ $code == 403 ]]; then pass "no token: 403"; else fail "no token: HTTP $code (want 403)"; fi
code=$(fetch "$forged")
if [[ $code == 403 ]]; then pass "token signed with another key: 403"; else fail "token signed with another key: HTTP $code (want 403)"; fi
if tail -c +$((errlog_start + 1)) "$errlog" 2>/dev/null | grep -q 'UT[0-9]*: token refused (bad-mac)'; then
  pass "error.log names the forged token's refusal (bad-mac)"
else
  fail "no 'token refused (bad-mac)' line in this run's part of $errlog"
fi
# --- 4. the trap stops apache2, purges, restores /etc/apache2 and reports
exit 0
