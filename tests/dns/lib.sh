# SPDX-License-Identifier: Apache-2.0
# Shared by tests/dns/*.sh: a PowerDNS Authoritative on a loopback port in
# $dir (caches off, the nodes' update policy), nodes' zones and TSIG keys,
# and the PASS/FAIL bookkeeping. Source it with $repo and $dir set.
cli="$repo/build/uritoken"
hook="$repo/dns/uritoken-dns01-hook"
passed=0 failed=0
check() {  # check NAME COMMAND...: passes if the command succeeds
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "PASS $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}
free_port() {  # a free loopback port for UDP (and, nearly always, TCP)
  python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
pdnsutil() { command pdnsutil --config-dir="$dir" "$@"; }

# start_pdns: PowerDNS on $dns_port, its pid in $pdns_pid.
start_pdns() {
  dns_port=$(free_port)
  sqlite3 "$dir/pdns.sqlite3" < /usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql
  # conf-examples/pdns.conf, on a loopback port, caches all off.
  cat > "$dir/pdns.conf" <<CONF
launch=gsqlite3
gsqlite3-database=$dir/pdns.sqlite3
local-address=127.0.0.1
local-port=$dns_port
socket-dir=$dir
enable-lua-records=yes
dnsupdate=yes
lua-dnsupdate-policy-script=$repo/dns/pdns-update-policy.lua
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
zone-cache-refresh-interval=0
webserver=no
daemon=no
guardian=no
CONF
  [[ $(id -u) -eq 0 ]] && printf 'setuid=root\nsetgid=root\n' >> "$dir/pdns.conf"
  pdns_server --config-dir="$dir" > "$dir/pdns.log" 2>&1 &
  pdns_pid=$!
  for _ in $(seq 50); do
    dig +short +time=1 +tries=1 -p "$dns_port" @127.0.0.1 media.test SOA >/dev/null 2>&1 && return 0
    sleep 0.1
  done
}

# add_node NAME STATE-DIR: the node's hash in hash[NAME], its zone made
# by dns/uritoken-pdns-zone, its TSIG key in key[NAME] and the hook's
# settings in $dir/NAME.conf (conf-examples/dns01.conf).
declare -A hash key
add_node() {
  local n=$1 state=$2 out secret zone
  mkdir -p "$state"
  hash[$n]=$("$cli" node-identity --state-dir "$state" | sed -n 's/^node hash: //p')
  zone="${hash[$n]}.media.test"
  out=$(eval "$("$repo/dns/uritoken-pdns-zone" "${hash[$n]}" media.test 127.0.0.0/8 203.0.113.0/24 ::1/128 2001:db8::/32)" 2>&1)
  secret=$(printf '%s\n' "$out" | awk '/^Create new TSIG key/ {print $NF}')
  key[$n]="$dir/$n.key"
  (umask 077; printf 'key "%s." {\n  algorithm hmac-sha256;\n  secret "%s";\n};\n' "$zone" "$secret" > "${key[$n]}")
  printf 'server 127.0.0.1 %s\nkey %s\nttl 30\n' "${dns_port:?start_pdns first}" "${key[$n]}" > "$dir/$n.conf"
  [[ -n $secret ]]
}
q() { dig +short +norecurse +time=2 +tries=2 -p "$dns_port" @127.0.0.1 "$@"; }
