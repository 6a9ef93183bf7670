// SPDX-License-Identifier: Apache-2.0
// DropReport: the summary of dropped datagrams that the sidecar logs.
#include <algorithm>
#include <numeric>

#include "gossip.h"

namespace uritoken::gossip {

const char* drop_kind_text(DropKind k) {
  switch (k) {
    case DropKind::kOversized: return "oversized";
    case DropKind::kMalformed: return "malformed";
    case DropKind::kLabel: return "wrong cluster name";
    case DropKind::kAuth: return "failed authentication";
    case DropKind::kStale: return "stale";
    case DropKind::kBeforeStart: return "sent before this node started";
    case DropKind::kReplay: return "replayed";
    case DropKind::kVersion: return "another wire version";
  }
  return "dropped";
}

std::uint64_t DropReport::total(DropKind k) const {
  const auto i = static_cast<std::size_t>(k);
  std::uint64_t n = others[i];
  for (const Sender& s : senders) n += s.count[i];
  return n;
}

std::uint64_t DropReport::total() const {
  std::uint64_t n = 0;
  for (std::size_t k = 0; k < kDropKinds; ++k) n += total(static_cast<DropKind>(k));
  return n;
}

std::string DropReport::describe(const std::array<const char*, kDropKinds>& hints) const {
  // A line must stay readable (and well under httpd's 8 KiB log line):
  // per kind, the biggest senders by name and the rest summed.
  constexpr std::size_t kListed = 4;
  const std::uint64_t n = total();
  const std::uint64_t seconds = until_ms > since_ms ? (until_ms - since_ms + 500) / 1000 : 0;
  std::string out = "dropped " + std::to_string(n) + (n == 1 ? " packet" : " packets") + " in the last " +
                    std::to_string(std::max<std::uint64_t>(seconds, 1)) + " s";
  if (n == 0) return out;
  out += ": ";
  std::array<std::uint64_t, kDropKinds> by_kind{};
  std::array<std::size_t, kDropKinds> kinds{};
  for (std::size_t k = 0; k < kDropKinds; ++k) by_kind[k] = total(static_cast<DropKind>(k));
  std::iota(kinds.begin(), kinds.end(), 0);
  std::stable_sort(kinds.begin(), kinds.end(), [&](std::size_t a, std::size_t b) { return by_kind[a] > by_kind[b]; });
  bool first = true;
  for (std::size_t k : kinds) {
    if (by_kind[k] == 0) continue;
    if (!first) out += "; ";
    first = false;
    out += std::to_string(by_kind[k]) + " " + drop_kind_text(static_cast<DropKind>(k));
    if (hints[k] != nullptr) out += std::string(" (") + hints[k] + ")";
    std::vector<const Sender*> from;
    for (const Sender& s : senders)
      if (s.count[k] != 0) from.push_back(&s);
    std::stable_sort(from.begin(), from.end(),
                     [k](const Sender* a, const Sender* b) { return a->count[k] > b->count[k]; });
    std::uint64_t rest = others[k];
    for (std::size_t i = kListed; i < from.size(); ++i) rest += from[i]->count[k];
    const std::size_t listed = std::min(from.size(), kListed);
    const bool several = listed + (rest != 0) > 1;  // then each sender's count too
    out += " from ";
    for (std::size_t i = 0; i < listed; ++i) {
      if (i != 0) out += ", ";
      out += from[i]->from.to_string();
      if (several) out += " (" + std::to_string(from[i]->count[k]) + ")";
    }
    if (rest != 0) {
      if (listed != 0) out += ", ";
      out += "other addresses";
      if (several) out += " (" + std::to_string(rest) + ")";
    }
  }
  return out;
}

}  // namespace uritoken::gossip
