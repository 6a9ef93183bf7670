# Shell helpers shared by scripts/demo.sh and tests/bench/run.sh, which
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
