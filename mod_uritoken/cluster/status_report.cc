// SPDX-License-Identifier: Apache-2.0
// The status report's verdicts; see status_report.h.
#include "status_report.h"

#include <cstdio>
#include <ctime>

#include "../core/token.h"
#include "json.h"

namespace uritoken::report {

std::optional<std::string> client_of(const KeyRing* keys, std::optional<std::uint64_t> key_id) {
  if (keys == nullptr || !key_id || *key_id > 0xffff) return std::nullopt;
  const Key* k = keys->find(static_cast<std::uint16_t>(*key_id));
  return k != nullptr ? std::optional(k->client) : std::nullopt;
}

Verdict parse_verdict(const control::Record& r, const KeyRing* keys) {
  Verdict e;
  e.blocked = r.kind == "blocked";
  e.key_id = r.get_u64("key");
  e.client = client_of(keys, e.key_id);
  // A subscriber verdict (key id 0, core/token.h) names its client as its user.
  if (e.key_id == std::optional<std::uint64_t>(kSubscriberKeyId)) e.client = r.get("user");
  e.session = r.get("session");
  e.since_ms = r.get_u64("since_ms");
  e.expires = r.get_u64("expires");
  e.reason = r.get("reason");
  e.decided_by = r.get("origin");
  e.network_count = r.get_u64("networks");
  e.first_seen = r.get_u64("first");
  e.last_seen = r.get_u64("last");
  e.operator_address = r.get("operator");
  e.user = r.get("user");
  e.comment = r.get("comment");
  e.places = control::parse_places(r.get("places").value_or(""));
  e.score = r.get("score");
  e.limit = r.get("limit");
  e.bulk_requests = r.get_u64("bulk_requests");
  e.bulk_bytes = r.get_u64("bulk_bytes");
  if (const auto nets = r.get("nets"); nets && !nets->empty()) {
    for (std::size_t at = 0;;) {
      const std::size_t comma = nets->find(',', at);
      e.networks.push_back(nets->substr(at, comma == std::string::npos ? std::string::npos : comma - at));
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
  }
  return e;
}

void append_json(std::string& out, const std::optional<std::string>& v) {
  if (v) {
    json_string(out, *v);
  } else {
    out += "null";
  }
}

void append_json(std::string& out, const std::optional<std::uint64_t>& v) { out += v ? std::to_string(*v) : "null"; }

std::string iso_time(std::uint64_t unix_seconds) {
  char buf[32];
  const auto tt = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (gmtime_r(&tt, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) return "?";
  return buf;
}

namespace {

void append_place(std::string& out, const control::PlaceEvidence& p) {
  const auto when = [](std::uint64_t t) { return t == 0 ? std::optional<std::uint64_t>() : std::optional(t); };
  char weight[16];
  std::snprintf(weight, sizeof weight, "%.1f", p.weight);
  out += "{\"place\":";
  json_string(out, p.name);
  out += ",\"country\":";
  append_json(out, p.country.empty() ? std::nullopt : std::optional(p.country));
  out += ",\"networks\":" + std::to_string(p.networks) + ",\"concurrent\":" + (p.concurrent ? "true" : "false") +
         ",\"weight\":" + weight + ",\"first_used\":";
  append_json(out, when(p.first_s));
  out += ",\"last_used\":";
  append_json(out, when(p.last_s));
  out += "}";
}

// The evidence of a blocked token: what the owner saw, and why it decided.
void append_evidence(std::string& out, const Verdict& v) {
  out += ",\"expires\":";
  append_json(out, v.expires);
  out += ",\"reason\":";
  append_json(out, v.reason);
  out += ",\"networks\":[";
  for (std::size_t i = 0; i < v.networks.size(); ++i) {
    if (i > 0) out += ",";
    json_string(out, v.networks[i]);
  }
  out += "],\"network_count\":";
  append_json(out, v.network_count);
  out += ",\"first_seen\":";
  append_json(out, v.first_seen);
  out += ",\"last_seen\":";
  append_json(out, v.last_seen);
  out += ",\"places\":[";
  for (std::size_t i = 0; i < v.places.size(); ++i) {
    if (i > 0) out += ",";
    append_place(out, v.places[i]);
  }
  out += "],\"score\":";
  json_decimal(out, v.score.value_or(""));
  out += ",\"limit\":";
  json_decimal(out, v.limit.value_or(""));
  out += ",\"bulk\":";
  if (v.reason && *v.reason == "bulk") {
    out += "{\"requests_per_min\":";
    append_json(out, v.bulk_requests);
    out += ",\"bytes_per_min\":";
    append_json(out, v.bulk_bytes);
    out += "}";
  } else {
    out += "null";
  }
}

}  // namespace

void append_json(std::string& out, const Verdict& v) {
  out += "{\"key_id\":";
  append_json(out, v.key_id);
  out += ",\"session\":";
  append_json(out, v.session);
  // What the session names: a token, or a subscriber (key id 0: its ref).
  out +=
      v.key_id == std::optional<std::uint64_t>(kSubscriberKeyId) ? ",\"kind\":\"subscriber\"" : ",\"kind\":\"token\"";
  out += v.blocked ? ",\"state\":\"blocked\"" : ",\"state\":\"pardoned\"";
  out += ",\"client\":";
  append_json(out, v.client);
  out += ",\"since\":";
  append_json(out, v.since_ms ? std::optional(iso_time(*v.since_ms / 1000)) : std::nullopt);
  out += ",\"since_ms\":";
  append_json(out, v.since_ms);
  if (v.blocked) append_evidence(out, v);
  out += ",\"decided_by\":";
  append_json(out, v.decided_by);
  out += ",\"operator\":";
  append_json(out, v.operator_address);
  out += ",\"user\":";
  append_json(out, v.user);
  out += ",\"comment\":";
  append_json(out, v.comment);
  out += "}";
}

void append_json(std::string& out, const std::vector<Verdict>& list) {
  out += "[";
  for (std::size_t i = 0; i < list.size(); ++i) {
    out += i > 0 ? ",\n  " : "\n  ";
    append_json(out, list[i]);
  }
  out += list.empty() ? "]" : "\n ]";
}

}  // namespace uritoken::report
