// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the client-site API's request parsers
// (core/client_api.h): the signing headers, the revoke body, the feed
// query, and authenticate() over whatever they accept. The input is split
// at NUL bytes into the headers, the target and the body. Nothing may
// crash, and only a request signed with the key's secret authenticates.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "../../mod_uritoken/core/client_api.h"

using namespace uritoken;

namespace {
const KeyRing& ring() {
  static const KeyRing keys = [] {
    std::string error;
    return *KeyRing::parse(
        "7 site42 sign AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"
        "8 other verify-only ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8\n",
        &error);
  }();
  return keys;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> parts(7);
  std::size_t k = 0;
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0 && k + 1 < parts.size()) {
      ++k;
    } else {
      parts[k].push_back(static_cast<char>(data[i]));
    }
  }
  client_api::Auth auth;
  const client_api::Problem parsed =
      client_api::parse_auth(parts[0].c_str(), parts[1].c_str(), parts[2].c_str(), parts[3].c_str(), &auth);
  if (parsed == client_api::Problem::ok) {
    const Key* key = nullptr;
    const client_api::Problem checked =
        client_api::authenticate(ring(), auth, parts[4], parts[5], parts[6], auth.time, &key);
    // Only a request signed with that key's secret authenticates (the seeds
    // hold one; a mutation that keeps it valid changes no signed part).
    if (checked == client_api::Problem::ok &&
        (key == nullptr || key->id != auth.key_id ||
         client_api::sign(*key, parts[4], parts[5], auth.time, auth.nonce, parts[6]) != parts[3])) {
      __builtin_trap();
    }
  }
  client_api::RevokeRequest revoke;
  std::string why;
  client_api::parse_revoke(parts[6], ring(), parts[4], 1800000000, &revoke, &why);
  client_api::FeedQuery query;
  client_api::parse_feed_query(parts[5], &query, &why);
  client_api::parse_cursor(parts[5]);
  return 0;
}
