#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The nodes' DNS on a real PowerDNS Authoritative (docs/https.md), on a
# loopback port in a temporary directory, stopped by its pid at the end:
# two nodes' zones made by dns/uritoken-pdns-zone from their node hashes
# (uritoken node-identity), names from `uritoken host-name` answered with
# their address (IPv4 and IPv6) and names outside the allowed ranges not
# at all; the DNS-01 hook (dns/uritoken-dns01-hook) adds and removes only
# its own TXT value with the node's TSIG key, and fails, naming the server
# or file, for another node's key, a missing key and a server that is down.
# Prints one PASS/FAIL line per check and "N passed, M failed".
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
for tool in pdns_server pdnsutil nsupdate dig sqlite3; do
  command -v "$tool" >/dev/null || { echo "FAIL $tool is missing: bash scripts/install-deps.sh"; echo "0 passed, 1 failed"; exit 1; }
done
dir=$(mktemp -d /tmp/uritoken-pdns-XXXXXX)
source "$repo/tests/dns/lib.sh"
pdns_pid=
cleanup() { [[ -n $pdns_pid ]] && kill "$pdns_pid" 2>/dev/null && wait "$pdns_pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
start_pdns
quiet() { "$@" >/dev/null 2>&1; }
check "PowerDNS answers" quiet dig +time=1 +tries=1 -p "$dns_port" @127.0.0.1 media.test SOA
# Two nodes, each with its identity, zone and TSIG key.
check "node a: a zone and a TSIG key" add_node a "$dir/state-a"
check "node b: a zone and a TSIG key" add_node b "$dir/state-b"
port=$dns_port
pid=$pdns_pid
status_of() { dig +norecurse +time=2 +tries=2 -p "$port" @127.0.0.1 "$@" | sed -n 's/.*status: \([A-Z]*\),.*/\1/p'; }

za="${hash[a]}.media.test"
name4=$("$cli" host-name --address 203.0.113.7 --node-hash "${hash[a]}" --zone media.test)
name6=$("$cli" host-name --address 2001:db8::7 --node-hash "${hash[a]}" --zone media.test)
check "IPv4 name answered with its address ($name4)" test "$(q "$name4" A)" = 203.0.113.7
check "IPv6 name answered with its address" test "$(q "$name6" AAAA)" = 2001:db8::7
check "loopback name (127.0.0.1)" test "$(q "$("$cli" host-name --address 127.0.0.1 --node-hash "${hash[a]}" --zone media.test)" A)" = 127.0.0.1
check "an address outside the ranges gets no answer" test -z "$(q "8-8-8-8.$za" A)"
check "... and NOERROR, not a failure" test "$(status_of "8-8-8-8.$za" A)" = NOERROR
check "a name that is no address gets no answer" test -z "$(q "www.$za" A)"

# DNS-01: a name and its wildcard share _acme-challenge.<zone>: two values.
export URITOKEN_DNS01_CONF="$dir/a.conf"
check "hook setup, first value" "$hook" setup "$za" value-apex
check "hook setup, second value" "$hook" setup "$za" value-wildcard
txt=$(q "_acme-challenge.$za" TXT | sort | tr '\n' ' ')
check "both values served" test "$txt" = '"value-apex" "value-wildcard" '
check "hook teardown of the first" "$hook" teardown "$za" value-apex
check "the other value stays" test "$(q "_acme-challenge.$za" TXT)" = '"value-wildcard"'

# Another node's key cannot write this node's challenge.
out=$(URITOKEN_DNS01_CONF="$dir/b.conf" "$hook" setup "$za" intruder 2>&1)
check "node b's key is refused on node a's zone" test $? -ne 0
check "... naming the server" grep -q "127.0.0.1 port $port" <<<"$out"
check "... and nothing changed" test "$(q "_acme-challenge.$za" TXT)" = '"value-wildcard"'
check "node b's key writes its own zone" env URITOKEN_DNS01_CONF="$dir/b.conf" "$hook" setup "${hash[b]}.media.test" own
check "the policy allows the challenge name only" sh -c "printf 'server 127.0.0.1 $port\nzone $za.\nupdate add www.$za. 30 A 192.0.2.1\nsend\n' | nsupdate -k '${key[a]}' >/dev/null 2>&1; test -z \"\$(dig +short -p $port @127.0.0.1 www.$za A)\""

# Bad set-ups fail loudly.
sed "s|^key .*|key $dir/missing.key|" "$dir/a.conf" > "$dir/nokey.conf"
out=$(URITOKEN_DNS01_CONF="$dir/nokey.conf" "$hook" setup "$za" x 2>&1)
check "a missing key file fails" test $? -ne 0
check "... naming the file" grep -q "$dir/missing.key" <<<"$out"
down=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed "s|^server .*|server 127.0.0.1 $down|" "$dir/a.conf" > "$dir/down.conf"
out=$(URITOKEN_DNS01_CONF="$dir/down.conf" timeout 60 "$hook" setup "$za" x 2>&1)
check "a server that is down fails" test $? -ne 0
check "... naming it" grep -q "127.0.0.1 port $down" <<<"$out"
check "a malformed value is refused" sh -c "! '$hook' setup '$za' 'bad\"value' 2>/dev/null"
check "hook teardown of the last value" "$hook" teardown "$za" value-wildcard
check "no value left" test -z "$(q "_acme-challenge.$za" TXT)"
kill -0 "$pid" 2>/dev/null
check "PowerDNS still runs" test $? -eq 0
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
