// SPDX-License-Identifier: Apache-2.0
// Cost of checking one token on the request path, from the raw path to a
// verdict: split the "/_uk_TOKEN" prefix, decode the rest of the path,
// verify (decode, key lookup, scope, MAC, time). Tokens rotate over a set
// of 10,000 so branch predictors and caches see realistic variety.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "../../mod_uritoken/core/keyring.h"
#include "../../mod_uritoken/core/request_path.h"
#include "../../mod_uritoken/core/token.h"

using namespace uritoken;

namespace {

constexpr std::uint32_t kNow = 1800000000;

struct Fixture {
  KeyRing ring;
  std::vector<std::string> paths;
  Fixture() {
    std::string error;
    ring = *KeyRing::parse("7 site42 sign AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n", &error);
    for (int i = 0; i < 10000; ++i) {
      MintParams p;
      p.client = "site42";
      p.expires = kNow + 3600;
      p.scope = std::string_view("/gallery/12/");
      const auto tok = mint_token(*ring.find(7), p, &error);
      paths.push_back("/_uk_" + *tok + "/gallery/12/photo-" + std::to_string(i % 50) + ".jpg");
    }
  }
};

const Fixture& fixture() {
  static const Fixture* f = new Fixture();
  return *f;
}

void BM_VerifyFromRawPath(benchmark::State& state) {
  const Fixture& f = fixture();
  std::size_t i = 0;
  std::string path;
  path.reserve(256);
  for (auto _ : state) {
    const std::string& raw = f.paths[i++ % f.paths.size()];
    const TokenSplit split = split_token_prefix(raw);
    if (decode_request_path(split.remainder, &path) != PathProblem::none) state.SkipWithError("path");
    VerifyContext ctx;
    ctx.path = path;
    ctx.now = kNow;
    const Verdict v = verify_token(f.ring, split.token, ctx);
    if (v.status != Status::valid) state.SkipWithError("not valid");
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_VerifyFromRawPath);

void BM_RefuseForgedMac(benchmark::State& state) {
  const Fixture& f = fixture();
  std::string raw = f.paths[0];
  raw[60] = raw[60] == 'A' ? 'B' : 'A';
  const TokenSplit split = split_token_prefix(raw);
  VerifyContext ctx;
  ctx.path = "/gallery/12/photo.jpg";
  ctx.now = kNow;
  for (auto _ : state) benchmark::DoNotOptimize(verify_token(f.ring, split.token, ctx));
}
BENCHMARK(BM_RefuseForgedMac);

void BM_RefuseMalformed(benchmark::State& state) {
  const Fixture& f = fixture();
  VerifyContext ctx;
  ctx.path = "/";
  ctx.now = kNow;
  const std::string junk(60, '.');
  for (auto _ : state) benchmark::DoNotOptimize(verify_token(f.ring, junk, ctx));
}
BENCHMARK(BM_RefuseMalformed);

}  // namespace

BENCHMARK_MAIN();
