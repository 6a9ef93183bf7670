// SPDX-License-Identifier: Apache-2.0
// Prints N tokens (one per line) for the throughput benchmark, minted with
// the first sign key of a key file: faster than N runs of the CLI.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "../../mod_uritoken/core/keyring.h"
#include "../../mod_uritoken/core/token.h"

using namespace uritoken;

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: mint_many KEY_FILE CLIENT SCOPE COUNT\n");
    return 2;
  }
  std::string error;
  const auto ring = KeyRing::load_file(argv[1], &error);
  if (!ring) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  const Key* key = ring->signing_key(argv[2], std::nullopt);
  if (key == nullptr) return 1;
  MintParams p;
  p.client = argv[2];
  p.expires = static_cast<std::uint32_t>(std::time(nullptr) + 3600);
  p.scope = std::string_view(argv[3]);
  for (long i = 0, n = std::atol(argv[4]); i < n; ++i) {
    const auto tok = mint_token(*key, p, &error);
    if (!tok) return 1;
    std::printf("%s\n", tok->c_str());
  }
  return 0;
}
