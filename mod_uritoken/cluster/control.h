// SPDX-License-Identifier: Apache-2.0
// The control protocol between the sidecar and its clients (the status
// page handler in httpd workers, the `uritoken` CLI): one request line, a
// response of records, over the sidecar's Unix socket
// UriTokenStateDir/control.sock (mode 0660, owned by the httpd user, so
// only root and that user can connect). docs/control-protocol.md.
//
// A record is a line: a kind, then TAB-separated name=value fields, values
// percent-encoded (only '%', TAB, LF, CR, '=', and bytes < 0x20 or 0x7f).
// Plain text on purpose: no JSON library on either side; the handler and
// the CLI render JSON, HTML and Prometheus text from the records.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace uritoken::control {

inline constexpr const char* kSocketName = "control.sock";
inline constexpr int kProtocolVersion = 1;

struct Record {
  std::string kind;
  std::vector<std::pair<std::string, std::string>> fields;  // in order

  Record& add(std::string name, std::string value);
  Record& add(std::string name, std::uint64_t value);
  // The value of `name`, or nullopt.
  std::optional<std::string> get(std::string_view name) const;
  std::optional<std::uint64_t> get_u64(std::string_view name, int base = 10) const;
};

// One record as a line, '\n' included.
std::string encode(const Record& r);
// Parses one line (without its '\n'); nullopt if malformed.
std::optional<Record> decode(std::string_view line);

// A whole response: records, one per line, ended by an "end" record; the
// first record is "ok" or "error" (with message=...).
std::string encode_all(const std::vector<Record>& records);
std::optional<std::vector<Record>> decode_all(std::string_view text);

// The `places` field of a `blocked` record (docs/control-protocol.md): the
// places the deciding owner counted, as "NAME|NETWORKS|c or s|WEIGHTx10"
// joined by ';'. One parser for the status page and the CLI; a malformed
// entry is skipped, never guessed.
struct PlaceEvidence {
  std::string name;       // "AS7922 Comcast", "net 452923ca", "198.51.0.0/16"
  unsigned networks = 0;  // networks of the token seen in this place
  bool concurrent = false;
  double weight = 0;                      // what the place added to the score
  std::uint64_t first_s = 0, last_s = 0;  // its first and last use (unix s; 0 unknown)
  std::string country;                    // ISO 3166 code of its networks, "" unknown
};
std::vector<PlaceEvidence> parse_places(std::string_view field);

// A byte count for people, in binary units: "900 B", "41.0 KiB", "742.0 MiB", "1.5 GiB".
std::string format_bytes(std::uint64_t bytes);

std::string percent_encode(std::string_view s);
std::optional<std::string> percent_decode(std::string_view s);

}  // namespace uritoken::control
