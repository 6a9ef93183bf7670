// uritoken: the command-line driver over the token library.
//
//   uritoken keygen --key-id N --client ID
//   uritoken mint --key-file F --client ID (--ttl S | --expires UNIX) [--not-before UNIX]
//                 [--scope PATH] [--ip CIDR] [--key-id N] [--url URL]
//   uritoken inspect TOKEN
//   uritoken verify --key-file F TOKEN [--path PATH] [--ip ADDR] [--now UNIX]
//   uritoken cluster-keygen      (the gossip key for UriTokenClusterKeyFile)
//
// Exit status: 0 success (verify: token valid), 1 refused or failed, 2 usage.
#include <sodium.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "../core/keyring.h"
#include "../core/request_path.h"
#include "../core/token.h"

using namespace uritoken;

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  uritoken keygen --key-id N --client ID\n"
    "  uritoken mint --key-file F --client ID (--ttl SECONDS | --expires UNIX)\n"
    "                [--not-before UNIX] [--scope PATH] [--ip CIDR] [--key-id N] [--url URL]\n"
    "  uritoken inspect TOKEN\n"
    "  uritoken verify --key-file F TOKEN [--path PATH] [--ip ADDR] [--now UNIX]\n"
    "  uritoken cluster-keygen\n";

struct Args {
  std::map<std::string, std::string> options;
  std::vector<std::string> positional;
};

int usage(const std::string& why) {
  std::fprintf(stderr, "uritoken: %s\n%s", why.c_str(), kUsage);
  return 2;
}

// Parses "--name value" pairs; `known` lists the option names allowed.
std::optional<Args> parse_args(int argc, char** argv, const std::vector<std::string>& known,
                               std::string* error) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2), value;
      if (const auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        *error = "option --" + name + " needs a value";
        return std::nullopt;
      }
      bool ok = false;
      for (const auto& k : known) ok = ok || k == name;
      if (!ok) {
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
  std::printf("version: %u\nkey-id: %u\nclient: %.*s\nsession: %s\nexpires: %s\n", c.version,
              c.key_id, static_cast<int>(c.client_len), c.client_buf.data(),
              session_hex(c.session).c_str(), format_time(c.expires).c_str());
  if (c.flags & flag::kNotBefore) std::printf("not-before: %s\n", format_time(c.not_before).c_str());
  if (c.flags & flag::kScope) {
    std::printf("scope: %s of %u path segment(s) (path bound by the MAC, not carried)\n",
                (c.scope & kScopeExact) ? "one file" : "directory", c.scope & 0x7f);
  }
  if (c.flags & (flag::kIpv4 | flag::kIpv6)) {
    std::printf("network: IPv%d /%u (address bound by the MAC, not carried)\n",
                (c.flags & flag::kIpv6) ? 6 : 4, c.ip_prefix_len);
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
                            {"key-file", "client", "ttl", "expires", "not-before", "scope", "ip",
                             "key-id", "url"},
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
    std::fprintf(stderr, "uritoken: no sign key for client '%s'%s in the key file\n",
                 o.at("client").c_str(), key_id ? " with that key id" : "");
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
    if (cmd == "cluster-keygen") {
      if (argc != 2) return usage("cluster-keygen takes no arguments");
      std::printf("%s\n", generate_cluster_key_hex().c_str());
      return 0;
    }
    if (cmd == "inspect") return cmd_inspect(argc, argv);
    if (cmd == "verify") return cmd_verify(argc, argv);
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
