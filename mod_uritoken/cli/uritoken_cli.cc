// SPDX-License-Identifier: Apache-2.0
// uritoken: the command-line driver over the token library.
//
//   uritoken keygen --key-id N --client ID
//   uritoken mint --key-file F --client ID (--ttl S | --expires UNIX) [--not-before UNIX]
//                 [--scope PATH] [--ip CIDR] [--key-id N] [--url URL]
//                 [--subscriber ACCOUNT --subscriber-secret-file F [--issued UNIX]]
//   uritoken subscriber-keygen   (the site's secret for subscriber ids)
//   uritoken inspect TOKEN
//   uritoken verify --key-file F TOKEN [--path PATH] [--ip ADDR] [--now UNIX]
//   uritoken cluster-keygen      (the gossip key for UriTokenClusterKeyFile)
//   uritoken blocked [--json] [--key-file F [--client ID]] [--socket PATH]
//   uritoken revoke (--session HEX --key-id N [--expires UNIX] | --url URL | TOKEN)
//                   [--comment TEXT] [--socket PATH]
//   uritoken pardon (--session HEX --key-id N | --url URL | TOKEN) [--comment TEXT] [--socket PATH]
//   uritoken client-revoke API-URL --key-file F --client ID
//                   (--session HEX --key-id N --expires UNIX | --token TOKEN-OR-URL
//                    | --subscriber HEX [--issued-before UNIX])
//                   [--comment TEXT]
//   uritoken client-feed API-URL --key-file F --client ID [--after CURSOR] [--limit N]
//   uritoken host-name --address IP --node-hash HASH --zone ZONE
//   uritoken node-identity [--state-dir DIR] [--zone ZONE]
//
// client-revoke and client-feed are the client site's: signed requests to
// any node's client-site API (docs/client-api.md), over HTTPS with libcurl
// (--cacert FILE for a private CA).
//
// blocked, revoke and pardon talk to the sidecar's control socket
// (docs/control-protocol.md; the client is cluster/control_client.h): --socket,
// else $URITOKEN_CONTROL_SOCKET, else /var/lib/apache2/uritoken/control.sock.
// They never print a token given to them, only its key id and session.
//
// Exit status: 0 success (verify: token valid), 1 refused or failed (an
// error from the sidecar, or none reachable), 2 usage or a malformed argument.
#include <curl/curl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "../cluster/control.h"
#include "../cluster/control_client.h"
#include "../cluster/json.h"
#include "../cluster/node_identity.h"
#include "../cluster/status_report.h"
#include "../core/base64url.h"
#include "../core/client_api.h"
#include "../core/host_name.h"
#include "../core/keyring.h"
#include "../core/request_path.h"
#include "../core/token.h"

using namespace uritoken;

namespace {

// Debian's usual UriTokenStateDir + control.sock (also in kUsage).
constexpr const char* kDefaultControlSocket = "/var/lib/apache2/uritoken/control.sock";

constexpr const char* kUsage =
    "usage:\n"
    "  uritoken keygen --key-id N --client ID\n"
    "  uritoken mint --key-file F --client ID (--ttl SECONDS | --expires UNIX)\n"
    "                [--not-before UNIX] [--scope PATH] [--ip CIDR] [--key-id N] [--url URL]\n"
    "                [--subscriber ACCOUNT --subscriber-secret-file F [--issued UNIX]]\n"
    "  uritoken subscriber-keygen  (the site's secret for --subscriber-secret-file)\n"
    "  uritoken inspect TOKEN\n"
    "  uritoken verify --key-file F TOKEN [--path PATH] [--ip ADDR] [--now UNIX]\n"
    "  uritoken cluster-keygen     (a line for UriTokenClusterKeyFile; several lines rotate keys)\n"
    "  uritoken blocked [--json] [--key-file F [--client ID]] [--socket PATH]\n"
    "  uritoken revoke (--session HEX --key-id N [--expires UNIX] | --url URL | TOKEN)\n"
    "                  [--comment TEXT] [--socket PATH]\n"
    "  uritoken pardon (--session HEX --key-id N | --url URL | TOKEN) [--comment TEXT] [--socket PATH]\n"
    "  uritoken client-revoke API-URL --key-file F --client ID\n"
    "                  (--session HEX --key-id N --expires UNIX | --token TOKEN-OR-URL\n"
    "                   | --subscriber HEX [--issued-before UNIX])\n"
    "                  [--comment TEXT] [--cacert FILE]\n"
    "  uritoken client-feed API-URL --key-file F --client ID [--after CURSOR] [--limit N] [--cacert FILE]\n"
    "  uritoken host-name --address IP --node-hash HASH --zone ZONE   (a server's name at an address)\n"
    "  uritoken node-identity [--state-dir DIR] [--zone ZONE]   (this node's hash; makes its key at first)\n"
    "blocked, revoke and pardon use the sidecar's control socket: --socket, else\n"
    "$URITOKEN_CONTROL_SOCKET, else /var/lib/apache2/uritoken/control.sock\n";

struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;
};

