# SPDX-License-Identifier: Apache-2.0
# Shell helpers shared by scripts/demo*.sh and tests/bench/*.sh, which
# each write an httpd.conf that loads the module from the build tree.
# Source after setting $repo to the repository root.

# A value from config.mk (written by ./configure), e.g. HTTPD.
config_value() { sed -n "s/^$1 = //p" "$repo/config.mk"; }

# LoadModule lines for the named httpd modules ("mpm_event", "mime", ...)
# followed by mod_uritoken from the build tree.
httpd_modules() {
  local dir m
  dir=$(config_value APXS_LIBEXECDIR)
  for m in "$@"; do echo "LoadModule ${m}_module $dir/mod_$m.so"; done
  echo "LoadModule uritoken_module $repo/build/mod_uritoken.so"
}

# httpd drops its children to www-data only when started as root.
httpd_user() { if [[ $(id -u) -eq 0 ]]; then printf 'User www-data\nGroup www-data\n'; fi; }

# The benchmarks' server (tests/bench/run.sh and instructions.sh): in DIR,
# a 1 KiB file under /bench/, a key ring with key 1 of client "bench", and
# an httpd.conf for a keep-alive static server with the module on, on a
# free loopback port (left in $port). Usage: bench_server DIR MPM [LINES]
# where LINES are extra httpd.conf lines (MPM tuning, link-sharing).
bench_server() {
  local dir=$1 mpm=$2 extra=${3:-}
  mkdir -p "$dir/htdocs/bench"
  head -c 1024 /dev/urandom > "$dir/htdocs/bench/1k.bin"
  chmod -R a+rX "$dir/htdocs"
  (umask 077; "$repo/build/uritoken" keygen --key-id 1 --client bench > "$dir/keys")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/httpd.conf" <<CONF
ServerRoot $dir
PidFile $dir/httpd.pid
Listen 127.0.0.1:$port
ServerName 127.0.0.1
$(httpd_modules "mpm_$mpm" authz_core mime)
$(httpd_user)
TypesConfig /etc/mime.types
DocumentRoot $dir/htdocs
ErrorLog $dir/error.log
LogLevel warn
KeepAlive On
MaxKeepAliveRequests 0
EnableSendfile On
<Directory $dir/htdocs>
  Require all granted
</Directory>
UriTokenEngine On
UriTokenKeyFile $dir/keys
$extra
CONF
}
