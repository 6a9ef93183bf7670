// SPDX-License-Identifier: Apache-2.0
// The client-site API's requests: the signature on the shared vectors,
// every check of authenticate() in its order, and the strict bodies.
#include "../../mod_uritoken/core/client_api.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../../mod_uritoken/core/base64url.h"
#include "test_helpers.h"

namespace uritoken::client_api {
namespace {

KeyRing test_ring() {
  std::uint8_t secret[32];
  for (int i = 0; i < 32; ++i) secret[i] = static_cast<std::uint8_t>(i);
  KeyRing ring;
  std::string error;
  EXPECT_TRUE(ring.add(7, "site42", KeyState::sign, secret, &error));
  secret[0] = 0xff;
  EXPECT_TRUE(ring.add(8, "site42", KeyState::retired, secret, &error));
  secret[0] = 0xfe;
  EXPECT_TRUE(ring.add(9, "other", KeyState::verify_only, secret, &error));
  return ring;
}

constexpr std::int64_t kNow = 1800000000;
constexpr const char* kNonce = "AAECAwQFBgcICQoLDA0ODw";

TEST(ClientApi, SignsEveryVector) {
  const KeyRing ring = test_ring();
  const auto blocks = uritoken::testing::read_vectors("client-requests.txt");
  ASSERT_EQ(blocks.size(), 6u);
  for (const auto& b : blocks) {
    const std::string body = b.fields.at("body") == "-" ? "" : b.fields.at("body");
    const std::int64_t time = std::stoll(b.fields.at("time"));
    EXPECT_EQ(sign(*ring.find(7), b.fields.at("method"), b.fields.at("target"), time, b.fields.at("nonce"), body),
              b.fields.at("signature"))
        << b.fields.at("name");
    // And the checking side accepts exactly that request.
    Auth auth;
    ASSERT_EQ(parse_auth("7", b.fields.at("time").c_str(), b.fields.at("nonce").c_str(),
                         b.fields.at("signature").c_str(), &auth),
              Problem::ok);
    const Key* key = nullptr;
    EXPECT_EQ(authenticate(ring, auth, b.fields.at("method"), b.fields.at("target"), body, time, &key), Problem::ok);
    EXPECT_EQ(key, ring.find(7));
  }
}

TEST(ClientApi, RefusesEachAlteredPart) {
  const KeyRing ring = test_ring();
  const std::string body = "key=7&session=0123456789abcdef&expires=1800000600";
  const std::string sig = sign(*ring.find(7), "POST", "/api", kNow, kNonce, body);
  auto check = [&](const char* key_id, std::string method, std::string target, std::int64_t time, std::string nonce,
                   std::string b, std::int64_t now) {
    Auth auth;
    const std::string t = std::to_string(time);
    const Problem parsed = parse_auth(key_id, t.c_str(), nonce.c_str(), sig.c_str(), &auth);
    if (parsed != Problem::ok) return parsed;
    const Key* key = nullptr;
    return authenticate(ring, auth, method, target, b, now, &key);
  };
  EXPECT_EQ(check("7", "POST", "/api", kNow, kNonce, body, kNow), Problem::ok);
  EXPECT_EQ(check("7", "GET", "/api", kNow, kNonce, body, kNow), Problem::bad_signature);
  EXPECT_EQ(check("7", "POST", "/api?x", kNow, kNonce, body, kNow), Problem::bad_signature);
  EXPECT_EQ(check("7", "POST", "/api", kNow + 1, kNonce, body, kNow), Problem::bad_signature);
  EXPECT_EQ(check("7", "POST", "/api", kNow, "AAECAwQFBgcICQoLDA0ODx", body, kNow), Problem::bad_signature);
  EXPECT_EQ(check("7", "POST", "/api", kNow, kNonce, body + "&", kNow), Problem::bad_signature);
  EXPECT_EQ(check("9", "POST", "/api", kNow, kNonce, body, kNow), Problem::bad_signature);  // another client's key
  EXPECT_EQ(check("8", "POST", "/api", kNow, kNonce, body, kNow), Problem::retired_key);
  EXPECT_EQ(check("6", "POST", "/api", kNow, kNonce, body, kNow), Problem::unknown_key);
  // The window: 60 s either way of the node's clock, and only after the signature.
  EXPECT_EQ(check("7", "POST", "/api", kNow, kNonce, body, kNow + 60), Problem::ok);
  EXPECT_EQ(check("7", "POST", "/api", kNow, kNonce, body, kNow + 61), Problem::stale);
  EXPECT_EQ(check("7", "POST", "/api", kNow, kNonce, body, kNow - 61), Problem::stale);
}

TEST(ClientApi, ParsesOnlyWellFormedHeaders) {
  Auth a;
  const std::string sig(43, 'A');
  EXPECT_EQ(parse_auth(nullptr, "1", kNonce, sig.c_str(), &a), Problem::missing_auth);
  EXPECT_EQ(parse_auth("7", "1", nullptr, sig.c_str(), &a), Problem::missing_auth);
  EXPECT_EQ(parse_auth("0", "1", kNonce, sig.c_str(), &a), Problem::bad_auth);
  EXPECT_EQ(parse_auth("65536", "1", kNonce, sig.c_str(), &a), Problem::bad_auth);
  EXPECT_EQ(parse_auth("07", "1", kNonce, sig.c_str(), &a), Problem::bad_auth);
  EXPECT_EQ(parse_auth("7", "-1", kNonce, sig.c_str(), &a), Problem::bad_auth);
  EXPECT_EQ(parse_auth("7", "1", "short", sig.c_str(), &a), Problem::bad_auth);
  EXPECT_EQ(parse_auth("7", "1", std::string(65, 'a').c_str(), sig.c_str(), &a), Problem::bad_auth);
  EXPECT_EQ(parse_auth("7", "1", "AAECAwQFBgcICQoLDA0OD=", sig.c_str(), &a), Problem::bad_auth);
  EXPECT_EQ(parse_auth("7", "1", kNonce, std::string(42, 'A').c_str(), &a), Problem::bad_auth);
  EXPECT_EQ(parse_auth("7", "1", kNonce, (std::string(42, 'A') + "B").c_str(), &a),
            Problem::bad_auth);  // trailing bits
  EXPECT_EQ(parse_auth("7", "1", kNonce, sig.c_str(), &a), Problem::ok);
}

TEST(ClientApi, RevokeBodies) {
  const KeyRing ring = test_ring();
  RevokeRequest r;
  std::string why;
  ASSERT_EQ(parse_revoke("key=7&session=0123456789abcdef&expires=1800000600&comment=refund+%23812", ring, "site42",
                         kNow, &r, &why),
            Problem::ok)
      << why;
  EXPECT_EQ(r.key_id, 7);
  EXPECT_EQ(session_hex(r.session), "0123456789abcdef");
  EXPECT_EQ(r.expires, 1800000600u);
  EXPECT_EQ(r.comment, "refund #812");
  // A token, or a URL holding one: its key, session and expiry.
  const std::string token = "AQIAB2tJ0gABI0VniavN7wIGc2l0ZTQy-kOqCujRSp1JYNRyr6vu2A";  // the typical vector
  RevokeRequest t;
  ASSERT_EQ(parse_revoke("token=" + token, ring, "site42", kNow, &t, &why), Problem::ok) << why;
  EXPECT_EQ(t.key_id, 7);
  EXPECT_EQ(session_hex(t.session), "0123456789abcdef");
  EXPECT_EQ(t.expires, 1800000000u);
  RevokeRequest u;
  ASSERT_EQ(parse_revoke("token=https%3A%2F%2Fm.example%2F_uk_" + token + "%2Fa.jpg", ring, "site42", kNow, &u, &why),
            Problem::ok)
      << why;
  EXPECT_EQ(u.session, t.session);
  // Only one's own tokens, and nothing of whether another client's key exists.
  EXPECT_EQ(parse_revoke("key=9&session=0123456789abcdef&expires=1800000600", ring, "site42", kNow, &r, &why),
            Problem::not_your_token);
  EXPECT_EQ(parse_revoke("key=6&session=0123456789abcdef&expires=1800000600", ring, "site42", kNow, &r, &why),
            Problem::not_your_token);
  EXPECT_EQ(parse_revoke("token=" + token, ring, "other", kNow, &r, &why), Problem::not_your_token);
  EXPECT_EQ(parse_revoke("token=" + token, ring, "site42", 1800000001, &r, &why), Problem::expired_token);
  for (const std::string& bad : std::vector<std::string>{
           "", "key=7", "key=7&session=0123456789ABCDEF&expires=1800000600", "key=7&session=0123&expires=1",
           "key=7&session=0123456789abcdef&expires=1800000600&key=7", "key=7&session=0123456789abcdef&expires=x",
           "key=7&session=0123456789abcdef&expires=1800000600&admin=1", "token=%zz", "token=" + token + "&key=7",
           "token=notatoken", "key=7&session=0123456789abcdef&expires=1800000600&comment=" + std::string(121, 'c'),
           "key=7&session=0123456789abcdef&expires=1800000600&comment=%4"}) {
    EXPECT_EQ(parse_revoke(bad, ring, "site42", kNow, &r, &why), Problem::bad_request) << bad;
  }
  EXPECT_EQ(parse_revoke(std::string(kMaxBodyBytes + 1, 'a'), ring, "site42", kNow, &r, &why), Problem::too_large);
}

TEST(ClientApi, ASubscriberIsRevokedUnderTheRequestingClientsNameOnly) {
  const KeyRing ring = test_ring();
  RevokeRequest mine, theirs;
  std::string why;
  ASSERT_EQ(parse_revoke("subscriber=0827e266b84dd64a&comment=logout", ring, "site42", kNow, &mine, &why), Problem::ok)
      << why;
  ASSERT_TRUE(mine.subscriber);
  EXPECT_EQ(mine.key_id, kSubscriberKeyId);
  EXPECT_EQ(mine.comment, "logout");
  SubscriberId id;
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = (*mine.subscriber)[i];
  EXPECT_EQ(session_number(mine.session), subscriber_ref("site42", id));
  // The same field from another client is another entry: it can never reach site42's subscriber.
  ASSERT_EQ(parse_revoke("subscriber=0827e266b84dd64a", ring, "other", kNow, &theirs, &why), Problem::ok);
  EXPECT_NE(theirs.session, mine.session);
  for (const char* bad : {"subscriber=0827e266b84dd64", "subscriber=0827E266B84DD64A", "subscriber=x",
                          "subscriber=0827e266b84dd64a&key=7", "subscriber=0827e266b84dd64a&token=abc"}) {
    EXPECT_EQ(parse_revoke(bad, ring, "site42", kNow, &theirs, &why), Problem::bad_request) << bad;
  }
}

// "Every token of this subscriber issued before T": T is a unix time not
// after now, and goes with subscriber= only.
TEST(ClientApi, IssuedBeforeNarrowsASubscribersRevocationToEarlierTokens) {
  const KeyRing ring = test_ring();
  RevokeRequest r;
  std::string why;
  const std::string before = std::to_string(kNow - 7 * 86400);
  ASSERT_EQ(parse_revoke("subscriber=0827e266b84dd64a&issued_before=" + before, ring, "site42", kNow, &r, &why),
            Problem::ok)
      << why;
  EXPECT_EQ(r.issued_before, static_cast<std::uint32_t>(kNow - 7 * 86400));
  RevokeRequest now_;
  ASSERT_EQ(parse_revoke("subscriber=0827e266b84dd64a&issued_before=" + std::to_string(kNow), ring, "site42", kNow,
                         &now_, &why),
            Problem::ok);
  RevokeRequest plain;
  ASSERT_EQ(parse_revoke("subscriber=0827e266b84dd64a", ring, "site42", kNow, &plain, &why), Problem::ok);
  EXPECT_EQ(plain.issued_before, 0u) << "until now";
  for (const std::string& bad :
       {"subscriber=0827e266b84dd64a&issued_before=" + std::to_string(kNow + 1),  // the future
        std::string("subscriber=0827e266b84dd64a&issued_before=0"),
        std::string("subscriber=0827e266b84dd64a&issued_before=x"),
        std::string("subscriber=0827e266b84dd64a&issued_before=-5"),
        "key=7&session=0123456789abcdef&expires=" + std::to_string(kNow + 60) + "&issued_before=" + before}) {
    RevokeRequest out;
    EXPECT_EQ(parse_revoke(bad, ring, "site42", kNow, &out, &why), Problem::bad_request) << bad;
  }
}

TEST(ClientApi, FeedQueriesAndCursors) {
  FeedQuery q;
  std::string why;
  ASSERT_EQ(parse_feed_query("", &q, &why), Problem::ok);
  EXPECT_EQ(q.limit, kFeedDefaultLimit);
  EXPECT_EQ(q.after.stamp_ms, 0u);
  ASSERT_EQ(parse_feed_query("after=1800000000123-7-0123456789abcdef&limit=50", &q, &why), Problem::ok) << why;
  EXPECT_EQ(q.limit, 50u);
  EXPECT_EQ(format_cursor(q.after), "1800000000123-7-0123456789abcdef");
  for (const char* bad : {"limit=0", "limit=1001", "limit=-1", "after=1-2", "after=1-2-3", "after=x-7-0123456789abcdef",
                          "after=1-70000-0123456789abcdef", "since=1", "limit=5&limit=6"}) {
    FeedQuery b;
    EXPECT_EQ(parse_feed_query(bad, &b, &why), Problem::bad_request) << bad;
  }
  // The order is (stamp, key, session): equal stamps never hide an entry.
  const Cursor a{5, 7, 1}, b{5, 7, 2}, c{5, 8, 0}, d{6, 1, 0};
  EXPECT_TRUE(a < b && b < c && c < d);
  EXPECT_FALSE(b < a);
}

}  // namespace
}  // namespace uritoken::client_api
