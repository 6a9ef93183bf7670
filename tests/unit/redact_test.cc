// SPDX-License-Identifier: Apache-2.0
// Token redaction (core/redact.h) on every kind of request text that
// reaches a log: request lines of tokenized, refused and odd requests,
// query strings, Referers, every spelling of the marker.
#include "../../mod_uritoken/core/redact.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

using namespace uritoken;

namespace {

const std::string kTok = "AQIAB2sC_LSstB13FdzthAIGc2l0ZTQyI54Qxlr2VSZ5Jv4aaCqXiw";

struct Case {
  std::string in;
  std::string out;
};

TEST(Redact, EveryRequestClassLosesItsToken) {
  const std::vector<Case> cases = {
      // well-formed tokenized request
      {"GET /_uk_" + kTok + "/gallery/12/photo.jpg HTTP/1.1", "GET /_uk_[redacted]/gallery/12/photo.jpg HTTP/1.1"},
      // the bare prefix, with a query
      {"GET /_uk_" + kTok + "?x=1 HTTP/1.1", "GET /_uk_[redacted]?x=1 HTTP/1.1"},
      // misplaced and doubled tokens
      {"GET /a/_uk_" + kTok + "/b HTTP/1.1", "GET /a/_uk_[redacted]/b HTTP/1.1"},
      {"GET /_uk_" + kTok + "/_uk_" + kTok + "/b HTTP/1.1", "GET /_uk_[redacted]/_uk_[redacted]/b HTTP/1.1"},
      // other spellings of the marker
      {"GET /_UK_" + kTok + "/b HTTP/1.1", "GET /_uk_[redacted]/b HTTP/1.1"},
      {"GET /%5Fuk_" + kTok + "/b HTTP/1.1", "GET /_uk_[redacted]/b HTTP/1.1"},
      {"GET /%5f%75%6B%5F" + kTok + "/b HTTP/1.1", "GET /_uk_[redacted]/b HTTP/1.1"},
      // a percent-encoded token
      {"GET /_uk_%41%42%43" + kTok + "/b HTTP/1.1", "GET /_uk_[redacted]/b HTTP/1.1"},
      // query strings of untokenized URLs, encoded or not
      {"GET /player?src=/_uk_" + kTok + "/v.m3u8 HTTP/1.1", "GET /player?src=/_uk_[redacted]/v.m3u8 HTTP/1.1"},
      {"GET /p?t=_uk_" + kTok + "&x=1 HTTP/1.1", "GET /p?t=_uk_[redacted]&x=1 HTTP/1.1"},
      {"GET /p?next=%2F_uk_" + kTok + "%2Fa.jpg HTTP/1.1", "GET /p?next=%2F_uk_[redacted].jpg HTTP/1.1"},
      // a '#' in the target (httpd answers 400 before any module runs)
      {"GET /_uk_" + kTok + "/a#frag HTTP/1.1", "GET /_uk_[redacted]/a#frag HTTP/1.1"},
      // an absolute-form target and a Referer
      {"GET http://media.example/_uk_" + kTok + "/a HTTP/1.1", "GET http://media.example/_uk_[redacted]/a HTTP/1.1"},
      {"https://media.example/_uk_" + kTok + "/gallery/index.html",
       "https://media.example/_uk_[redacted]/gallery/index.html"},
      // a request line cut short (414, or a client stalling mid-line)
      {"GET /_uk_" + kTok.substr(0, 20), "GET /_uk_[redacted]"},
      // the marker alone, and nothing to redact
      {"_uk_", "_uk_[redacted]"},
      {"GET /gallery/12/photo.jpg HTTP/1.1", "GET /gallery/12/photo.jpg HTTP/1.1"},
      {"GET /_u_k/%5F/%zz/_uk HTTP/1.1", "GET /_u_k/%5F/%zz/_uk HTTP/1.1"},
      {"", ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(redact_tokens(c.in), c.out) << c.in;
    EXPECT_EQ(redact_tokens(c.out), c.out) << "redacting twice changes nothing: " << c.out;
    EXPECT_EQ(find_token_marker(c.in) == std::string::npos, c.in == c.out) << c.in;
  }
}

TEST(Redact, CapacityHoldsForTheWorstCase) {
  // Back-to-back markers grow the most: 4 bytes become 14.
  std::string worst;
  for (int i = 0; i < 50; ++i) worst += "_uk_";
  const std::string out = redact_tokens(worst);
  EXPECT_LE(out.size() + 1, redacted_capacity(worst.size()));
  EXPECT_EQ(out, "_uk_[redacted]");  // the first run swallows the rest: '_' is a token character
  std::string spaced;
  for (int i = 0; i < 50; ++i) spaced += "_uk_ ";
  EXPECT_LE(redact_tokens(spaced).size() + 1, redacted_capacity(spaced.size()));
}

// Random request lines with tokens spliced in at random places, in random
// spellings: the output never holds any of the token's characters in a
// row of 8, and never has a marker that is not followed by "[redacted]".
TEST(Redact, RandomLinesNeverKeepAToken) {
  std::mt19937 rng(20261130);
  const std::string alphabet = "abcXYZ019/_-%?&=#. ";
  const std::vector<std::string> markers = {"_uk_", "_UK_", "%5Fuk_", "%5f%55%6b%5F", "_uK%5f"};
  for (int round = 0; round < 20000; ++round) {
    std::string line = "GET ";
    const int parts = 1 + static_cast<int>(rng() % 4);
    for (int p = 0; p < parts; ++p) {
      for (int k = static_cast<int>(rng() % 12); k > 0; --k) line += alphabet[rng() % alphabet.size()];
      line += markers[rng() % markers.size()] + kTok;
    }
    line += " HTTP/1.1";
    const std::string out = redact_tokens(line);
    for (std::size_t i = 0; i + 8 <= kTok.size(); ++i) {
      ASSERT_EQ(out.find(kTok.substr(i, 8)), std::string::npos) << line << "\n" << out;
    }
    for (std::size_t at = find_token_marker(out); at != std::string::npos;
         at = find_token_marker(out.substr(at + 1)) == std::string::npos
                  ? std::string::npos
                  : at + 1 + find_token_marker(out.substr(at + 1))) {
      ASSERT_EQ(out.compare(at, kRedactedToken.size(), kRedactedToken), 0) << out;
    }
  }
}

}  // namespace
