// SPDX-License-Identifier: Apache-2.0
// Splitting the token prefix, refusing unsafe paths, deriving scopes.
#include "../../mod_uritoken/core/request_path.h"

#include <gtest/gtest.h>

using namespace uritoken;

TEST(RequestPath, SplitsTokenPrefix) {
  auto s = split_token_prefix("/_uk_ABC/gallery/a.jpg");
  EXPECT_TRUE(s.has_token);
  EXPECT_EQ(s.token, "ABC");
  EXPECT_EQ(s.remainder, "/gallery/a.jpg");
  s = split_token_prefix("/_uk_ABC");
  EXPECT_TRUE(s.has_token);
  EXPECT_EQ(s.remainder, "");
  EXPECT_FALSE(split_token_prefix("/gallery/_uk_ABC/a").has_token);
  EXPECT_FALSE(split_token_prefix("/_uk").has_token);
  EXPECT_FALSE(split_token_prefix("_uk_ABC/x").has_token);
}

TEST(RequestPath, DecodesAndMergesSlashes) {
  std::string d;
  EXPECT_EQ(decode_request_path("/a%20b//c/%7Euser/", &d), PathProblem::none);
  EXPECT_EQ(d, "/a b/c/~user/");
  EXPECT_EQ(decode_request_path("", &d), PathProblem::none);
  EXPECT_EQ(d, "/");
  EXPECT_EQ(decode_request_path("/..foo/a..b/...", &d), PathProblem::none);  // not dot segments
}

TEST(RequestPath, RefusesTraversalEncodedSlashesAndNul) {
  std::string d;
  EXPECT_EQ(decode_request_path("/a/../b", &d), PathProblem::dot_segment);
  EXPECT_EQ(decode_request_path("/..", &d), PathProblem::dot_segment);
  EXPECT_EQ(decode_request_path("/a/./b", &d), PathProblem::dot_segment);
  EXPECT_EQ(decode_request_path("/a/%2e%2e/b", &d), PathProblem::dot_segment);
  EXPECT_EQ(decode_request_path("/a/%2E./b", &d), PathProblem::dot_segment);
  EXPECT_EQ(decode_request_path("/a/%2e", &d), PathProblem::dot_segment);
  EXPECT_EQ(decode_request_path("/a%2fb", &d), PathProblem::encoded_slash);
  EXPECT_EQ(decode_request_path("/a%2Fb", &d), PathProblem::encoded_slash);
  EXPECT_EQ(decode_request_path("/a%5cb", &d), PathProblem::encoded_slash);
  EXPECT_EQ(decode_request_path("/a%00b", &d), PathProblem::nul_byte);
  EXPECT_EQ(decode_request_path(std::string_view("/a\0b", 4), &d), PathProblem::nul_byte);
  EXPECT_EQ(decode_request_path("/a%zz", &d), PathProblem::bad_escape);
  EXPECT_EQ(decode_request_path("/a%2", &d), PathProblem::bad_escape);
  EXPECT_EQ(decode_request_path("/a%", &d), PathProblem::bad_escape);
  EXPECT_EQ(decode_request_path("/a/_uk_XYZ/b", &d), PathProblem::misplaced_token);
  EXPECT_EQ(decode_request_path("/a/%5Fuk_XYZ", &d), PathProblem::misplaced_token);
  // A token segment further down the path, in any spelling, is refused.
  for (const char* p : {"/a/_uk_X/b", "/a/_UK_X", "/a/%5Fuk_X", "/a/_Uk%5FX/b"}) {
    std::string out;
    EXPECT_EQ(decode_request_path(p, &out), PathProblem::misplaced_token) << p;
  }
}

