// SPDX-License-Identifier: Apache-2.0
// Pre-keyed HMAC-SHA256; see hmac.h for why.
#include "hmac.h"

#include <openssl/crypto.h>

#include <cstring>

// The SHA256_* functions are deprecated in OpenSSL 3 in favour of EVP, but
// EVP allocates a context per digest; the plain functions are what lets us
// copy a pre-keyed state on the stack. They are still part of the ABI.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace uritoken {

HmacSha256Key::HmacSha256Key(const std::uint8_t key[kKeyBytes]) {
  std::uint8_t block[SHA256_CBLOCK];
  std::memset(block, 0x36, sizeof block);
  for (std::size_t i = 0; i < kKeyBytes; ++i) block[i] ^= key[i];
  SHA256_Init(&inner_);
  SHA256_Update(&inner_, block, sizeof block);
  std::memset(block, 0x5c, sizeof block);
  for (std::size_t i = 0; i < kKeyBytes; ++i) block[i] ^= key[i];
  SHA256_Init(&outer_);
  SHA256_Update(&outer_, block, sizeof block);
  OPENSSL_cleanse(block, sizeof block);
}

HmacSha256Key::Stream HmacSha256Key::start() const {
  Stream s;
  s.inner_ = inner_;
  s.outer_ = outer_;
  return s;
}

void sha256(const void* data, std::size_t len, std::uint8_t out[32]) {
  SHA256_CTX ctx;
  SHA256_Init(&ctx);
  SHA256_Update(&ctx, data, len);
  SHA256_Final(out, &ctx);
}

void HmacSha256Key::Stream::update(const void* data, std::size_t len) { SHA256_Update(&inner_, data, len); }

void HmacSha256Key::Stream::finish(std::uint8_t mac[kMacBytes]) {
  std::uint8_t inner_digest[SHA256_DIGEST_LENGTH];
  SHA256_Final(inner_digest, &inner_);
  SHA256_Update(&outer_, inner_digest, sizeof inner_digest);
  SHA256_Final(mac, &outer_);
}

bool equal_constant_time(const void* a, const void* b, std::size_t len) { return CRYPTO_memcmp(a, b, len) == 0; }

}  // namespace uritoken