int usage(const std::string& why) {
  std::fprintf(stderr, "uritoken: %s\n%s", why.c_str(), kUsage);
  return 2;
}

bool listed(const std::vector<std::string>& names, const std::string& name) {
  for (const auto& n : names) {
    if (n == name) return true;
  }
  return false;
}

// Parses "--name value" pairs; `known` lists the option names allowed,
// `flags` those that take no value (stored as "1").
std::optional<Args> parse_args(int argc, char** argv, const std::vector<std::string>& known, std::string* error,
                               const std::vector<std::string>& flags = {}) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2), value;
      const auto eq = name.find('=');
      if (listed(flags, name.substr(0, eq))) {
        if (eq != std::string::npos) {
          *error = "option --" + name.substr(0, eq) + " takes no value";
          return std::nullopt;
        }
        a.options[name] = "1";
        continue;
      }
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        *error = "option --" + name + " needs a value";
        return std::nullopt;
      }
      if (!listed(known, name)) {
        *error = "unknown option --" + name;
        return std::nullopt;
      }
      a.options[name] = value;
    } else {
      a.positional.push_back(arg);
    }
  }
  return a;
}

std::optional<std::uint64_t> parse_number(const std::string& s, std::uint64_t max) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > max) return std::nullopt;
  return v;
}

std::string format_time(std::uint32_t t) {
  char buf[32];
  const std::time_t tt = t;
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::to_string(t) + " (" + buf + ")";
}

void print_claims(const Claims& c) {
  std::printf("version: %u\nkey-id: %u\nclient: %.*s\nsession: %s\nexpires: %s\n", c.version, c.key_id,
              static_cast<int>(c.client_len), c.client_buf.data(), session_hex(c.session).c_str(),
              format_time(c.expires).c_str());
  if (c.flags & flag::kNotBefore) std::printf("not-before: %s\n", format_time(c.not_before).c_str());
  if (c.flags & flag::kScope) {
    std::printf("scope: %s of %u path segment(s) (path bound by the MAC, not carried)\n",
                (c.scope & kScopeExact) ? "one file" : "directory", static_cast<unsigned>(c.scope & 0x7f));
  }
  if (c.flags & (flag::kIpv4 | flag::kIpv6)) {
    std::printf("network: IPv%d /%u (address bound by the MAC, not carried)\n", (c.flags & flag::kIpv6) ? 6 : 4,
                c.ip_prefix_len);
  }
  if (c.flags & flag::kSubscriber) {
    std::printf("subscriber: %s\nissued: %s\n", session_hex(c.subscriber).c_str(), format_time(c.issued).c_str());
  }
}

std::optional<KeyRing> load_keys(const Args& a) {
  const auto it = a.options.find("key-file");
  if (it == a.options.end()) {
    std::fprintf(stderr, "uritoken: --key-file is required\n");
    return std::nullopt;
  }
  std::string error;
  auto ring = KeyRing::load_file(it->second, &error);
  if (!ring) std::fprintf(stderr, "uritoken: %s\n", error.c_str());
  return ring;
}

// --subscriber ACCOUNT --subscriber-secret-file F [--issued UNIX]: the
// token's subscriber field (docs/token-format.md), from the site's own
// secret (a protected file of 43 base64url characters).
bool subscriber_of(const Args& a, MintParams* p, std::string* why) {
  const auto& o = a.options;
  if (!o.count("subscriber") || !o.count("subscriber-secret-file")) {
    *why = "a subscriber needs both --subscriber ACCOUNT and --subscriber-secret-file F";
    return false;
  }
  std::string text;
  if (!read_protected_file(o.at("subscriber-secret-file"), &text, why)) return false;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  std::uint8_t secret[32];
  if (text.size() != 43 || base64url_decode(secret, sizeof secret, text) != 32) {
    *why = "--subscriber-secret-file must hold 43 base64url characters (uritoken subscriber-keygen)";
    return false;
  }
  p->subscriber = subscriber_id(secret, p->client, o.at("subscriber"));
  sodium_memzero(secret, sizeof secret);
  if (o.count("issued")) {
    const auto issued = parse_number(o.at("issued"), 0xffffffffULL);
    if (!issued) {
      *why = "--issued must be unix seconds";
      return false;
    }
    p->issued = static_cast<std::uint32_t>(*issued);
  }
  return true;
}

