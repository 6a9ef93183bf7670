// libFuzzer target for everything that parses untrusted request bytes:
// the token decoder and verifier, the path decoder, scope derivation and
// IP parsing. The first byte picks the split between token and path, so
// the fuzzer explores both together as a request would carry them.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "../../mod_uritoken/core/keyring.h"
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
  if (v.authenticated && token.size() < kTokenMinChars) __builtin_trap();

  (void)split_token_prefix(all);
  std::string canonical;
  (void)scope_descriptor(raw_path, &canonical);
  (void)parse_ip_prefix(raw_path.substr(0, 50));
  std::string error;
  (void)KeyRing::parse(all.substr(0, 400), &error);
  return 0;
}
