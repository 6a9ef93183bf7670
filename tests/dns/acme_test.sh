#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Zero-touch HTTPS end to end and offline (docs/https.md): Pebble (the ACME
# test CA) and PowerDNS on loopback ports, and three httpd nodes with
# mod_uritoken and mod_md, each obtaining *.<its node hash>.media.test by
# DNS-01 through dns/uritoken-dns01-hook. Then, trusting Pebble's root and
# nothing else (no -k anywhere): a token fetched from each node by its
# IP-encoded name as PowerDNS resolves it (IPv4 and IPv6), one node's name
# sent to another node's address failing verification, and a renewal of
# a short-lived certificate picked up by a graceful restart. Every process is stopped by
# its pid. Prints one PASS/FAIL line per check and "N passed, M failed".
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
for tool in pdns_server pdnsutil nsupdate dig sqlite3 pebble openssl curl; do
  command -v "$tool" >/dev/null || { echo "FAIL $tool is missing: bash scripts/install-deps.sh"; echo "0 passed, 1 failed"; exit 1; }
done
dir=$(mktemp -d /tmp/uritoken-acme-XXXXXX)
chmod 755 "$dir"
source "$repo/tests/dns/lib.sh"
source "$repo/scripts/lib.sh"
httpd=$(config_value HTTPD)
pids=()
pdns_pid=
cleanup() {
  for p in "${pids[@]}" $pdns_pid; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}" $pdns_pid; do wait "$p" 2>/dev/null; done
  [[ -n ${URITOKEN_KEEP_TEST_DIRS:-} ]] || rm -rf "$dir"
}
trap cleanup EXIT
t0=$(date +%s.%N)
start_pdns

# Pebble's own HTTPS listener needs a certificate: a throwaway CA for it,
# which mod_md is told to trust (MDCACertificateFile). Pebble's issuing
# root is another one, made at its start.
(
  cd "$dir" && umask 077
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out listener-ca.key 2>/dev/null
  openssl req -x509 -new -key listener-ca.key -sha256 -days 2 -subj '/CN=pebble listener CA' \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -out listener-ca.crt
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out listener.key 2>/dev/null
  openssl req -new -key listener.key -subj '/CN=127.0.0.1' -out listener.csr
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > listener.ext
  openssl x509 -req -in listener.csr -CA listener-ca.crt -CAkey listener-ca.key -CAcreateserial -days 2 \
    -extfile listener.ext -out listener.crt 2>/dev/null
  chmod 644 listener-ca.crt listener.crt listener.key
)
acme_port=$(free_port) mgmt_port=$(free_port)
# Short-lived certificates, so that a renewal happens within the test:
# mod_md renews in the last half of a certificate's life (MDRenewWindow).
validity=40
cat > "$dir/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$acme_port", "managementListenAddress": "127.0.0.1:$mgmt_port",
  "certificate": "$dir/listener.crt", "privateKey": "$dir/listener.key",
  "httpPort": $(free_port), "tlsPort": $(free_port), "ocspResponderURL": "", "externalAccountBindingRequired": false,
  "certificateValidityPeriod": $validity}}
JSON
PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0 \
  pebble -config "$dir/pebble.json" -dnsserver "127.0.0.1:$dns_port" > "$dir/pebble.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -s --cacert "$dir/listener-ca.crt" -o /dev/null "https://127.0.0.1:$acme_port/dir" && break; sleep 0.1; done
check "Pebble answers" curl -sf --cacert "$dir/listener-ca.crt" -o /dev/null "https://127.0.0.1:$acme_port/dir"

# Three nodes: identity, zone, TSIG key, an httpd with mod_md and the module.
"$cli" keygen --key-id 1 --client site42 > "$dir/keys"
chmod 600 "$dir/keys"
declare -A port
for n in 0 1 2; do
  d="$dir/node$n"
  mkdir -p "$d/htdocs/media" "$d/logs" "$d/md"
  check "node $n: identity, zone and TSIG key" add_node "$n" "$d/state"
  printf 'segment of node %s\n' "$n" > "$d/htdocs/media/seg1.ts"
  chmod -R a+rX "$d/htdocs"
  port[$n]=$(free_port)
  if [[ $(id -u) -eq 0 ]]; then  # the hook runs as the httpd user and must read its key
    chown www-data "${key[$n]}" "$dir/$n.conf" "$d/state" "$d/state/node.key"
  fi
  cat > "$d/httpd.conf" <<CONF
ServerRoot $d
PidFile $d/logs/httpd.pid
Listen 127.0.0.1:${port[$n]} https
Listen [::1]:${port[$n]} https
ServerName 127.0.0.1
$(httpd_modules mpm_event authz_core mime ssl socache_shmcb md)
$(httpd_user)
TypesConfig /etc/mime.types
DocumentRoot $d/htdocs
ErrorLog $d/logs/error.log
LogLevel warn md:info
<Directory $d/htdocs>
  Require all granted
</Directory>
UriTokenEngine On
UriTokenKeyFile $dir/keys
SSLSessionCache shmcb:$d/logs/ssl_scache(512000)
MDStoreDir $d/md
MDCertificateAuthority https://127.0.0.1:$acme_port/dir
MDCACertificateFile $dir/listener-ca.crt
MDCertificateAgreement accepted
MDContactEmail ops@media.test
MDCAChallenges dns-01
MDChallengeDns01 $repo/dns/uritoken-dns01-hook
MDChallengeDns01Version 2
MDRetryDelay 1s
MDRenewWindow 50%
MDCheckInterval 1s
MDomain *.${hash[$n]}.media.test
<VirtualHost 127.0.0.1:${port[$n]} [::1]:${port[$n]}>
  ServerName 127-0-0-1.${hash[$n]}.media.test
  ServerAlias *.${hash[$n]}.media.test
  SSLEngine on
