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

}  // namespace uritoken
