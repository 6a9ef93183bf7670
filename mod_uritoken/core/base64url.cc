// SPDX-License-Identifier: Apache-2.0
// Strict base64url codec; see base64url.h for why it is hand-written.
#include "base64url.h"

#include <array>

namespace uritoken {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr std::uint8_t kInvalid = 0xff;

constexpr std::array<std::uint8_t, 256> make_decode_table() {
  std::array<std::uint8_t, 256> table{};
  for (auto& v : table) v = kInvalid;
  for (std::uint8_t i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = i;
  return table;
}
constexpr std::array<std::uint8_t, 256> kDecode = make_decode_table();

}  // namespace

std::string base64url_encode(const std::uint8_t* data, std::size_t len) {
  std::string out;
  out.reserve(base64url_encoded_len(len));
  std::size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    const std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (len - i == 1) {
    const std::uint32_t v = data[i] << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (len - i == 2) {
    const std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

bool base64url_alphabet_ok(std::string_view s) {
  // OR of the table values (valid ones are 0..63, invalid 0xff), as in the
  // decoder: no branch per character.
  unsigned acc = 0;
  for (unsigned char c : s) acc |= kDecode[c];
  return acc < 64;
}

long base64url_decode(std::uint8_t* out, std::size_t out_cap, std::string_view in) {
  const std::size_t n = in.size();
  if (n % 4 == 1) return -1;
  const std::size_t need = base64url_decoded_len(n);
  if (need > out_cap) return -1;
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  std::size_t o = 0;
  std::size_t i = 0;
  // OR of all table values: any kInvalid (0xff) sets bit 7 and 6.
  std::uint8_t bad = 0;
  for (; i + 4 <= n; i += 4) {
    const std::uint8_t a = kDecode[s[i]], b = kDecode[s[i + 1]], c = kDecode[s[i + 2]], d = kDecode[s[i + 3]];
    bad |= a | b | c | d;
    const std::uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = static_cast<std::uint8_t>(v >> 16);
    out[o++] = static_cast<std::uint8_t>(v >> 8);
    out[o++] = static_cast<std::uint8_t>(v);
  }
  const std::size_t rest = n - i;
  if (rest == 2) {
    const std::uint8_t a = kDecode[s[i]], b = kDecode[s[i + 1]];
    bad |= a | b;
    if (b & 0x0f) return -1;  // non-canonical trailing bits
    out[o++] = static_cast<std::uint8_t>((a << 2) | (b >> 4));
  } else if (rest == 3) {
    const std::uint8_t a = kDecode[s[i]], b = kDecode[s[i + 1]], c = kDecode[s[i + 2]];
    bad |= a | b | c;
    if (c & 0x03) return -1;  // non-canonical trailing bits
    const std::uint32_t v = (a << 10) | (b << 4) | (c >> 2);
    out[o++] = static_cast<std::uint8_t>(v >> 8);
    out[o++] = static_cast<std::uint8_t>(v);
  }
  if (bad & 0xc0) return -1;
  return static_cast<long>(o);
}

}  // namespace uritoken