TEST(RequestPath, ScopeDescriptor) {
  std::string canon;
  EXPECT_EQ(scope_descriptor("/gallery/12/", &canon), 2);
  EXPECT_EQ(canon, "/gallery/12/");
  EXPECT_EQ(scope_descriptor("/gallery/12/a.jpg", &canon), 3 | kScopeExact);
  EXPECT_EQ(scope_descriptor("//a///b//", &canon), 2);
  EXPECT_EQ(canon, "/a/b/");
  EXPECT_FALSE(scope_descriptor("/", &canon));
  EXPECT_FALSE(scope_descriptor("a/", &canon));
  EXPECT_FALSE(scope_descriptor("/a/../", &canon));
  EXPECT_FALSE(scope_descriptor("/a%20b/", &canon));
  std::string deep;
  for (int i = 0; i < 128; ++i) deep += "/x";
  EXPECT_FALSE(scope_descriptor(deep + "/", &canon));
  EXPECT_EQ(scope_descriptor(deep.substr(2) + "/", &canon), 127);
}

TEST(RequestPath, ScopeOfPath) {
  std::string scratch;
  EXPECT_EQ(*scope_of_path("/a/b/c.jpg", 2, &scratch), "/a/b/");
  EXPECT_EQ(*scope_of_path("/a/b/", 2, &scratch), "/a/b/");
  EXPECT_EQ(*scope_of_path("/a/b", 2, &scratch), "/a/b/");
  EXPECT_FALSE(scope_of_path("/a/", 2, &scratch));
  EXPECT_FALSE(scope_of_path("/a", 2, &scratch));
  EXPECT_EQ(*scope_of_path("/a/b/c.jpg", 3 | kScopeExact, &scratch), "/a/b/c.jpg");
  EXPECT_FALSE(scope_of_path("/a/b/c.jpg/", 3 | kScopeExact, &scratch));
  EXPECT_FALSE(scope_of_path("/a/b/c.jpg/d", 3 | kScopeExact, &scratch));
  EXPECT_FALSE(scope_of_path("/a/b", 3 | kScopeExact, &scratch));
  EXPECT_FALSE(scope_of_path("/a/b", 0, &scratch));
}

TEST(RequestPath, TokenSegmentsPlainOrEncoded) {
  EXPECT_EQ(token_prefix_length("_uk_ABC"), 4u);
  EXPECT_EQ(token_prefix_length("%5Fuk%5fABC"), 8u);
  EXPECT_EQ(token_prefix_length("%5F%75%6B_ABC"), 10u);
  EXPECT_EQ(token_prefix_length("_uk"), 0u);
  EXPECT_EQ(token_prefix_length("_uK_"), 4u);  // any case: refused and redacted like the rest
  EXPECT_EQ(token_prefix_length("%5FUK_x"), 6u);
  EXPECT_EQ(token_prefix_length("_ux_"), 0u);
  EXPECT_EQ(token_prefix_length("%5"), 0u);
  EXPECT_TRUE(has_token_segment("/a/_uk_X/b"));
  EXPECT_TRUE(has_token_segment("/a/%5Fuk%5FX"));
  EXPECT_FALSE(has_token_segment("/a/x_uk_/b"));
  EXPECT_FALSE(has_token_segment("/gallery/12/photo.jpg"));
  EXPECT_FALSE(has_token_segment(""));
}

// One parser of a pasted URL, with the server's rule: the token is the
// first path segment, spelled "_uk_".
TEST(RequestPath, TokenOfAUrlIsItsFirstPathSegment) {
  EXPECT_EQ(token_of_url("https://media.example/_uk_AQIDBA/gallery/a.jpg"), "AQIDBA");
  EXPECT_EQ(token_of_url("https://media.example:8443/_uk_AQIDBA?x=1"), "AQIDBA");
  EXPECT_EQ(token_of_url("http://[2001:db8::1]/_uk_AQIDBA#top"), "AQIDBA");
  EXPECT_EQ(token_of_url("/_uk_AQIDBA/gallery/"), "AQIDBA");
  EXPECT_EQ(token_of_url("/_uk_"), "");  // a token segment, empty: decoding refuses it
  for (const char* no :
       {"https://media.example/gallery/_uk_AQIDBA/a.jpg", "https://media.example", "https://media.example?/_uk_AQIDBA",
        "_uk_AQIDBA", "AQIDBA", "", "/gallery/a.jpg", "https://media.example/_UK_AQIDBA/"}) {
    EXPECT_EQ(token_of_url(no), std::nullopt) << no;
  }
}
