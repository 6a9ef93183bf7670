// SPDX-License-Identifier: Apache-2.0
// Refusals that lead back to the client site; see return_url.h.
#include "return_url.h"

#include <strings.h>

#include <cstring>

#include "base64url.h"

namespace uritoken {
namespace {

bool equals_nocase(const char* a, std::string_view b) {
  return a != nullptr && std::strlen(a) == b.size() && strncasecmp(a, b.data(), b.size()) == 0;
}

// Accept names text/html (any case, any parameters): "text/html,...".
bool accepts_html(const char* accept) {
  if (accept == nullptr) return false;
  std::string_view a = accept;
  for (std::size_t at = 0; at < a.size();) {
    const std::size_t comma = std::min(a.find(',', at), a.size());
    std::string_view item = a.substr(at, comma - at);
    item = item.substr(0, item.find(';'));
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.size() == 9 && strncasecmp(item.data(), "text/html", 9) == 0) return true;
    at = comma + 1;
  }
  return false;
}

// RFC 3986 unreserved bytes stay, the rest is %XX.
void append_query_value(std::string& out, std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : v) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
}

}  // namespace

bool leads_back(Refusal r) {
  return r == Refusal::expired || r == Refusal::revoked || r == Refusal::bulk_use || r == Refusal::out_of_scope;
}

bool is_page_navigation(const NavigationHints& h) {
  if (h.method != "GET" || h.range) return false;
  if (h.sec_fetch_mode != nullptr) {
    return equals_nocase(h.sec_fetch_mode, "navigate") &&
           (h.sec_fetch_dest == nullptr || equals_nocase(h.sec_fetch_dest, "document") ||
            equals_nocase(h.sec_fetch_dest, "iframe") || equals_nocase(h.sec_fetch_dest, "frame"));
  }
  return accepts_html(h.accept);
}

std::string return_signature(const Key& key, std::string_view reason, std::string_view session, std::int64_t time,
                             std::string_view path) {
  const std::string input = "uritoken-return-v1\n" + std::string(reason) + "\n" + std::to_string(key.id) + "\n" +
                            std::string(session) + "\n" + std::to_string(time) + "\n" + std::string(path);
  auto mac = key.mac.start();
  mac.update(input.data(), input.size());
  std::uint8_t out[HmacSha256Key::kMacBytes];
  mac.finish(out);
  return base64url_encode(out, sizeof out);
}

std::string return_location(std::string_view base, const Key& key, std::string_view reason, std::string_view session,
                            std::int64_t time, std::string_view path) {
  std::string out(base);
  out += base.find('?') == std::string_view::npos ? "?" : "&";
  out += "uritoken_reason=";
  append_query_value(out, reason);
  out += "&uritoken_key=" + std::to_string(key.id);
  if (!session.empty()) out += "&uritoken_session=" + std::string(session);
  out += "&uritoken_time=" + std::to_string(time) + "&uritoken_path=";
  append_query_value(out, path);
  out += "&uritoken_sig=" + return_signature(key, reason, session, time, path);
  return out;
}

bool return_url_ok(std::string_view url) {
  const bool http = url.substr(0, 7) == "http://" || url.substr(0, 8) == "https://";
  const std::size_t host = url.find("://") + 3;
  if (!http || url.size() <= host || url[host] == '/' || url.find('#') != std::string_view::npos) return false;
  for (unsigned char c : url) {
    if (c <= 0x20 || c >= 0x7f) return false;  // as a header value, one line of visible ASCII
  }
  return true;
}

}  // namespace uritoken
