// SPDX-License-Identifier: Apache-2.0
// JSON string literals for the few JSON documents the project writes (the
// status page's ?json, `uritoken blocked --json`): no JSON library needed.
#pragma once

#include <string>
#include <string_view>

namespace uritoken {

// Appends `s` as a JSON string literal: quotes, backslashes and control
// bytes escaped, bytes that are not UTF-8 replaced by U+FFFD, so the
// output is always valid JSON whatever a peer or an operator wrote.
void json_string(std::string& out, std::string_view s);

// Appends `s` as a JSON number if it is a plain decimal ("3", "4.00"),
// else null: a field gone missing or garbled never breaks the document.
void json_decimal(std::string& out, std::string_view s);

}  // namespace uritoken