int cmd_keygen(int argc, char** argv) {
  std::string error;
  const auto a = parse_args(argc, argv, {"key-id", "client"}, &error);
  if (!a) return usage(error);
  const auto id = a->options.count("key-id") ? parse_number(a->options.at("key-id"), 65535) : std::nullopt;
  if (!id || *id == 0) return usage("keygen needs --key-id N with N from 1 to 65535");
  const auto client = a->options.count("client") ? a->options.at("client") : std::string();
  if (!client_id_ok(client)) return usage("keygen needs --client ID: 1 to 32 of A-Z a-z 0-9 . _ -");
  std::printf("%s\n", generate_key_line(static_cast<std::uint16_t>(*id), client).c_str());
  return 0;
}

// Inserts "/_uk_TOKEN" between the authority and the path of `url`.
std::optional<std::string> tokenized_url(const std::string& url, const std::string& token) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return std::nullopt;
  auto path_start = url.find('/', scheme_end + 3);
  if (path_start == std::string::npos) path_start = url.size();
  std::string rest = url.substr(path_start);
  if (rest.empty()) rest = "/";
  return url.substr(0, path_start) + "/" + std::string(kTokenPrefix) + token + rest;
}

int cmd_mint(int argc, char** argv) {
  std::string error;
  const auto a = parse_args(argc, argv,
                            {"key-file", "client", "ttl", "expires", "not-before", "scope", "ip", "key-id", "url",
                             "subscriber", "subscriber-secret-file", "issued"},
                            &error);
  if (!a) return usage(error);
  if (!a->positional.empty()) return usage("unexpected argument " + a->positional[0]);
  const auto& o = a->options;
  if (!o.count("client")) return usage("mint needs --client ID");
  if (o.count("ttl") == o.count("expires")) return usage("mint needs exactly one of --ttl or --expires");
  const auto ring = load_keys(*a);
  if (!ring) return 1;
  std::optional<std::uint16_t> key_id;
  if (o.count("key-id")) {
    const auto id = parse_number(o.at("key-id"), 65535);
    if (!id) return usage("--key-id must be from 1 to 65535");
    key_id = static_cast<std::uint16_t>(*id);
  }
  const Key* key = ring->signing_key(o.at("client"), key_id);
  if (key == nullptr) {
    std::fprintf(stderr, "uritoken: no sign key for client '%s'%s in the key file\n", o.at("client").c_str(),
                 key_id ? " with that key id" : "");
    return 1;
  }
  MintParams p;
  p.client = o.at("client");
  const auto now = static_cast<std::uint64_t>(std::time(nullptr));
  if (o.count("ttl")) {
    const auto ttl = parse_number(o.at("ttl"), 10ULL * 365 * 86400);
    if (!ttl || *ttl == 0) return usage("--ttl must be a positive number of seconds");
    p.expires = static_cast<std::uint32_t>(now + *ttl);
  } else {
    const auto exp = parse_number(o.at("expires"), 0xffffffffULL);
    if (!exp) return usage("--expires must be unix seconds");
    p.expires = static_cast<std::uint32_t>(*exp);
  }
  if (o.count("not-before")) {
    const auto nbf = parse_number(o.at("not-before"), 0xffffffffULL);
    if (!nbf) return usage("--not-before must be unix seconds");
    p.not_before = static_cast<std::uint32_t>(*nbf);
  }
  if (o.count("scope")) p.scope = std::string_view(o.at("scope"));
  if (o.count("ip")) {
    p.network = parse_ip_prefix(o.at("ip"));
    if (!p.network) return usage("--ip must be an address or CIDR prefix, e.g. 192.0.2.0/24");
  }
  if (o.count("subscriber") || o.count("subscriber-secret-file") || o.count("issued")) {
    if (!subscriber_of(*a, &p, &error)) return usage(error);
  }
  const auto token = mint_token(*key, p, &error);
  if (!token) {
    std::fprintf(stderr, "uritoken: %s\n", error.c_str());
    return 1;
  }
  if (o.count("url")) {
    const auto url = tokenized_url(o.at("url"), *token);
    if (!url) return usage("--url must be an absolute URL such as https://media.example.net/a/b.jpg");
    std::printf("%s\n", url->c_str());
  } else {
    std::printf("%s\n", token->c_str());
  }
  return 0;
}

// Accepts a bare token or a whole "_uk_TOKEN" segment.
std::string strip_prefix(std::string token) {
  if (token.rfind(kTokenPrefix, 0) == 0) token.erase(0, kTokenPrefix.size());
  return token;
}

