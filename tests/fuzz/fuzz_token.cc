// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for everything that parses untrusted request bytes
// (and the redaction that runs on every request line):
// the token decoder and verifier, the path decoder, scope derivation and
// IP parsing. The first byte picks the split between token and path, so
// the fuzzer explores both together as a request would carry them.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <string_view>

#include "../../mod_uritoken/core/keyring.h"
#include "../../mod_uritoken/core/redact.h"
#include "../../mod_uritoken/core/request_path.h"
#include "../../mod_uritoken/core/token.h"

using namespace uritoken;

namespace {
const KeyRing& ring() {
  static const KeyRing* r = [] {
    std::string error;
    auto parsed = KeyRing::parse(
        "1 site42 sign AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"
        "7 site42 verify-only AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"
        "3 x retired AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
        &error);
    return new KeyRing(std::move(*parsed));
  }();
  return *r;
}

// The tokens of the known-answer vectors: minted with the key above, and
// the only ones the fuzzer may ever see authenticated (it starts from them).
const std::set<std::string>& vector_tokens() {
  static const std::set<std::string>* tokens = [] {
    auto* set = new std::set<std::string>();
    std::ifstream in(VECTORS_FILE);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("token: ", 0) == 0) set->insert(line.substr(7));
    }
    if (set->empty()) __builtin_trap();  // the property below would be vacuous
    return set;
  }();
  return *tokens;
}

// Redaction never crashes, fits its capacity, and leaves no marker that is
// not followed by "[redacted]".
void check_redaction(std::string_view text) {
  std::string out(redacted_capacity(text.size()), '\0');
  const std::size_t n = redact_tokens(text, out.data());
  if (n + 1 > out.size() || out[n] != '\0') __builtin_trap();
  const std::string_view red(out.data(), n);
  for (std::size_t at = 0; at < red.size(); ++at) {
    const std::size_t found = find_token_marker(red.substr(at));
    if (found == std::string_view::npos) break;
    at += found;
    if (red.compare(at, kRedactedToken.size(), kRedactedToken) != 0) __builtin_trap();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t split = data[0] % (size);
  const std::string_view all(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string_view token = all.substr(0, split);
  const std::string_view raw_path = all.substr(split);

  Claims claims;
  (void)decode_token(token, &claims);

  std::string path;
  if (decode_request_path(raw_path, &path) == PathProblem::none) {
    if (path.empty() || path[0] != '/') __builtin_trap();
    std::string scratch;
    (void)scope_of_path(path, data[0], &scratch);
  } else {
    path = "/";
  }
  const auto addr = parse_ip_address(raw_path.substr(0, 45));
  VerifyContext ctx;
  ctx.path = path;
  ctx.client_addr = addr ? &*addr : nullptr;
  ctx.now = 1800000000;
  const Verdict v = verify_token(ring(), token, ctx);
  // A token the fuzzer made up must never verify (it cannot know the MAC),
  // unless it is byte-for-byte a seed minted with the test key.
  if (v.authenticated && vector_tokens().count(std::string(token)) == 0) __builtin_trap();
  check_redaction(all);

  (void)split_token_prefix(all);
  std::string canonical;
  (void)scope_descriptor(raw_path, &canonical);
  (void)parse_ip_prefix(raw_path.substr(0, 50));
  std::string error;
  (void)KeyRing::parse(all.substr(0, 400), &error);
  return 0;
}
