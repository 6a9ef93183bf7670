// SPDX-License-Identifier: Apache-2.0
// HMAC-SHA256 with a pre-keyed state, for the request path.
//
// HMAC (RFC 2104) is H(K^opad || H(K^ipad || m)). The two key blocks never
// change for a key, so we hash them once at key load and keep the two
// 32-byte-state SHA-256 contexts. A MAC then costs two SHA-256 compressions
// for a short token (OpenSSL's SHA-256, which uses the CPU's SHA extensions),
// with no allocation and no shared mutable state: contexts are copied on the
// stack, so any number of httpd threads may use one key at once. OpenSSL's
// EVP_MAC needs a context per thread and libsodium's SHA-256 is portable C;
// both were slower here (see docs/design.md, "Token").
#pragma once

#include <openssl/sha.h>

#include <cstddef>
#include <cstdint>

namespace uritoken {

class HmacSha256Key {
 public:
  static constexpr std::size_t kKeyBytes = 32;
  static constexpr std::size_t kMacBytes = 32;

  HmacSha256Key() = default;
  explicit HmacSha256Key(const std::uint8_t key[kKeyBytes]);

  // An in-progress MAC computation; feed it with update() and finish().
  class Stream {
   public:
    void update(const void* data, std::size_t len);
    void finish(std::uint8_t mac[kMacBytes]);

   private:
    friend class HmacSha256Key;
    SHA256_CTX inner_;
    SHA256_CTX outer_;  // a copy, so a Stream never dangles if its key goes away
  };

  Stream start() const;

 private:
  SHA256_CTX inner_{};  // state after absorbing K ^ ipad
  SHA256_CTX outer_{};  // state after absorbing K ^ opad
};

// SHA-256 of `len` bytes, with OpenSSL's implementation (the CPU's SHA
// extensions: a few hundred instructions for a short input, where
// libsodium's portable code takes thousands).
void sha256(const void* data, std::size_t len, std::uint8_t out[32]);

// Constant-time comparison of two buffers of length `len`.
bool equal_constant_time(const void* a, const void* b, std::size_t len);

}  // namespace uritoken
