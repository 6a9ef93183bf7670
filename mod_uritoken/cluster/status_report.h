// SPDX-License-Identifier: Apache-2.0
// The blocked and pardoned tokens of a status report, as one model: parsed
// once from the sidecar's control records (docs/control-protocol.md) and
// written by one JSON writer, for the status page's `?json` and for
// `uritoken blocked --json` alike. One schema: a field the record lacks
// is null, never "" or 0, and the output is valid JSON whatever a peer or
// an operator wrote (json.h escapes every string).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../core/keyring.h"
#include "control.h"

namespace uritoken::report {

// One "blocked" or "pardoned" record.
struct Verdict {
  bool blocked = false;
  std::optional<std::uint64_t> key_id, since_ms, expires, network_count, first_seen, last_seen;
  std::optional<std::string> session, reason, decided_by, operator_address, user, comment;
  std::optional<std::string> client;  // from the reader's key ring, if the key is in it
  std::vector<std::string> networks;
  std::vector<control::PlaceEvidence> places;              // empty: manual, or from a node before protocol 3
  std::optional<std::string> score, limit;                 // decimals as the owner wrote them
  std::optional<std::uint64_t> bulk_requests, bulk_bytes;  // reason bulk: its rate a minute
};

// The client of key `key_id` in `keys` (the reader's key ring), if any.
std::optional<std::string> client_of(const KeyRing* keys, std::optional<std::uint64_t> key_id);

// The record's fields (kind "blocked" or "pardoned"), the client from `keys`.
Verdict parse_verdict(const control::Record& r, const KeyRing* keys = nullptr);

// Appends `v` as one JSON object: key_id, session, kind ("token", or
// "subscriber" for key id 0), state ("blocked" or "pardoned"), client,
// since (ISO 8601),
// since_ms, then for a blocked token expires, reason, networks,
// network_count, first_seen, last_seen, places, score, limit and bulk,
// then decided_by, operator, user, comment.
void append_json(std::string& out, const Verdict& v);

// Appends `list` as a JSON array of append_json objects, one a line.
void append_json(std::string& out, const std::vector<Verdict>& list);

// A JSON value: the string (escaped) or number, or null.
void append_json(std::string& out, const std::optional<std::string>& v);
void append_json(std::string& out, const std::optional<std::uint64_t>& v);

// Unix seconds as ISO 8601 in UTC ("2027-01-15T05:13:20Z"): the one time
// format of machine-readable output.
std::string iso_time(std::uint64_t unix_seconds);

}  // namespace uritoken::report
