// SPDX-License-Identifier: Apache-2.0
// The request path around a token: finding the `/_uk_TOKEN` prefix, checking
// the rest of the path before anything maps it to a file, and deriving the
// path scope that a token's MAC covers.
//
// Scope is not carried in the token: the token holds only a one-byte scope
// descriptor (how many leading path segments, and whether the scope is one
// exact file), and the verifier takes that many segments from the request
// path and feeds them to the MAC. A token minted for /gallery/12/ therefore
// fails its MAC on /gallery/13/x.jpg, and the scope costs one byte.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace uritoken {

inline constexpr std::string_view kTokenPrefix = "_uk_";

struct TokenSplit {
  bool has_token = false;
  std::string_view token;      // the characters after "/_uk_" up to the next '/'
  std::string_view remainder;  // the raw path after the token segment ("" if none)
};

// Splits a raw (still percent-encoded) request path `/_uk_TOKEN/rest`.
TokenSplit split_token_prefix(std::string_view raw_path);

// The token of a tokenized URL ("https://host/_uk_TOKEN/a.jpg") or path
// ("/_uk_TOKEN/a.jpg?x"), as the server reads it: the characters after
// "_uk_" in the first path segment; nothing if that segment is no token.
// The one parser of a pasted URL (the CLI's --url, the status page's search).
std::optional<std::string_view> token_of_url(std::string_view url);

// Length of "_uk_" at the start of `s`, in any letter case, written plainly
// or percent-encoded in any mix ("%5Fuk%5F", "_UK_"), or 0 if `s` does not
// start a token segment. Only the exact "/_uk_" first segment carries a
// token; every other spelling is refused as misplaced and redacted in logs.
std::size_t token_prefix_length(std::string_view s);

// True if any segment of a raw path starts with a (possibly encoded) "_uk_".
bool has_token_segment(std::string_view raw_path);

enum class PathProblem {
  none,
  bad_escape,       // % not followed by two hex digits
  nul_byte,         // %00 or a raw NUL
  encoded_slash,    // %2F or %5C: would let a segment hide a separator
  dot_segment,      // "." or ".." (also %2e%2e) as a segment
  misplaced_token,  // a "_uk_" segment that is not the first segment
};

const char* path_problem_name(PathProblem p);

// Percent-decodes the raw remainder of a request path, merges repeated
// slashes, and refuses anything that could step outside the requested tree.
// On success `decoded` holds the path (always starting with '/').
PathProblem decode_request_path(std::string_view raw, std::string* decoded);

// The same into a caller's buffer of at least raw.size() + 1 bytes (the
// request path uses pool memory); `decoded_len` receives the length.
PathProblem decode_request_path(std::string_view raw, char* decoded, std::size_t* decoded_len);

// A scope descriptor: bits 0-6 segment count (1..127), bit 7 exact file.
constexpr std::uint8_t kScopeExact = 0x80;
constexpr unsigned kScopeMaxSegments = 127;

// For minting: checks a scope path ("/gallery/12/" is a directory prefix,
// "/gallery/12/a.jpg" one exact file), returns its descriptor and writes
// the canonical form (merged slashes) to `canonical`.
std::optional<std::uint8_t> scope_descriptor(std::string_view scope, std::string* canonical);

// For verifying: the scope string implied by `descriptor` for a decoded
// request path, or nothing if the path has too few segments to be in any
// scope of that shape. A directory scope "/a/b/" also covers "/a/b" (which
// only ever redirects to "/a/b/").
std::optional<std::string_view> scope_of_path(std::string_view decoded_path, std::uint8_t descriptor,
                                              std::string* scratch);

}  // namespace uritoken
