// SPDX-License-Identifier: Apache-2.0
// Strict base64url (RFC 4648 section 5) without padding.
//
// Written here rather than taken from libsodium because the decoder sits on
// the request path and sodium_base642bin costs ~270 ns for 64 characters on
// our hardware, more than the whole verify budget. This decoder is a single
// table lookup per character and is strict: it rejects padding, characters
// outside the alphabet, impossible lengths (n % 4 == 1) and non-canonical
// trailing bits, so every byte string has exactly one accepted encoding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace uritoken {

// Number of characters needed to encode `n` bytes.
constexpr std::size_t base64url_encoded_len(std::size_t n) { return (n * 4 + 2) / 3; }

// Number of bytes that `n` characters decode to (0 if `n` is impossible).
constexpr std::size_t base64url_decoded_len(std::size_t n) {
  return (n % 4 == 1) ? 0 : (n / 4) * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

std::string base64url_encode(const std::uint8_t* data, std::size_t len);

// True if every character of `s` is in the base64url alphabet.
bool base64url_alphabet_ok(std::string_view s);

// Decodes `in` into `out` (capacity `out_cap`). Returns the number of bytes
// written, or -1 if the input is not canonical base64url or does not fit.
long base64url_decode(std::uint8_t* out, std::size_t out_cap, std::string_view in);

}  // namespace uritoken