int cmd_inspect(int argc, char** argv) {
  std::string error;
  const auto a = parse_args(argc, argv, {}, &error);
  if (!a) return usage(error);
  if (a->positional.size() != 1) return usage("inspect needs one TOKEN");
  Claims c;
  const Reason r = decode_token(strip_prefix(a->positional[0]), &c);
  if (r != Reason::ok) {
    std::fprintf(stderr, "uritoken: malformed token: %s\n", reason_name(r));
    return 1;
  }
  print_claims(c);
  std::printf("note: not verified; use 'uritoken verify' with the key file\n");
  return 0;
}

int cmd_verify(int argc, char** argv) {
  std::string error;
  const auto a = parse_args(argc, argv, {"key-file", "path", "ip", "now"}, &error);
  if (!a) return usage(error);
  if (a->positional.size() != 1) return usage("verify needs one TOKEN");
  const auto ring = load_keys(*a);
  if (!ring) return 1;
  VerifyContext ctx;
  ctx.now = std::time(nullptr);
  std::string path;
  const std::string raw_path = a->options.count("path") ? a->options.at("path") : "/";
  if (const auto p = decode_request_path(raw_path, &path); p != PathProblem::none) {
    std::printf("verdict: invalid\nreason: %s\n", path_problem_name(p));
    return 1;
  }
  ctx.path = path;
  std::optional<IpAddress> addr;
  if (a->options.count("ip")) {
    addr = parse_ip_address(a->options.at("ip"));
    if (!addr) return usage("--ip must be an IPv4 or IPv6 address");
    ctx.client_addr = &*addr;
  }
  if (a->options.count("now")) {
    const auto now = parse_number(a->options.at("now"), 0xffffffffULL);
    if (!now) return usage("--now must be unix seconds");
    ctx.now = static_cast<std::int64_t>(*now);
  }
  const Verdict v = verify_token(*ring, strip_prefix(a->positional[0]), ctx);
  std::printf("verdict: %s\nreason: %s\n", status_name(v.status), reason_name(v.reason));
  if (v.authenticated) print_claims(v.claims);
  return v.status == Status::valid ? 0 : 1;
}

// ---- blocked, revoke, pardon: clients of the sidecar's control socket ----

// --socket, else $URITOKEN_CONTROL_SOCKET, else Debian's usual UriTokenStateDir.
std::string control_socket(const Args& a) {
  if (a.options.count("socket")) return a.options.at("socket");
  const char* env = std::getenv("URITOKEN_CONTROL_SOCKET");
  if (env != nullptr && *env != '\0') return env;
  return kDefaultControlSocket;
}

// Text from the sidecar (a comment typed on another node) made safe for a
// terminal: control bytes, C1 controls included, become '?'.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(s[i + 1]) <= 0x9f) {
      out += '?';
      ++i;
    } else {
      out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
    }
  }
  return out;
}

// One "blocked" or "pardoned" record of a status response (the model and
// JSON the status page's ?json shares).
using Listed = report::Verdict;

std::string render_json(const control::Record* node, const std::vector<Listed>& entries) {
  std::string out = "{\"node\":";
  if (node == nullptr) {
    out += "null";
  } else {
    out += "{\"name\":";
    report::append_json(out, node->get("name"));
    out += ",\"id\":";
    report::append_json(out, node->get("id"));
    out += ",\"mode\":";
    report::append_json(out, node->get("mode"));
    out += ",\"ready\":";
    const auto ready = node->get("ready");
    out += ready ? (*ready == "1" ? "true" : "false") : "null";
    out += ",\"policy\":";
    report::append_json(out, node->get("policy"));
    out += ",\"members\":";
    report::append_json(out, node->get_u64("members"));
    out += "}";
  }
  std::vector<Listed> blocked, pardoned;
  for (const auto& e : entries) (e.blocked ? blocked : pardoned).push_back(e);
  out += ",\n \"blocked\":";
  report::append_json(out, blocked);
  out += ",\n \"pardoned\":";
  report::append_json(out, pardoned);
  out += "}\n";
  return out;
}

// Columns separated by two spaces, each as wide as its widest cell.
void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i >= width.size()) width.push_back(0);
      width[i] = std::max(width[i], row[i].size());
    }
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

