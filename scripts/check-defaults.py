#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make lint: every directive's default is written four times (the code,
the directive's help text in `httpd -L`, the README's table, the man page
mod_uritoken(8)); they must agree, and the man page must describe exactly
the directives the code has. The CLI's man page uritoken(1) must name every
command and option of its usage text. The release version is written in
configure.ac (AC_INIT), debian/changelog and both man pages' .TH lines:
they must agree. Reads mod_uritoken/httpd/config.{h,cc},
mod_uritoken/cli/uritoken_cli.cc, README.md, man/, configure.ac and
debian/changelog; prints each disagreement and exits 1 if there is one."""
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "."
config_cc = open(f"{root}/mod_uritoken/httpd/config.cc").read()
config_h = open(f"{root}/mod_uritoken/httpd/config.h").read()
readme = open(f"{root}/README.md").read()
man8 = open(f"{root}/man/mod_uritoken.8").read()
man1 = open(f"{root}/man/uritoken.1").read()
cli_cc = open(f"{root}/mod_uritoken/cli/uritoken_cli.cc").read()


def norm(v):
    v = v.strip().strip("`").rstrip(".;,")
    v = re.sub(r"^\w+::", "", v)  # an enum value such as PlainHttp::allow
    if re.fullmatch(r"[0-9 *+]+", v):  # a constant expression such as 7 * 86400
        v = str(eval(v))
    v = {"On": "on", "Off": "off", "none": "none"}.get(v, v)
    return v.lower().replace(",", "")


# 1. Help texts: AP_INIT_*("Name", fn, ..., "help" "help...") -> "(default X)" or "X (default)".
help_default = {}
for m in re.finditer(r'AP_INIT_\w+\("(UriToken\w+)",[^"]*((?:"(?:[^"\\]|\\.)*"\s*)+)\)', config_cc):
    name, strings = m.group(1), m.group(2)
    text = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', strings))
    d = re.search(r"\(default:? ([^;)]+)[;)]", text) or re.search(r"(\S+) \(default\)", text)
    if d:
        help_default[name] = norm(d.group(1))

# 2. Code: kDefault constants and ClusterConfig initialisers named by comment.
code_default = {}
constants = {
    "UriTokenClockSkew": "kDefaultClockSkewSeconds",
    "UriTokenMaxTTL": "kDefaultMaxTtlSeconds",
    "UriTokenLogLimit": "kDefaultLogLimit",
    "UriTokenReferrerPolicy": "kDefaultReferrerPolicy",
    "UriTokenPlainHTTP": "kDefaultPlainHttp",
    "UriTokenReferrerMissing": "kDefaultReferrerMissing",
}
for name, const in constants.items():
    m = re.search(rf"{const} = ([^;]+);", config_h)
    if m:
        code_default[name] = norm(m.group(1).strip('"'))
m = re.search(r"kDefaultExpiredStatus = (\w+);", config_h)
if m:
    code_default["UriTokenExpiredStatus"] = {"HTTP_GONE": "410", "HTTP_FORBIDDEN": "403", "HTTP_NOT_FOUND": "404"}[
        m.group(1)]
# Defaults the configuration takes from the sharing rule and shared state
# (one home for each: "unsigned max_places = kDefaultMaxPlaces;").
cluster_constants = {}
for header in ("sharing.h", "shared_state.h", "bulk.h"):
    text = open(f"{root}/mod_uritoken/cluster/{header}").read()
    for c in re.finditer(r"^constexpr [\w:]+ (kDefault\w+) = ([^;]+);", text, re.M):
        cluster_constants[c.group(1)] = c.group(2).strip()
for m in re.finditer(r"^\s*[\w:<>]+ \w+ = ([^;]+);\s*// (UriToken\w+)", config_h, re.M):
    value, name = m.group(1).strip().strip('"'), m.group(2)
    value = cluster_constants.get(value, value)
    if value in ("kUnset", "nullptr"):  # the default lives in a kDefault constant or the help alone
        continue
    value = {"true": "on", "false": "off", "SharingMode::off": "off"}.get(value, value)
    code_default[name] = norm(value)

# 3. README: rows of tables whose header has a Default column.
readme_default = {}
for table in re.findall(r"((?:^\|.*\|\n)+)", readme, re.M):
    rows = [r.strip().strip("|").replace("\\|", "/").split("|") for r in table.strip().split("\n")]
    header = [c.strip() for c in rows[0]]
    if "Default" not in header or "Directive" not in header[0]:
        continue
    col = header.index("Default")
    for row in rows[2:]:
        names = re.findall(r"`(UriToken\w+)", row[0])
        values = [v for v in row[col].split(",")] if len(names) > 1 else [row[col]]
        for name, value in zip(names, values):
            v = re.sub(r"\s*\(.*\)$", "", value.strip())
            readme_default[name] = norm(v)

# 4. man/mod_uritoken.8: a ".SS UriTokenName ARGS" heading per directive and
# its "Default: X." line (a parenthesised remark after X is ignored).
man_default = {}
man_directives = []
for m in re.finditer(r"^\.SS (UriToken\w+)[^\n]*\n((?:(?!\.S[SH] ).*\n)*)", man8, re.M):
    name, body = m.group(1), m.group(2)
    man_directives.append(name)
    d = re.search(r"^Default: (.*)$", body, re.M)
    if d is None:
        continue
    v = re.sub(r"\s*\(.*\)$", "", d.group(1).strip().rstrip("."))
    man_default[name] = norm(v)

problems = []
code_directives = re.findall(r'AP_INIT_\w+\("(UriToken\w+)"', config_cc)
for name in sorted(set(code_directives) - set(man_directives)):
    problems.append(f"{name}: no '.SS {name}' in man/mod_uritoken.8")
for name in sorted(set(man_directives) - set(code_directives)):
    problems.append(f"{name}: in man/mod_uritoken.8 but not a directive in config.cc")
for name in sorted(set(man_directives)):
    if man_directives.count(name) > 1:
        problems.append(f"{name}: described more than once in man/mod_uritoken.8")
    if name not in man_default:
        problems.append(f"{name}: no 'Default:' line under it in man/mod_uritoken.8")
for name in sorted(set(help_default) | set(code_default)):
    seen = {k: d[name] for k, d in (("code", code_default), ("help", help_default), ("README", readme_default),
                                    ("man page", man_default))
            if name in d}
    if name not in readme_default:
        problems.append(f"{name}: not in the README's directive tables")
    if len(set(seen.values())) > 1:
        problems.append(f"{name}: defaults disagree: " + ", ".join(f"{k} {v!r}" for k, v in seen.items()))
# 5. man/uritoken.1 against the CLI's usage text (kUsage): every command, and
# every option of a command, appears in the man page (roff writes - as \-).
usage = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', re.search(r"kUsage =(.*?);\n", cli_cc, re.S).group(1)))
man1_text = man1.replace("\\-", "-").replace("\\fB", "").replace("\\fI", "").replace("\\fR", "")
commands = re.findall(r"^  uritoken ([a-z-]+)", usage.replace("\\n", "\n"), re.M)
options = sorted(set(re.findall(r"--[a-z][a-z-]*", usage)))
if not commands or not options:
    problems.append("could not read the commands and options of kUsage in mod_uritoken/cli/uritoken_cli.cc")
for c in commands:
    if not re.search(rf"^uritoken {re.escape(c)}\b", man1_text, re.M):
        problems.append(f"uritoken {c}: not in the SYNOPSIS of man/uritoken.1")
    if not re.search(rf"^\.TP\n\.B {re.escape(c)}\b", man1_text, re.M):
        problems.append(f"uritoken {c}: no '.TP/.B {c}' entry under COMMANDS in man/uritoken.1")
for o in options:
    if not re.search(rf"^\.B[I]? {re.escape(o)}\b", man1_text, re.M):
        problems.append(f"option {o}: not described ('.B {o}' or '.BI {o}') in man/uritoken.1")

# One release version, four places: bump them together.
versions = {}
m = re.search(r"^AC_INIT\(\[mod_uritoken\], \[([^\]]+)\]", open(f"{root}/configure.ac").read(), re.M)
versions["configure.ac AC_INIT"] = m.group(1) if m else None
m = re.match(r"\S+ \(([^)]+)\)", open(f"{root}/debian/changelog").read())
versions["debian/changelog"] = m.group(1) if m else None
for page in ("mod_uritoken.8", "uritoken.1"):
    m = re.search(r'^\.TH .*"mod_uritoken ([^"]+)"', open(f"{root}/man/{page}").read(), re.M)
    versions[f"man/{page} .TH"] = m.group(1) if m else None
if None in versions.values() or len(set(versions.values())) != 1:
    problems.append("release version differs (or is missing): " +
                    ", ".join(f"{k} {v!r}" for k, v in versions.items()))

for p in problems:
    print("lint: " + p)
if problems:
    sys.exit(1)
print(f"lint: defaults of {len(readme_default)} directives agree in code, help, README and man page; "
      f"mod_uritoken(8) describes all {len(code_directives)} directives; "
      f"uritoken(1) names all {len(commands)} commands and {len(options)} options; "
      f"version {versions['configure.ac AC_INIT']} in configure.ac, debian/changelog and both man pages")
