// SPDX-License-Identifier: Apache-2.0
// What of a request may be written to a log or a status page: every
// token-looking run replaced by "_uk_[redacted]".
//
// A token-looking run is the marker "_uk_" in any letter case and with any
// of its characters percent-encoded ("_UK_", "%5Fuk_", "%5f%75%6B%5F"),
// wherever it stands (path, query, Referer), followed by everything a
// token or its percent-encoding can consist of (A-Z a-z 0-9 - _ and %XX).
// It is matched anywhere, not only after '/', so that "?next=%2F_uk_..."
// is caught too; a file merely named "news_uk_2024.jpg" is logged as
// "news_uk_[redacted].jpg", which is the price of never missing one.
//
// One algorithm for every place httpd keeps request text (request line,
// URI, Referer), used before anything is logged and again, for requests
// httpd refused before the module saw them, when the transaction is logged.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace uritoken {

inline constexpr std::string_view kRedactedToken = "_uk_[redacted]";

// Offset of the first token-looking run in `s`, or npos.
std::size_t find_token_marker(std::string_view s);

// Output bytes redact_tokens needs for `n` input bytes, NUL included: each
// run is at least 4 bytes ("_uk_") and becomes 14.
constexpr std::size_t redacted_capacity(std::size_t n) { return n + (n / 4) * 10 + 1; }

// Writes `s` with every token-looking run replaced by kRedactedToken and a
// terminating NUL into `out` (redacted_capacity(s.size()) bytes); returns
// the length written, NUL excluded.
std::size_t redact_tokens(std::string_view s, char* out);

// The same when the caller has found the first marker already.
std::size_t redact_tokens(std::string_view s, char* out, std::size_t first_marker);

std::string redact_tokens(std::string_view s);

}  // namespace uritoken