std::string evidence_text(const Listed& e) {
  if (e.reason && *e.reason == "bulk") {
    std::string t = "bulk use: " + std::to_string(e.bulk_requests.value_or(0)) + " requests and " +
                    control::format_bytes(e.bulk_bytes.value_or(0)) + " a minute";
    if (!e.places.empty()) t += " from " + e.places[0].name;
    if (!e.networks.empty()) t += " (" + e.networks[0] + ")";
    return printable(t);
  }
  if (e.reason && *e.reason == "auto" && !e.places.empty()) {
    std::string t = std::to_string(e.places.size()) + " places, score " + e.score.value_or("?");
    for (std::size_t i = 0; i < e.places.size(); ++i) {
      t += (i == 0 ? ": " : ", ") + e.places[i].name + " (" + (e.places[i].concurrent ? "concurrent" : "sequential") +
           (e.places[i].networks > 1 ? ", " + std::to_string(e.places[i].networks) + " networks" : "") + ")";
    }
    return printable(t);
  }
  if (e.reason && *e.reason == "auto") {
    std::string t = std::to_string(e.network_count.value_or(e.networks.size())) + " networks";
    for (std::size_t i = 0; i < e.networks.size(); ++i) t += (i == 0 ? ": " : ", ") + e.networks[i];
    return printable(t);
  }
  std::string t = "by " + e.user.value_or("?");
  if (e.operator_address) t += " from " + *e.operator_address;
  if (e.comment && !e.comment->empty()) t += ": " + *e.comment;
  return printable(t);
}

void render_text(const control::Record* node, const std::vector<Listed>& entries) {
  if (node != nullptr) {
    std::printf("node %s: mode %s, %s, %s members\n", printable(node->get("name").value_or("?")).c_str(),
                printable(node->get("mode").value_or("?")).c_str(),
                node->get("ready").value_or("") == "1" ? "ready" : "not ready",
                printable(node->get("members").value_or("?")).c_str());
  }
  for (const bool blocked : {true, false}) {
    std::vector<std::vector<std::string>> rows;
    if (blocked) {
      rows.push_back({"SESSION", "KEY", "CLIENT", "SINCE", "EXPIRES", "REASON", "DECIDED BY", "EVIDENCE"});
    } else {
      rows.push_back({"SESSION", "KEY", "CLIENT", "SINCE", "DECIDED BY", "EVIDENCE"});
    }
    for (const auto& e : entries) {
      if (e.blocked != blocked) continue;
      // A subscriber's verdict (key id 0) covers all its tokens issued until SINCE.
      const std::string key = !e.key_id                       ? "?"
                              : *e.key_id == kSubscriberKeyId ? "subscriber"
                                                              : std::to_string(*e.key_id);
      std::vector<std::string> row = {printable(e.session.value_or("?")), key, e.client.value_or("-"),
                                      e.since_ms ? report::iso_time(*e.since_ms / 1000) : "?"};
      if (blocked) {
        row.push_back(e.expires ? report::iso_time(*e.expires) : "?");
        row.push_back(printable(e.reason.value_or("?")));
      }
      row.push_back(printable(e.decided_by.value_or("?")));
      row.push_back(evidence_text(e));
      rows.push_back(std::move(row));
    }
    const std::size_t n = rows.size() - 1;
    if (blocked) {
      std::printf(n == 0 ? "no blocked tokens\n" : "%zu blocked:\n", n);
    } else {
      std::printf(n == 0 ? "no pardons remembered\n" : "%zu pardoned:\n", n);
    }
    if (n > 0) print_table(rows);
  }
}

int call_failed(const control::CallResult& r) {
  if (r.error == control::CallError::refused) {
    std::fprintf(stderr, "uritoken: the sidecar refused: %s\n", printable(r.message).c_str());
  } else {
    std::fprintf(stderr, "uritoken: %s\n", printable(r.message).c_str());
  }
  return 1;
}

int cmd_blocked(int argc, char** argv) {
  std::string error;
  const auto a = parse_args(argc, argv, {"socket", "client", "key-file"}, &error, {"json"});
  if (!a) return usage(error);
  if (!a->positional.empty()) return usage("blocked takes no arguments");
  const auto& o = a->options;
  if (o.count("client") && !o.count("key-file")) return usage("--client needs --key-file (it maps key ids to clients)");
  std::optional<KeyRing> ring;
  if (o.count("key-file")) {
    ring = load_keys(*a);
    if (!ring) return 1;
  }
  control::Record req;
  req.kind = "status";
  const auto r = control::call(control_socket(*a), req);
  if (!r.ok()) return call_failed(r);

  const control::Record* node = nullptr;
  std::vector<Listed> entries;
  for (const auto& rec : r.records) {
    if (rec.kind == "node" && node == nullptr) node = &rec;
    if (rec.kind != "blocked" && rec.kind != "pardoned") continue;
    Listed e = report::parse_verdict(rec, ring ? &*ring : nullptr);
    if (o.count("client") && e.client != o.at("client")) continue;
    entries.push_back(std::move(e));
  }
  if (o.count("json")) {
    std::fputs(render_json(node, entries).c_str(), stdout);
  } else {
    render_text(node, entries);
  }
  return 0;
}

