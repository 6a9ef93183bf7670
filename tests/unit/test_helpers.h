// SPDX-License-Identifier: Apache-2.0
// Shared helpers for the unit tests: reading the committed vectors file.
#pragma once

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace uritoken::testing {

struct VectorBlock {
  std::map<std::string, std::string> fields;
  std::vector<std::string> checks;
};

inline std::vector<VectorBlock> read_vectors(const std::string& file = "tokens.txt") {
  std::ifstream in(std::string(SOURCE_DIR) + "/tests/vectors/" + file);
  std::vector<VectorBlock> blocks;
  std::string line;
  VectorBlock cur;
  auto flush = [&]() {
    if (!cur.fields.empty()) blocks.push_back(cur);
    cur = VectorBlock();
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') continue;
    if (line.empty()) {
      flush();
      continue;
    }
    const auto colon = line.find(": ");
    if (colon == std::string::npos) continue;
    const std::string k = line.substr(0, colon), v = line.substr(colon + 2);
    if (k == "check") {
      cur.checks.push_back(v);
    } else {
      cur.fields[k] = v;
    }
  }
  flush();
  return blocks;
}

}  // namespace uritoken::testing