</VirtualHost>
CONF
  URITOKEN_DNS01_CONF="$dir/$n.conf" "$httpd" -f "$d/httpd.conf" -k start
done

# mod_md orders in the background; a graceful restart activates what it got.
deadline=$((SECONDS + 90))
for n in 0 1 2; do
  until grep -q "AH10059\|has been setup and changes will be activated" "$dir/node$n/logs/error.log" 2>/dev/null; do
    [[ $SECONDS -ge $deadline ]] && break
    sleep 0.2
  done
  check "node $n: mod_md obtained its certificate" grep -q "AH10059\|changes will be activated" "$dir/node$n/logs/error.log"
done
issued=$(date +%s.%N)
for n in 0 1 2; do kill -USR1 "$(cat "$dir/node$n/logs/httpd.pid")"; done
sleep 1
curl -s --cacert "$dir/listener-ca.crt" "https://127.0.0.1:$mgmt_port/roots/0" > "$dir/root.pem"
check "Pebble's issuing root" grep -q "BEGIN CERTIFICATE" "$dir/root.pem"

token=$("$cli" mint --key-file "$dir/keys" --client site42 --ttl 600 --scope /media/)
for n in 0 1 2; do
  name=$("$cli" host-name --address 127.0.0.1 --node-hash "${hash[$n]}" --zone media.test)
  resolved=$(q "$name" A)
  check "node $n: PowerDNS resolves $name" test "$resolved" = 127.0.0.1
  body=$(curl -sS --cacert "$dir/root.pem" --resolve "$name:${port[$n]}:$resolved" \
    "https://$name:${port[$n]}/_uk_$token/media/seg1.ts" 2>&1)
  check "node $n: a token over TLS verified against Pebble's root" test "$body" = "segment of node $n"
  name6=$("$cli" host-name --address ::1 --node-hash "${hash[$n]}" --zone media.test)
  resolved6=$(q "$name6" AAAA)
  check "node $n: PowerDNS resolves its IPv6 name" test "$resolved6" = ::1
  body=$(curl -sS --cacert "$dir/root.pem" --resolve "$name6:${port[$n]}:[$resolved6]" \
    "https://$name6:${port[$n]}/_uk_$token/media/seg1.ts" 2>&1)
  check "node $n: the same over IPv6" test "$body" = "segment of node $n"
done
# One node's name at another node: its certificate does not cover it.
name0=$("$cli" host-name --address 127.0.0.1 --node-hash "${hash[0]}" --zone media.test)
curl -s -o /dev/null --cacert "$dir/root.pem" --resolve "$name0:${port[1]}:127.0.0.1" \
  "https://$name0:${port[1]}/_uk_$token/media/seg1.ts"
check "node 0's name sent to node 1 fails verification (curl 60)" test $? -eq 60
# A renewal: mod_md gets the next certificate in the last half of this
# one's life; a graceful restart puts it to use.
serial() { openssl s_client -connect "127.0.0.1:${port[$1]}" -servername "$2" </dev/null 2>/dev/null |
  openssl x509 -noout -serial 2>/dev/null; }
first=$(serial 0 "$name0")
check "node 0 serves a certificate" test -n "$first"
renew_from=$(date +%s.%N)
deadline=$((SECONDS + 60))
until [[ $(grep -c "AH10059\|changes will be activated" "$dir/node0/logs/error.log") -ge 2 ]] || [[ $SECONDS -ge $deadline ]]; do
  sleep 0.2
done
check "node 0: mod_md renewed its certificate" test "$(grep -c "AH10059\|changes will be activated" "$dir/node0/logs/error.log")" -ge 2
renewed=$(date +%s.%N)
kill -USR1 "$(cat "$dir/node0/logs/httpd.pid")"
sleep 1
second=$(serial 0 "$name0")
check "after a graceful restart node 0 serves the renewed one" test -n "$second" -a "$second" != "$first"
body=$(curl -sS --cacert "$dir/root.pem" --resolve "$name0:${port[0]}:127.0.0.1" \
  "https://$name0:${port[0]}/_uk_$token/media/seg1.ts" 2>&1)
check "node 0: a token over the renewed certificate" test "$body" = "segment of node 0"
for n in 0 1 2; do
  check "node $n: no child crashed" sh -c "! grep -q 'exit signal' '$dir/node$n/logs/error.log'"
done
for n in 0 1 2; do kill "$(cat "$dir/node$n/logs/httpd.pid")" 2>/dev/null; done
awk -v a="$t0" -v b="$issued" 'BEGIN { printf "issuance for three nodes: %.1f s from the start of the CAs to the last certificate\n", b - a }'
awk -v a="$renew_from" -v b="$renewed" -v v="$validity" \
  'BEGIN { printf "renewal: the next certificate %.1f s after waiting began (validity %d s, renewal in its last half)\n", b - a, v }'
if [[ $failed -ne 0 ]]; then  # what went wrong, for the CI log
  for n in 0 1 2; do echo "--- node $n error log"; tail -n 15 "$dir/node$n/logs/error.log"; done
  echo "--- pebble"; grep -v "GET /dir" "$dir/pebble.log" | tail -n 15
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