// The token a revoke or pardon is about: key id, session, expiry.
struct Target {
  std::uint16_t key_id = 0;
  std::string session;  // 16 lower-case hex digits
  std::optional<std::uint32_t> expires;
};

// From --session/--key-id[/--expires], --url or TOKEN; 2 (usage) and a
// message on error, which never quotes the token or URL.
std::optional<Target> parse_target(const Args& a, const char* verb, std::string* error) {
  const auto& o = a.options;
  const bool by_fields = o.count("session") || o.count("key-id") || o.count("expires");
  const bool by_url = o.count("url") > 0;
  const bool by_token = !a.positional.empty();
  if (a.positional.size() > 1) {
    *error = std::string(verb) + " takes at most one TOKEN";
    return std::nullopt;
  }
  if (int(by_fields) + int(by_url) + int(by_token) != 1) {
    *error = std::string(verb) + " needs exactly one of --session HEX --key-id N, --url URL or TOKEN";
    return std::nullopt;
  }
  Target t;
  if (by_fields) {
    if (!o.count("session") || !o.count("key-id")) {
      *error = std::string(verb) + " needs both --session HEX and --key-id N";
      return std::nullopt;
    }
    const std::string& s = o.at("session");
    bool hex = s.size() == 2 * kSessionBytes;
    for (char c : s) hex = hex && std::isxdigit(static_cast<unsigned char>(c));
    if (!hex) {
      *error = "--session must be 16 hex digits (as in URITOKEN_SESSION and the logs)";
      return std::nullopt;
    }
    for (char c : s) t.session += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto id = parse_number(o.at("key-id"), 65535);
    if (!id || *id == 0) {
      *error = "--key-id must be from 1 to 65535";
      return std::nullopt;
    }
    t.key_id = static_cast<std::uint16_t>(*id);
    if (o.count("expires")) {
      const auto exp = parse_number(o.at("expires"), 0xffffffffULL);
      if (!exp) {
        *error = "--expires must be unix seconds";
        return std::nullopt;
      }
      t.expires = static_cast<std::uint32_t>(*exp);
    }
    return t;
  }
  std::string token;
  if (by_url) {
    const auto tok = token_of_url(o.at("url"));  // core/request_path.h
    if (!tok) {
      *error = "--url must be a tokenized URL whose first path segment is /_uk_TOKEN/";
      return std::nullopt;
    }
    token = *tok;
  } else {
    token = strip_prefix(a.positional[0]);
  }
  Claims c;
  if (const Reason r = decode_token(token, &c); r != Reason::ok) {
    *error = std::string(by_url ? "the URL's token" : "TOKEN") + " is malformed: " + reason_name(r);
    return std::nullopt;
  }
  t.key_id = c.key_id;
  t.session = session_hex(c.session);
  t.expires = c.expires;
  return t;
}

// revoke and pardon: one request, the ok record's stamp.
int cmd_verdict(int argc, char** argv, bool revoke) {
  const char* verb = revoke ? "revoke" : "pardon";
  std::string error;
  std::vector<std::string> known = {"socket", "comment", "session", "key-id", "url"};
  if (revoke) known.push_back("expires");
  const auto a = parse_args(argc, argv, known, &error);
  if (!a) return usage(error);
  const auto target = parse_target(*a, verb, &error);
  if (!target) return usage(error);

  control::Record req;
  req.kind = verb;
  req.add("key", target->key_id).add("session", target->session);
  if (revoke && target->expires) req.add("expires", *target->expires);
  req.add("operator", "local");
  const char* user = std::getenv("SUDO_USER");
  if (user == nullptr || *user == '\0') user = std::getenv("USER");
  if (user != nullptr && *user != '\0') req.add("user", user);
  if (a->options.count("comment")) req.add("comment", a->options.at("comment"));

  const auto r = control::call(control_socket(*a), req);
  if (!r.ok()) return call_failed(r);
  const auto stamp = r.records.front().get_u64("stamp_ms");
  std::printf("%s: session %s, key %u", revoke ? "revoked" : "pardoned", target->session.c_str(),
              static_cast<unsigned>(target->key_id));
  if (revoke && target->expires) std::printf(", until %s", report::iso_time(*target->expires).c_str());
  std::printf("; stamped %s, spreading to every node\n", stamp ? report::iso_time(*stamp / 1000).c_str() : "?");
  return 0;
}

// One signed request to a client-site API (docs/client-api.md): prints the
// JSON answer; 0 on 200, 1 otherwise.
int client_request(const Args& a, const std::string& method, const std::string& query, const std::string& body) {
  if (a.positional.size() != 1)
    return usage("client-" + std::string(method == "POST" ? "revoke" : "feed") +
                 " needs one API-URL, e.g. https://media.example.net/uritoken/client");
  if (!a.options.count("client")) return usage("needs --client ID");
  const auto ring = load_keys(a);
  if (!ring) return 2;
  const Key* key = ring->signing_key(a.options.at("client"), std::nullopt);
  if (key == nullptr) {
    std::fprintf(stderr, "uritoken: the key file has no sign key of client %s\n", a.options.at("client").c_str());
    return 2;
  }
  std::string url = a.positional[0] + (query.empty() ? "" : "?" + query);
  // The target as sent: the URL's path and query.
  const std::size_t scheme = url.find("://");
  const std::size_t path_at = scheme == std::string::npos ? std::string::npos : url.find('/', scheme + 3);
  const std::string target = path_at == std::string::npos ? "/" : url.substr(path_at);
  std::uint8_t raw[16];
  randombytes_buf(raw, sizeof raw);
  const std::string nonce = base64url_encode(raw, sizeof raw);
  const std::int64_t now = std::time(nullptr);
  const std::string signature = client_api::sign(*key, method, target, now, nonce, body);

  CURL* curl = curl_easy_init();
  if (curl == nullptr) return 1;
  std::string answer;
  curl_slist* headers = nullptr;
  for (const std::string& h : {"X-UriToken-Key: " + std::to_string(key->id), "X-UriToken-Time: " + std::to_string(now),
                               "X-UriToken-Nonce: " + nonce, "X-UriToken-Signature: " + signature,
                               std::string("Content-Type: application/x-www-form-urlencoded")}) {
    headers = curl_slist_append(headers, h.c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);  // the signed target, unchanged
  if (a.options.count("cacert")) curl_easy_setopt(curl, CURLOPT_CAINFO, a.options.at("cacert").c_str());
  if (method == "POST") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION, +[](char* p, std::size_t size, std::size_t n, void* out) {
        static_cast<std::string*>(out)->append(p, size * n);
        return size * n;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    std::fprintf(stderr, "uritoken: %s: %s\n", a.positional[0].c_str(), curl_easy_strerror(rc));
    return 1;
  }
  std::fputs(answer.c_str(), status == 200 ? stdout : stderr);
  if (status != 200) std::fprintf(stderr, "uritoken: the node answered HTTP %ld\n", status);
  return status == 200 ? 0 : 1;
}

// A form field, percent-encoded (RFC 3986 unreserved kept).
std::string form_field(const std::string& name, const std::string& value) {
  std::string out = name + "=";
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

int cmd_client_revoke(int argc, char** argv) {
  std::string error;
  const auto a = parse_args(argc, argv,
                            {"key-file", "client", "session", "key-id", "expires", "token", "subscriber",
                             "issued-before", "comment", "cacert"},
                            &error);
  if (!a) return usage(error);
  const auto& o = a->options;
  std::string body;
  const unsigned ways = (o.count("token") ? 1u : 0u) + (o.count("subscriber") ? 1u : 0u) +
                        (o.count("session") || o.count("key-id") || o.count("expires") ? 1u : 0u);
  if (ways != 1) {
    return usage(
        "client-revoke needs --token TOKEN-OR-URL, --subscriber HEX, or --session HEX --key-id N --expires UNIX");
  }
  if (o.count("issued-before") && !o.count("subscriber")) return usage("--issued-before goes with --subscriber only");
  if (o.count("subscriber")) {
    body = form_field("subscriber", o.at("subscriber"));
    if (o.count("issued-before")) body += "&" + form_field("issued_before", o.at("issued-before"));
  } else if (o.count("token")) {
    body = form_field("token", o.at("token"));
  } else {
    if (!o.count("session") || !o.count("key-id") || !o.count("expires")) {
      return usage("client-revoke needs all of --session HEX --key-id N --expires UNIX");
    }
    body = form_field("key", o.at("key-id")) + "&" + form_field("session", o.at("session")) + "&" +
           form_field("expires", o.at("expires"));
  }
  if (o.count("comment")) body += "&" + form_field("comment", o.at("comment"));
  return client_request(*a, "POST", "", body);
}

// The host name URLs minted for one server use (core/host_name.h).
int cmd_host_name(int argc, char** argv) {
  std::string error;
  const auto a = parse_args(argc, argv, {"address", "node-hash", "zone"}, &error);
  if (!a) return usage(error);
  const auto& o = a->options;
  if (!o.count("address") || !o.count("node-hash") || !o.count("zone") || !a->positional.empty()) {
    return usage("host-name needs --address IP --node-hash HASH --zone ZONE");
  }
  const auto ip = parse_ip_address(o.at("address"));
  if (!ip) return usage("--address '" + printable(o.at("address")) + "' is not an IPv4 or IPv6 address");
  const auto host = server_host_name(*ip, o.at("node-hash"), o.at("zone"), &error);
  if (!host) return usage(error);
  std::printf("%s\n", host->c_str());
  return 0;
}

// This node's hash (cluster/node_identity.h), read from UriTokenStateDir's
// node.key, which is made as the sidecar makes it if it is missing, and
// given to the directory's owner (the sidecar's user) when made by root.
int cmd_node_identity(int argc, char** argv) {
  std::string error;
  const auto a = parse_args(argc, argv, {"state-dir", "zone"}, &error);
  if (!a) return usage(error);
  if (!a->positional.empty()) return usage("node-identity takes no arguments besides its options");
  const auto& o = a->options;
  const std::string dir = o.count("state-dir") ? o.at("state-dir") : "/var/lib/apache2/uritoken";
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "uritoken: %s is not a directory: give the node's UriTokenStateDir (--state-dir)\n",
                 printable(dir).c_str());
    return 1;
  }
  const std::string path = dir + "/" + cluster::kNodeKeyFile;
  const auto id = cluster::load_node_identity(path, true, &error);
  if (!id) {
    std::fprintf(stderr, "uritoken: %s\n", printable(error).c_str());
    return 1;
  }
  if (id->created && geteuid() == 0 && chown(path.c_str(), st.st_uid, st.st_gid) != 0) {
    std::fprintf(stderr, "uritoken: cannot give %s to the owner of %s: %s\n", path.c_str(), dir.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::printf("node hash: %s\nkey: %s (%s)\n", id->hash.c_str(), path.c_str(), id->created ? "made now" : "kept");
  if (o.count("zone")) {
    const auto zone = normalized_zone(o.at("zone"));
    if (!zone) return usage("--zone '" + printable(o.at("zone")) + "' is not a DNS zone");
    std::printf("zone: %s.%s\ncertificate: *.%s.%s\n", id->hash.c_str(), zone->c_str(), id->hash.c_str(),
                zone->c_str());
  }
  return 0;
}

int cmd_client_feed(int argc, char** argv) {
  std::string error;
  const auto a = parse_args(argc, argv, {"key-file", "client", "after", "limit", "cacert"}, &error);
  if (!a) return usage(error);
  std::string query;
  if (a->options.count("after")) query = form_field("after", a->options.at("after"));
  if (a->options.count("limit")) query += (query.empty() ? "" : "&") + form_field("limit", a->options.at("limit"));
  return client_request(*a, "GET", query, "");
}

}  // namespace

int main(int argc, char** argv) {
  if (sodium_init() < 0) {
    std::fprintf(stderr, "uritoken: libsodium failed to initialise\n");
    return 1;
  }
  if (argc < 2) return usage("no command given");
  const std::string cmd = argv[1];
  try {
    if (cmd == "keygen") return cmd_keygen(argc, argv);
    if (cmd == "mint") return cmd_mint(argc, argv);
    if (cmd == "subscriber-keygen") {
      if (argc != 2) return usage("subscriber-keygen takes no arguments");
      std::uint8_t secret[32];
      randombytes_buf(secret, sizeof secret);
      std::printf("%s\n", base64url_encode(secret, sizeof secret).c_str());
      sodium_memzero(secret, sizeof secret);
      return 0;
    }
    if (cmd == "cluster-keygen") {
      if (argc != 2) return usage("cluster-keygen takes no arguments");
      std::printf("%s\n", generate_cluster_key_hex().c_str());
      return 0;
    }
    if (cmd == "inspect") return cmd_inspect(argc, argv);
    if (cmd == "verify") return cmd_verify(argc, argv);
    if (cmd == "blocked") return cmd_blocked(argc, argv);
    if (cmd == "revoke") return cmd_verdict(argc, argv, true);
    if (cmd == "pardon") return cmd_verdict(argc, argv, false);
    if (cmd == "client-revoke") return cmd_client_revoke(argc, argv);
    if (cmd == "client-feed") return cmd_client_feed(argc, argv);
    if (cmd == "host-name") return cmd_host_name(argc, argv);
    if (cmd == "node-identity") return cmd_node_identity(argc, argv);
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::printf("%s", kUsage);
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uritoken: %s\n", e.what());
    return 1;
  }
  return usage("unknown command " + cmd);
}
