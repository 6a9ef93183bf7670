// SPDX-License-Identifier: Apache-2.0
// The status page: `SetHandler uritoken-status` (as mod_status does it).
// It asks this node's sidecar over the control socket
// (docs/control-protocol.md) and renders the answer as HTML for people,
// JSON (`?json`) for scripts and Prometheus text (`?metrics`).
//
// Safety: GET and HEAD read it; POST (its revoke and pardon forms) must
// come from the page itself (same Origin, and an hourly CSRF token keyed
// per server start); it answers only when the Host header names this
// server (ServerName, ServerAlias), an IP literal or localhost, so a DNS
// rebinding page cannot read it (421 otherwise); never shows a token or a
// key; if the sidecar is down or slow it answers within 1 s and says so.
#include <httpd.h>
#include <apr_strings.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_status.h>

#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "../cluster/location.h"
#include "../cluster/control.h"
#include "../cluster/control_client.h"
#include "../cluster/json.h"
#include "../cluster/status_report.h"
#include "../cluster/shared_state.h"
#include "../core/ipnet.h"
#include "../core/request_path.h"
#include "../cluster/sharing.h"
#include "../core/token.h"
#include "cluster.h"
#include "config.h"
#include "status.h"

APLOG_USE_MODULE(uritoken);

namespace uritoken::httpd {
namespace {

using control::Record;

// The sidecar's "ok" answer to one request (control::call: 1 s at most),
// or nullopt with *why (the sidecar's own message if it refused).
std::optional<std::vector<Record>> ask_sidecar(const std::string& path, const Record& request, std::string* why) {
  control::CallResult result = control::call(path, request);
  if (result.ok()) return std::move(result.records);
  *why = result.message;
  return std::nullopt;
}

bool host_allowed(const request_rec* r) {
  const char* host = r->hostname;
  if (host == nullptr) return true;  // HTTP/1.0 without Host: no browser sends that
  if (strcasecmp(host, "localhost") == 0 || parse_ip_address(host)) return true;
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']' && parse_ip_address(h.substr(1, h.size() - 2))) return true;
  const server_rec* s = r->server;
  if (s->server_hostname != nullptr && strcasecmp(host, s->server_hostname) == 0) return true;
  for (const apr_array_header_t* names : {s->names, s->wild_names}) {
    if (names == nullptr) continue;
    const auto* list = reinterpret_cast<const char* const*>(names->elts);
    for (int i = 0; i < names->nelts; ++i) {
      if (ap_strcasecmp_match(host, list[i]) == 0) return true;
    }
  }
  return false;
}

std::string html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string json(const std::string& s) {
  std::string out;
  json_string(out, s);
  return out;
}

std::string iso_time(std::uint64_t unix_s) {
  if (unix_s == 0) return "";
  const std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string field(const Record& r, const char* name) { return r.get(name).value_or(""); }

std::string csrf_token(std::uint64_t hour);
std::uint64_t current_hour(const request_rec* r);

// A subscriber's verdict (key id 0, core/token_id.h), not a token's.
bool subscriber_record(const Record& rec) {
  return rec.get_u64("key") == std::optional<std::uint64_t>(kSubscriberKeyId);
}

// Client id of a record's key id, from this server's key ring ("-" if
// unknown); a subscriber verdict names its client as its user.
std::string client_of(const ServerConfig* conf, const Record& rec) {
  if (subscriber_record(rec)) return rec.get("user").value_or("-");
  return report::client_of(conf->keys, rec.get_u64("key")).value_or("-");
}

std::string query_value(const request_rec* r, const char* name) {
  if (r->args == nullptr) return "";
  const std::string args = r->args, key = std::string(name) + "=";
  for (std::size_t at = 0; at < args.size();) {
    const std::size_t end = std::min(args.find('&', at), args.size());
    if (args.compare(at, key.size(), key) == 0) {
      char* v = apr_pstrmemdup(r->pool, args.data() + at + key.size(), end - at - key.size());
      ap_unescape_urlencoded(v);  // a form's encoding: '+' is a space
      return v;
    }
    at = end + 1;
  }
  return "";
}

bool has_flag(const request_rec* r, const char* flag) {
  if (r->args == nullptr) return false;
  const std::string args = std::string("&") + r->args + "&";
  return args.find(std::string("&") + flag + "&") != std::string::npos ||
         args.find(std::string("&") + flag + "=") != std::string::npos;
}

struct View {
  std::vector<Record> node, location, members, blocked, pardoned, shared, proxies, counters;
  std::string sidecar_problem;  // non-empty: the sidecar did not answer
  bool sharing_off = false;     // no sidecar on this server at all
};

View load(request_rec* r, const ServerConfig* conf) {
  View v;
  const ClusterConfig* c = conf->cluster;
  if (c == nullptr || c->mode == SharingMode::off || c->state_dir.empty()) {
    v.sharing_off = true;
    return v;
  }
  Record request;
  request.kind = "status";
  std::string why;
  const auto records = ask_sidecar(c->state_dir + "/" + control::kSocketName, request, &why);
  if (!records || records->empty() || (*records)[0].kind != "ok") {
    v.sidecar_problem = records && !records->empty() ? field((*records)[0], "message") : why;
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "UT00039: status page: the sharing sidecar is unavailable: %s",
                  v.sidecar_problem.c_str());
    return v;
  }
  for (const Record& rec : *records) {
    if (rec.kind == "node") v.node.push_back(rec);
    if (rec.kind == "location") v.location.push_back(rec);
    if (rec.kind == "member") v.members.push_back(rec);
    if (rec.kind == "blocked") v.blocked.push_back(rec);
    if (rec.kind == "pardoned") v.pardoned.push_back(rec);
    if (rec.kind == "shared") v.shared.push_back(rec);
    if (rec.kind == "proxy") v.proxies.push_back(rec);
    if (rec.kind == "counter") v.counters.push_back(rec);
  }
  return v;
}

// The location database the sidecar uses: path ("" none) and build time.
struct LocationInfo {
  bool known = false;  // the sidecar said
  std::string path;
  std::uint64_t built = 0;
  bool stale(std::time_t now) const {
    // cppcheck-suppress ignoredReturnValue
    return !path.empty() &&
           built + std::uint64_t{cluster::kLocationStaleDays} * 86400 < static_cast<std::uint64_t>(now);
  }
};
LocationInfo location_of(const View& v) {
  LocationInfo l;
  if (v.location.empty()) return l;
  l.known = true;
  l.path = field(v.location[0], "path");
  l.built = v.location[0].get_u64("built").value_or(0);
  return l;
}

// The Places section: the location database in use and its age, with the
// fix once it is stale; empty when the sidecar did not say.
std::string places_section(const View& v) {
  const LocationInfo l = location_of(v);
  if (!l.known) return "";
  const std::time_t now = std::time(nullptr);
  std::string out = "<section id=\"places\"><h2>Places</h2>\n<p>";
  if (l.path.empty()) {
    out +=
        "<span class=\"bad\">No location database</span> (UriTokenLocationDatabase Off, or Debian's "
        "libloc-database not installed): places are IPv4 /16 and IPv6 /32 networks, which cannot group a "
        "carrier's address pool the way an autonomous system does.";
  } else {
    out += "From the location database <code>" + html(l.path) + "</code>, " +
           html(cluster::describe_age(static_cast<std::time_t>(l.built), now)) + ".";
    if (l.stale(now)) {
      out += " <span class=\"bad\">Older than " + std::to_string(cluster::kLocationStaleDays) +
             " days: networks move between autonomous systems every day; refresh it with <code>location "
             "update</code> (Debian's location package) and reload httpd.</span>";
    }
  }
  return out + "</p></section>\n";
}

void render_json(request_rec* r, const ServerConfig* conf, const View& v) {
  ap_set_content_type(r, "application/json");
  std::string out = "{\"sidecar\":" + std::string(v.sharing_off               ? "\"off\""
                                                  : v.sidecar_problem.empty() ? "\"up\""
                                                                              : "\"unavailable\"");
  if (!v.sidecar_problem.empty()) out += ",\"problem\":" + json(v.sidecar_problem);
  if (!v.node.empty()) {
    const Record& n = v.node[0];
    out += ",\"node\":{\"name\":" + json(field(n, "name")) + ",\"id\":" + json(field(n, "id")) +
           ",\"identity\":" + (field(n, "identity").empty() ? std::string("null") : json(field(n, "identity"))) +
           ",\"mode\":" + json(field(n, "mode")) + ",\"ready\":" + (field(n, "ready") == "1" ? "true" : "false") + "}";
  }
  if (const LocationInfo l = location_of(v); l.known) {
    out += ",\"location\":{\"database\":" + (l.path.empty() ? std::string("null") : json(l.path)) +
           ",\"built\":" + (l.path.empty() ? std::string("null") : std::to_string(l.built)) +
           ",\"stale\":" + (l.stale(std::time(nullptr)) ? "true" : "false") + "}";
  }
  out += ",\"members\":[";
  for (std::size_t i = 0; i < v.members.size(); ++i) {
    const Record& m = v.members[i];
    out += std::string(i ? "," : "") + "{\"name\":" + json(field(m, "name")) +
           ",\"address\":" + json(field(m, "address")) + ",\"state\":" + json(field(m, "state")) +
           ",\"last_contact_ms\":";
    json_decimal(out, field(m, "last_contact_ms"));  // null if never heard from
    out += ",\"protocol\":" + json(field(m, "protocol")) +
           ",\"identity\":" + (field(m, "identity").empty() ? std::string("null") : json(field(m, "identity"))) +
           ",\"same_policy\":" + (field(m, "same_policy") == "0" ? "false" : "true") + "}";
  }
  out += "]";
  // The verdicts in the schema `uritoken blocked --json` writes too.
  for (const auto& [name, list] : {std::pair{"blocked", &v.blocked}, std::pair{"pardoned", &v.pardoned}}) {
    std::vector<report::Verdict> verdicts;
    for (const Record& rec : *list) {
      verdicts.push_back(report::parse_verdict(rec, conf->keys));
    }
    out += std::string(",\"") + name + "\":";
    report::append_json(out, verdicts);
  }
  out += ",\"shared_networks\":[";
  for (std::size_t i = 0; i < v.shared.size(); ++i)
    out += std::string(i ? "," : "") + json(field(v.shared[i], "network"));
  out += "],\"detected_proxies\":[";
  for (std::size_t i = 0; i < v.proxies.size(); ++i)
    out += std::string(i ? "," : "") + json(field(v.proxies[i], "network"));
  out += "],\"clients\":[";
  if (const UsageTable* usage = usage_table()) {
    bool first = true;
    usage->for_each_client([&](const UsageTable::ClientUsage& u) {
      out += std::string(first ? "" : ",") + "{\"client\":" + json(u.client) +
             ",\"requests\":" + std::to_string(u.requests) + ",\"bytes\":" + std::to_string(u.bytes) + "}";
      first = false;
    });
  }
  out += "],\"keys\":[";
  if (conf->keys != nullptr) {
    bool first = true;
    for (const auto& k : conf->keys->keys()) {
      const UsageTable* usage = usage_table();
      out += std::string(first ? "" : ",") + "{\"key_id\":" + std::to_string(k->id) + ",\"client\":" + json(k->client) +
             ",\"last_used\":" + std::to_string(usage ? usage->key_last_used(k->id) : 0) + "}";
      first = false;
    }
  }
  out += "],\"counters\":{";
  for (std::size_t i = 0; i < v.counters.size(); ++i) {
    out += std::string(i ? "," : "") + json(field(v.counters[i], "name")) + ":";
    json_decimal(out, field(v.counters[i], "value"));
  }
  out += "}}\n";
  ap_rputs(out.c_str(), r);
}

std::string prometheus_label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// The refusals since the last restart, by reason and (UriTokenCountries) by country.
void append_refusal_metrics(std::string& out) {
  out +=
      "# HELP uritoken_refusals_total Requests refused, by reason, since the last restart.\n"
      "# TYPE uritoken_refusals_total counter\n";
  refusal_totals([&](const char* reason, std::uint64_t n) {
    out += std::string("uritoken_refusals_total{reason=\"") + reason + "\"} " + std::to_string(n) + "\n";
  });
  if (country_table() != nullptr) {
    out +=
        "# HELP uritoken_country_refusals_total Tokens refused by UriTokenCountries, by the viewer's country "
        "(\"--\": none known), since the last restart.\n# TYPE uritoken_country_refusals_total counter\n";
    country_refusal_totals([&](const char* country, std::uint64_t n) {
      out += std::string("uritoken_country_refusals_total{country=\"") + country + "\"} " + std::to_string(n) + "\n";
    });
  }
}

void render_metrics(request_rec* r, const ServerConfig* conf, const View& v) {
  ap_set_content_type(r, "text/plain; version=0.0.4");
  std::string out;
  if (!v.sharing_off) {
    out +=
        "# HELP uritoken_sidecar_up Whether this node's sharing sidecar answered the status request.\n"
        "# TYPE uritoken_sidecar_up gauge\nuritoken_sidecar_up " +
        std::string(v.sidecar_problem.empty() ? "1" : "0") + "\n";
  }
  if (!v.sharing_off && v.sidecar_problem.empty()) {
    std::size_t manual = 0, bulk = 0, client = 0, subscribers = 0;
    for (const Record& b : v.blocked) {
      manual += field(b, "reason") == "manual" ? 1 : 0;
      bulk += field(b, "reason") == "bulk" ? 1 : 0;
      client += field(b, "reason") == "client" ? 1 : 0;
      subscribers += subscriber_record(b) ? 1 : 0;
    }
    out +=
        "# HELP uritoken_blocked_tokens Tokens revoked in the cluster, as this node knows it.\n"
        "# TYPE uritoken_blocked_tokens gauge\nuritoken_blocked_tokens " +
        std::to_string(v.blocked.size() - subscribers) + "\n";
    out +=
        "# HELP uritoken_blocked_subscribers Subscribers whose tokens issued until a verdict are refused (account "
        "shared, or a logout everywhere by the client site).\n"
        "# TYPE uritoken_blocked_subscribers gauge\nuritoken_blocked_subscribers " +
        std::to_string(subscribers) + "\n";
    out +=
        "# HELP uritoken_verdicts Revocations in force by reason: shared (found shared by the places rule), "
        "bulk (found in bulk use), manual (by an operator) or client (by the client site, signed); and "
        "pardons.\n# TYPE uritoken_verdicts gauge\n"
        "uritoken_verdicts{reason=\"shared\"} " +
        std::to_string(v.blocked.size() - manual - bulk - client) + "\nuritoken_verdicts{reason=\"bulk\"} " +
        std::to_string(bulk) + "\nuritoken_verdicts{reason=\"manual\"} " + std::to_string(manual) +
        "\nuritoken_verdicts{reason=\"client\"} " + std::to_string(client) +
        "\nuritoken_verdicts{reason=\"pardoned\"} " + std::to_string(v.pardoned.size()) + "\n";
    if (const LocationInfo l = location_of(v); l.known && !l.path.empty()) {
      out +=
          "# HELP uritoken_location_database_built_seconds When the location database in use was built (unix s; "
          "refresh with 'location update').\n# TYPE uritoken_location_database_built_seconds gauge\n"
          "uritoken_location_database_built_seconds " +
          std::to_string(l.built) + "\n";
    }
    std::map<std::string, int> states = {{"alive", 0}, {"suspect", 0}, {"dead", 0}};
    for (const Record& m : v.members) ++states[field(m, "state")];
    out += "# HELP uritoken_members Other cluster members by state.\n# TYPE uritoken_members gauge\n";
    for (const auto& [state, n] : states)
      out += "uritoken_members{state=\"" + state + "\"} " + std::to_string(n) + "\n";
    for (const Record& c : v.counters) {
      const bool gauge = field(c, "type") == "gauge";
      const std::string name = "uritoken_" + field(c, "name") + (gauge ? "" : "_total");
      out += "# HELP " + name + " " + field(c, "name") + " (see docs/control-protocol.md).\n# TYPE " + name +
             (gauge ? " gauge\n" : " counter\n") + name + " " + field(c, "value") + "\n";
    }
  }
  append_refusal_metrics(out);
  if (const UsageTable* usage = usage_table()) {
    std::string requests =
        "# HELP uritoken_client_requests_total Answers to valid tokens per client (billing), since the last restart.\n"
        "# TYPE uritoken_client_requests_total counter\n";
    std::string bytes =
        "# HELP uritoken_client_bytes_total Bytes sent for valid tokens per client (billing), since the last restart.\n"
        "# TYPE uritoken_client_bytes_total counter\n";
    usage->for_each_client([&](const UsageTable::ClientUsage& u) {
      const std::string label = "{client=\"" + prometheus_label(u.client) + "\"} ";
      requests += "uritoken_client_requests_total" + label + std::to_string(u.requests) + "\n";
      bytes += "uritoken_client_bytes_total" + label + std::to_string(u.bytes) + "\n";
    });
    out += requests + bytes;
    if (conf->keys != nullptr) {
      out +=
          "# HELP uritoken_key_last_used_seconds When each key last verified a token on this node (unix s, 0 "
          "never).\n# TYPE uritoken_key_last_used_seconds gauge\n";
      for (const auto& k : conf->keys->keys()) {
        out += "uritoken_key_last_used_seconds{key_id=\"" + std::to_string(k->id) + "\",client=\"" +
               prometheus_label(k->client) + "\"} " + std::to_string(usage->key_last_used(k->id)) + "\n";
      }
    }
  }
  ap_rputs(out.c_str(), r);
}

// The page's style: self-contained (the CSP allows inline style only, no
// scripts, images or fonts from anywhere), readable at desktop width and
// on a phone, where the token tables turn into one card per token.
const char* const kStyle =
    ":root{--line:#d8dce3;--muted:#586071;--bad:#b3261e;--ok:#0b6b2f;--accent:#1d5bbf;--head:#f2f4f7}"
    "*{box-sizing:border-box}"
    "body{margin:0;color:#1b2230;background:#fff;"
    "font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}"
    "main{max-width:1440px;margin:0 auto;padding:1rem 1.25rem 2rem}"
    "header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.25rem 1.25rem;"
    "border-bottom:2px solid var(--line);padding-bottom:.6rem}"
    "h1{font-size:1.35rem;margin:0}h2{font-size:1.12rem;margin:1.6rem 0 .5rem}"
    "header p{margin:0;color:var(--muted)}header b{color:#1b2230}"
    ".badge{display:inline-block;padding:0 .55em;border-radius:1em;font-size:.85em;font-weight:600}"
    ".ok{color:var(--ok)}.bad{color:var(--bad)}.badge.ok{background:#e2f3e7}.badge.bad{background:#fbe4e2}"
    ".flash{margin:1rem 0 0;padding:.6rem .85rem;border-radius:6px;font-weight:600}"
    ".flash.ok{background:#e2f3e7;border:1px solid #aedbbb}.flash.bad{background:#fbe4e2;border:1px solid #f0b4ae}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{border-bottom:1px solid var(--line);padding:.45rem .6rem;text-align:left;vertical-align:top}"
    "th{background:var(--head);font-weight:600;white-space:nowrap}"
    "td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}"
    "code{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.9em}"
    ".nowrap{white-space:nowrap}.muted{color:var(--muted)}.wrap{overflow-x:auto}"
    ".bar{display:flex;flex-wrap:wrap;align-items:flex-end;gap:.5rem .75rem;margin:.5rem 0}"
    "label{display:flex;flex-direction:column;gap:.15rem;font-size:.85em;color:var(--muted)}"
    "input{font:inherit;font-size:1rem;color:inherit;padding:.35rem .5rem;border:1px solid #aeb5c0;"
    "border-radius:5px;min-width:0}"
    "input:focus,button:focus,summary:focus{outline:2px solid var(--accent);outline-offset:1px}"
    "button{font:inherit;padding:.38rem .95rem;border-radius:5px;border:1px solid var(--accent);"
    "background:var(--accent);color:#fff;cursor:pointer;white-space:nowrap}"
    "button.danger{background:var(--bad);border-color:var(--bad)}"
    "button.quiet{background:#fff;color:#1b2230;border-color:#aeb5c0}"
    ".grow{flex:1 1 24rem}.grow input{width:100%}"
    "details{margin:.25rem 0}summary{cursor:pointer;color:var(--muted)}"
    ".hint{font-size:.85em;color:var(--muted);margin:.25rem 0 0}"
    "td.why{min-width:15rem}ul.places{margin:.2rem 0;padding-left:1.1rem}"
    ".pardon{display:flex;gap:.4rem}.pardon input{width:10rem;font-size:.9rem;padding:.25rem .4rem}"
    ".pardon button{padding:.25rem .7rem}"
    ".cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:0 2.5rem}"
    ".counters table,.counters tbody{display:block}"
    ".counters tbody{display:grid;grid-template-columns:repeat(auto-fill,minmax(19rem,1fr));column-gap:2.5rem}"
    ".counters tr{display:flex;justify-content:space-between;border-bottom:1px solid var(--line)}"
    ".counters td{border:0}"
    "footer{margin-top:2rem;padding-top:.6rem;border-top:1px solid var(--line);color:var(--muted);font-size:.9em}"
    "a{color:var(--accent)}"
    "@media (max-width:720px){"
    "main{padding:.75rem .75rem 1.5rem}.bar>label{flex:1 1 9rem}.bar>.grow,.bar>button{flex:1 1 100%}"
    ".bar input{width:100%}th{white-space:normal}th,td{padding:.4rem .45rem}"
    ".cards thead{display:none}.cards table,.cards tbody,.cards tr,.cards td{display:block}"
    ".cards tr{border:1px solid var(--line);border-radius:8px;margin:.6rem 0;padding:.35rem .7rem}"
    ".cards td{border:0;padding:.15rem 0 .15rem 6.5rem;position:relative;min-height:1.6em;text-align:left}"
    ".cards td::before{content:attr(data-label);position:absolute;left:0;width:6rem;color:var(--muted);"
    "font-size:.85em;padding-top:.1em;text-align:left}"
    ".cards td.why{min-width:0}.cards td.empty{padding-left:0}.cards td.action{padding:.4rem 0 .2rem}"
    ".pardon input{flex:1;width:auto}}";

// Networks as the page shows them: each in code, with room to wrap.
// The networks of a verdict, each with where this node's location
// database puts it ("AS7922 US"), when it knows.
std::string network_list(const std::string& all, const std::string& where) {
  std::string out;
  for (std::size_t at = 0, wat = 0; at < all.size();) {
    const std::size_t end = std::min(all.find(',', at), all.size());
    const std::size_t wend = std::min(where.find(',', wat), where.size());
    const std::string place = wat < where.size() ? where.substr(wat, wend - wat) : "";
    out += std::string(out.empty() ? "" : ", ") + "<code>" + html(all.substr(at, end - at)) + "</code>" +
           (place.empty() ? "" : " <span class=\"muted\">" + html(place) + "</span>");
    at = end + 1;
    wat = wend + 1;
  }
  return out;
}

// ", used 12:01:05 to 12:04:40" (the date once, in UTC as everywhere on
// the page); "" when unknown (a verdict from a node before protocol 4).
std::string used_between(std::uint64_t first_s, std::uint64_t last_s) {
  if (first_s == 0 || last_s == 0) return "";
  const std::string a = iso_time(first_s), z = iso_time(last_s);
  const std::size_t day = a.find(' ');
  const bool same_day = day != std::string::npos && a.compare(0, day, z, 0, day) == 0;
  return ", used " + a + " to " + (same_day ? z.substr(day + 1) : z);
}

// The Why of a bulk verdict: the rate that crossed UriTokenBulkLimit and
// where the requests came from.
std::string bulk_html(const Record& b, const ClusterConfig* c) {
  const auto number = [&](const char* name) { return std::strtoull(field(b, name).c_str(), nullptr, 10); };
  std::string out = "<b>bulk use</b>: " + std::to_string(number("bulk_requests")) + " requests and " +
                    control::format_bytes(number("bulk_bytes")) + " a minute over the last two minutes";
  if (c != nullptr) {
    std::string limits;
    if (c->bulk_requests_per_min != 0) limits = std::to_string(c->bulk_requests_per_min) + " requests";
    if (c->bulk_bytes_per_min != 0)
      limits += (limits.empty() ? "" : " or ") + control::format_bytes(c->bulk_bytes_per_min);
    out += " (limit " + limits + ")";
  }
  const auto places = control::parse_places(field(b, "places"));
  if (!places.empty()) {
    out += ", from " + html(places[0].name) + (places[0].country.empty() ? "" : " (" + html(places[0].country) + ")");
  }
  return out + "; ";
}

// Why the owner found a token shared: its places, what each weighed, and
// the score against the limit (docs/sharing-rule.md).
std::string places_html(const Record& b) {
  const auto places = control::parse_places(field(b, "places"));
  std::string out = "<b>" + std::to_string(places.size()) + " places</b>, score " + html(field(b, "score"));
  // The verdict's two bars (docs/sharing-rule.md): the places, and the
  // whole score half a place above them.
  if (const std::string limit = field(b, "limit"); !limit.empty()) {
    char score_bar[32];
    std::snprintf(score_bar, sizeof score_bar, "%.1f", std::strtod(limit.c_str(), nullptr) + kTipWeight);
    out += " (shared at " + html(limit) + " places and score " + score_bar + ")";
  }
  out += ":<ul class=\"places\">";
  for (const auto& p : places) {
    char weight[16];
    std::snprintf(weight, sizeof weight, "+%.1f", p.weight);
    out += "<li>" + html(p.name) + (p.country.empty() ? "" : " (" + html(p.country) + ")") + " <span class=\"muted\">" +
           std::to_string(p.networks) + (p.networks == 1 ? " network, " : " networks, ") +
           (p.concurrent ? "concurrent" : "sequential") + ", " + weight + used_between(p.first_s, p.last_s) +
           "</span></li>";
  }
  return out + "</ul>";
}

// A time in a table: date and time each kept whole, free to go on two
// lines when the table is narrow.
std::string time_cell(std::uint64_t unix_s) {
  const std::string t = iso_time(unix_s);
  const auto space = t.find(' ');
  if (space == std::string::npos) return t;
  return "<span class=\"nowrap\">" + t.substr(0, space) + "</span> <span class=\"nowrap\">" + t.substr(space + 1) +
         "</span>";
}

// Who revoked or pardoned by hand: the user (and address) or the address; "" if unknown.
std::string operator_of(const Record& r) {
  // A subscriber entry's user is its client; the operator's name is in its comment.
  const std::string user = subscriber_record(r) ? "" : field(r, "user"), address = field(r, "operator");
  if (user.empty()) return address;
  return address.empty() ? user : user + " (" + address + ")";
}

// The page's head: the node, its mode and members, the sidecar's state,
// and the outcome of the last action (?done=, ?failed=).
std::string page_header(const request_rec* r, const View& v) {
  std::string out = std::string(
                        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                        "<title>mod_uritoken status</title><style>") +
                    kStyle + "</style></head><body><main>\n<header><h1>mod_uritoken status</h1>";
  if (v.sharing_off) {
    out += "<p>Link-sharing detection is off on this server (UriTokenSharing).</p>";
  } else if (!v.node.empty()) {
    const Record& n = v.node[0];
    std::size_t alive = 0;
    for (const Record& m : v.members) alive += field(m, "state") == "alive";
    const std::string identity = field(n, "identity");
    out += "<p>Node <b>" + html(field(n, "name")) + "</b>" +
           (identity.empty() ? std::string() : " · node hash <code>" + html(identity) + "</code>") + " · mode " +
           html(field(n, "mode")) + " · " +
           (field(n, "ready") == "1" ? "<span class=\"badge ok\">synced</span>"
                                     : "<span class=\"badge bad\">catching up</span>") +
           " · " + std::to_string(alive) + " of " + std::to_string(v.members.size()) + " other members alive</p>";
  }
  out += "</header>\n";
  if (!v.sharing_off && !v.sidecar_problem.empty()) {
    out += "<p class=\"flash bad\" role=\"alert\">Sidecar unavailable: " + html(v.sidecar_problem) + "</p>\n";
  }
  const std::string done = query_value(r, "done"), failed = query_value(r, "failed");
  if (!done.empty()) out += "<p class=\"flash ok\" role=\"status\">Done: " + html(done) + ".</p>\n";
  if (!failed.empty()) out += "<p class=\"flash bad\" role=\"alert\">Failed: " + html(failed) + ".</p>\n";
  return out;
}

// The form that revokes a shared URL or a session on every node.
std::string revoke_form(const std::string& self, const std::string& csrf) {
  std::string out;
  out += "<section id=\"revoke\"><h2>Revoke a token</h2>\n<form method=\"post\" action=\"" + self + "\">" + csrf +
         "<input type=\"hidden\" name=\"action\" value=\"revoke\"><div class=\"bar\">"
         "<label class=\"grow\">Shared URL or token<input name=\"url\" autocomplete=\"off\" spellcheck=\"false\" "
         "placeholder=\"https://media.example/_uk_…/clip.m3u8\"></label>"
         "<label>Comment<input name=\"comment\" size=\"24\" placeholder=\"why (optional)\"></label>"
         "<button class=\"danger\">Revoke everywhere</button></div>\n"
         "<details><summary>No URL? Revoke by session and key id</summary><div class=\"bar\">"
         "<label>Session (16 hex digits)<input name=\"session\" size=\"18\" autocomplete=\"off\" "
         "spellcheck=\"false\"></label>"
         "<label>Key id<input name=\"key\" size=\"6\" inputmode=\"numeric\"></label>"
         "<label>Expires (unix time, for a token<br>this cluster has not seen)<input name=\"expires\" size=\"12\" "
         "inputmode=\"numeric\"></label></div></details>\n"
         "<p class=\"hint\">Every node refuses it within seconds. The token itself is never shown or "
         "logged.</p></form></section>\n";
  return out;
}

// A blocked token in the list, with its client from this server's keys.
struct BlockedRow {
  const Record* record;
  std::string client;
};

// The blocked tokens the page lists: filtered (?client=, ?session= prefix)
// and sorted (any column, ?sort=...&order=asc|desc; newest first by
// default); `sort` and `ascending` say how.
std::vector<BlockedRow> blocked_rows(const request_rec* r, const ServerConfig* conf, const View& v,
                                     const std::string& client_filter, const std::string& session_filter,
                                     std::string& sort, bool& ascending) {
  using Row = BlockedRow;
  std::vector<Row> list;
  for (const Record& b : v.blocked) {
    std::string client = client_of(conf, b);
    if (!client_filter.empty() && client != client_filter) continue;
    if (!session_filter.empty() && field(b, "session").rfind(session_filter, 0) != 0) continue;
    list.push_back({&b, std::move(client)});
  }
  static const char* const kSortable[] = {"session", "client", "key", "since", "expires", "decided"};
  sort = query_value(r, "sort");
  if (std::find(std::begin(kSortable), std::end(kSortable), sort) == std::end(kSortable)) sort = "since";
  ascending = query_value(r, "order") == "asc";
  auto sort_key = [&sort = std::as_const(sort)](const Row& row) -> std::pair<std::uint64_t, std::string> {
    const Record& b = *row.record;
    if (sort == "key") return {std::strtoull(field(b, "key").c_str(), nullptr, 10), ""};
    if (sort == "since") return {std::strtoull(field(b, "since_ms").c_str(), nullptr, 10), ""};
    if (sort == "expires") return {std::strtoull(field(b, "expires").c_str(), nullptr, 10), ""};
    if (sort == "client") return {0, row.client};
    if (sort == "decided") return {0, field(b, "origin")};
    return {0, field(b, "session")};
  };
  std::stable_sort(list.begin(), list.end(), [&](const Row& a, const Row& b) {
    return ascending ? sort_key(a) < sort_key(b) : sort_key(b) < sort_key(a);
  });
  return list;
}

// The evidence of a verdict, for the Why column: bulk use, an operator's
// revocation, or the places and networks the owner counted.
std::string blocked_why(const Record& b, const ServerConfig* conf) {
  std::string why;
  if (field(b, "reason") == "bulk") {
    why = bulk_html(b, conf->cluster);
    if (!field(b, "nets").empty()) why += "network " + network_list(field(b, "nets"), field(b, "nets_where"));
  } else if (field(b, "reason") == "manual") {
    why = "manual";
    if (const std::string who = operator_of(b); !who.empty()) why += " by " + html(who);
    if (!field(b, "comment").empty()) why += ": " + html(field(b, "comment"));
  } else if (field(b, "reason") == "client") {
    // user= is the client id the site signed with, operator= its address.
    why = "revoked by the client site " + html(field(b, "user"));
    if (!field(b, "operator").empty()) why += " (from " + html(field(b, "operator")) + ")";
    if (!field(b, "comment").empty()) why += ": " + html(field(b, "comment"));
  } else if (!field(b, "places").empty()) {
    why =
        std::string(subscriber_record(b) ? "account shared across its tokens (each one issued until Since is refused): "
                                         : "") +
        places_html(b);
    if (!field(b, "nets").empty()) why += "networks " + network_list(field(b, "nets"), field(b, "nets_where"));
  } else {
    why = html(field(b, "networks")) + " networks";
    if (!field(b, "nets").empty()) why += ": " + network_list(field(b, "nets"), field(b, "nets_where"));
  }
  if (field(b, "reason") != "manual" && field(b, "reason") != "client") {
    if (!field(b, "first").empty()) {
      why += "; seen " + iso_time(std::strtoull(field(b, "first").c_str(), nullptr, 10)) + " to " +
             iso_time(std::strtoull(field(b, "last").c_str(), nullptr, 10));
    } else if (!field(b, "last").empty()) {
      why += "; last seen " + iso_time(std::strtoull(field(b, "last").c_str(), nullptr, 10));
    }
  }
  return why;
}

// One row of the blocked list, with its Pardon form where actions are on.
std::string blocked_row(const Record& b, const std::string& client, const ServerConfig* conf, bool actions,
                        const std::string& self, const std::string& csrf) {
  std::string out;
  const std::uint64_t since_ms = std::strtoull(field(b, "since_ms").c_str(), nullptr, 10);
  out += "<tr><td data-label=\"Session\"><code>" + html(field(b, "session")) +
         "</code></td><td data-label=\"Client\">" + html(client) + "</td><td data-label=\"Key\" class=\"num\">" +
         (subscriber_record(b) ? std::string("subscriber") : html(field(b, "key"))) +
         "</td><td data-label=\"Why\" class=\"why\">" + blocked_why(b, conf) + "</td><td data-label=\"Since\">" +
         time_cell(since_ms / 1000) + "</td><td data-label=\"Expires\">" +
         time_cell(std::strtoull(field(b, "expires").c_str(), nullptr, 10)) + "</td><td data-label=\"Decided by\">" +
         html(field(b, "origin")) + "</td>";
  if (actions) {
    out += "<td class=\"action\"><form method=\"post\" action=\"" + self + "\" class=\"pardon\">" + csrf +
           "<input type=\"hidden\" name=\"action\" value=\"pardon\">"
           "<input type=\"hidden\" name=\"key\" value=\"" +
           html(field(b, "key")) + "\"><input type=\"hidden\" name=\"session\" value=\"" + html(field(b, "session")) +
           "\"><input name=\"comment\" placeholder=\"comment (optional)\" aria-label=\"Comment for pardoning "
           "session " +
           html(field(b, "session")) + "\"><button class=\"quiet\" aria-label=\"Pardon session " +
           html(field(b, "session")) + "\">Pardon</button></form></td>";
  }
  return out + "</tr>\n";
}

// The blocked tokens: a filter, the sortable list, 100 rows a page (?page=N),
// so thousands of entries stay usable (the JSON has every entry).
std::string blocked_section(const request_rec* r, const ServerConfig* conf, const View& v, const std::string& self,
                            const std::string& csrf, bool actions) {
  const std::string client_filter = query_value(r, "client"), session_filter = query_value(r, "session");
  const bool filtered = !client_filter.empty() || !session_filter.empty();
  std::string sort;
  bool ascending = false;
  const std::vector<BlockedRow> list = blocked_rows(r, conf, v, client_filter, session_filter, sort, ascending);
  constexpr std::size_t kPageRows = 100;
  const std::size_t pages = std::max<std::size_t>(1, (list.size() + kPageRows - 1) / kPageRows);
  const std::size_t page =
      std::min<std::size_t>(pages, std::max<std::size_t>(1, std::strtoul(query_value(r, "page").c_str(), nullptr, 10)));
  // A link to this view with one parameter changed.
  auto link = [&](const std::string& new_sort, bool new_ascending, std::size_t new_page) {
    std::string q = "?sort=" + new_sort + "&amp;order=" + (new_ascending ? "asc" : "desc") +
                    "&amp;page=" + std::to_string(new_page);
    if (!client_filter.empty()) q += "&amp;client=" + html(ap_escape_urlencoded(r->pool, client_filter.c_str()));
    if (!session_filter.empty()) q += "&amp;session=" + html(ap_escape_urlencoded(r->pool, session_filter.c_str()));
    return self + q;
  };
  auto header = [&](const char* column, const char* label, const char* cls = "") {
    const bool current = sort == column;
    const bool next_ascending =
        current ? !ascending : (std::strcmp(column, "since") != 0 && std::strcmp(column, "expires") != 0);
    return std::string("<th") + (*cls ? std::string(" class=\"") + cls + "\"" : "") +
           (current ? std::string(" aria-sort=\"") + (ascending ? "ascending" : "descending") + "\"" : "") +
           "><a href=\"" + link(column, next_ascending, 1) + "\">" + label +
           (current ? (ascending ? " ▲" : " ▼") : "") + "</a></th>";
  };
  std::string rows;
  const std::size_t shown = list.size();
  for (std::size_t i = (page - 1) * kPageRows; i < std::min(list.size(), page * kPageRows); ++i) {
    rows += blocked_row(*list[i].record, list[i].client, conf, actions, self, csrf);
  }
  const int columns = actions ? 8 : 7;
  if (shown == 0) {
    rows = "<tr><td colspan=\"" + std::to_string(columns) + "\" class=\"empty muted\">" +
           (filtered ? "No blocked token matches the filter." : "No blocked tokens.") + "</td></tr>\n";
  }
  std::string out;
  const auto subscribers =
      static_cast<std::size_t>(std::count_if(v.blocked.begin(), v.blocked.end(), subscriber_record));
  out += "<section id=\"blocked\"><h2>Blocked tokens (" + std::to_string(v.blocked.size() - subscribers) + ")" +
         (subscribers != 0 ? " and subscribers (" + std::to_string(subscribers) + ")" : std::string()) +
         "</h2>\n"
         "<form method=\"get\" action=\"" +
         self +
         "\" class=\"bar\" role=\"search\">"
         "<label>Client<input name=\"client\" size=\"16\" placeholder=\"client id\" value=\"" +
         html(client_filter) +
         "\"></label><label>Session starts with<input name=\"session\" size=\"18\" placeholder=\"hex digits\" "
         "spellcheck=\"false\" value=\"" +
         html(session_filter) + "\"></label><button>Filter</button>";
  if (filtered) {
    out += "<span class=\"muted\">" + std::to_string(shown) + " of " + std::to_string(v.blocked.size()) +
           " shown · <a href=\"" + self + "\">show all</a></span>";
  }
  out += "</form>\n<div class=\"wrap cards\"><table><thead><tr>" + header("session", "Session") +
         header("client", "Client") + header("key", "Key", "num") + "<th>Why</th>" + header("since", "Since") +
         header("expires", "Expires") + header("decided", "Decided by") +
         std::string(actions ? "<th><span class=\"muted\">Action</span></th>" : "") + "</tr></thead><tbody>\n" + rows +
         "</tbody></table></div>\n";
  if (pages > 1) {
    out += "<nav class=\"bar\" aria-label=\"Pages of blocked tokens\"><span>Page " + std::to_string(page) + " of " +
           std::to_string(pages) + "</span>";
    if (page > 1) out += "<a href=\"" + link(sort, ascending, page - 1) + "\" rel=\"prev\">previous</a>";
    if (page < pages) out += "<a href=\"" + link(sort, ascending, page + 1) + "\" rel=\"next\">next</a>";
    out += "</nav>\n";
  }
  out += "</section>\n";
  return out;
}

// Pardoned tokens: the sharing rule leaves them alone for their life.
std::string pardoned_section(const ServerConfig* conf, const View& v) {
  std::string out;
  if (!v.pardoned.empty()) {
    out += "<section id=\"pardoned\"><h2>Pardoned (" + std::to_string(v.pardoned.size()) +
           ")</h2>\n<p class=\"muted\">A pardon holds for the token's life: the sharing rule does not revoke it "
           "again, whatever its use; only an operator (Revoke everywhere) does.</p>\n"
           "<div class=\"wrap cards\"><table><thead><tr><th>Session</th><th>Client</th><th class=\"num\">Key"
           "</th><th>By</th><th>When</th><th>Comment</th></tr></thead><tbody>\n";
    for (const Record& p : v.pardoned) {
      const std::uint64_t since_ms = std::strtoull(field(p, "since_ms").c_str(), nullptr, 10);
      out += "<tr><td data-label=\"Session\"><code>" + html(field(p, "session")) +
             "</code></td><td data-label=\"Client\">" + html(client_of(conf, p)) +
             "</td><td data-label=\"Key\" class=\"num\">" +
             (subscriber_record(p) ? std::string("subscriber") : html(field(p, "key"))) +
             "</td><td data-label=\"By\">" + (operator_of(p).empty() ? "" : html(operator_of(p)) + " on ") +
             html(field(p, "origin")) + "</td><td data-label=\"When\">" + time_cell(since_ms / 1000) +
             "</td><td data-label=\"Comment\">" + html(field(p, "comment")) + "</td></tr>\n";
    }
    out += "</tbody></table></div></section>\n";
  }
  return out;
}

// The cluster's members as this node sees them.
std::string members_section(const request_rec* r, const View& v) {
  std::string out;
  out +=
      "<section id=\"cluster\"><h2>Cluster members</h2>\n<div class=\"wrap\"><table><thead><tr><th>Member</th>"
      "<th>Address</th><th>Node hash</th><th>State</th><th>Last contact</th><th>Protocol</th><th>Sharing rule</th>"
      "</tr></thead>"
      "<tbody>\n";
  const std::uint64_t now_ms = static_cast<std::uint64_t>(apr_time_as_msec(r->request_time));
  for (const Record& m : v.members) {
    const bool alive = field(m, "state") == "alive";
    const std::uint64_t heard = std::strtoull(field(m, "last_contact_ms").c_str(), nullptr, 10);
    const std::string contact = heard == 0        ? "never"
                                : heard >= now_ms ? "just now"
                                                  : std::to_string((now_ms - heard) / 1000) + " s ago";
    out += "<tr><td>" + html(field(m, "name")) + "</td><td><code>" + html(field(m, "address")) + "</code></td><td>" +
           (field(m, "identity").empty() ? std::string("<span class=\"muted\">unknown</span>")
                                         : "<code>" + html(field(m, "identity")) + "</code>") +
           "</td><td><span class=\"badge " + (alive ? "ok" : "bad") + "\">" + html(field(m, "state")) +
           "</span></td><td>" + contact + "</td><td>" + html(field(m, "protocol")) + "</td><td>" +
           (field(m, "same_policy") == "0" ? "<span class=\"bad\">differs</span>" : "same") + "</td></tr>\n";
  }
  if (v.members.empty()) out += "<tr><td colspan=\"7\" class=\"muted\">No other members known.</td></tr>\n";
  return out + "</tbody></table></div></section>\n";
}

// Keys and their last use, usage by client, shared networks and suspected
// proxies.
// UriTokenCountries' refusals by the viewer's country, most first.
std::string countries_section() {
  std::vector<std::pair<std::uint64_t, std::string>> rows;
  country_refusal_totals([&](const char* country, std::uint64_t n) { rows.emplace_back(n, country); });
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string out =
      "<section id=\"countries\"><h2>Refusals by country <span class=\"muted\">(UriTokenCountries, since the last "
      "restart)</span></h2>\n<div class=\"wrap\"><table><thead><tr><th>Country</th><th class=\"num\">Refused</th>"
      "</tr></thead><tbody>\n";
  for (const auto& [n, country] : rows) {
    out += "<tr><td>" + (country == "--" ? std::string("no known country") : html(country)) +
           "</td><td class=\"num\">" + std::to_string(n) + "</td></tr>\n";
  }
  if (rows.empty()) out += "<tr><td colspan=\"2\" class=\"empty\">none</td></tr>\n";
  return out + "</tbody></table></div></section>\n";
}

std::string keys_and_networks_section(const ServerConfig* conf, const View& v) {
  std::string out;
  out +=
      "<div class=\"cols\"><section id=\"keys\"><h2>Keys</h2>\n<div "
      "class=\"wrap\"><table><thead><tr><th class=\"num\">Key id</th><th>Client</th><th>Last used here</th>"
      "</tr></thead><tbody>\n";
  if (conf->keys != nullptr) {
    const UsageTable* usage = usage_table();
    for (const auto& k : conf->keys->keys()) {
      const std::uint32_t last = usage ? usage->key_last_used(k->id) : 0;
      out += "<tr><td class=\"num\">" + std::to_string(k->id) + "</td><td>" + html(k->client) + "</td><td>" +
             (last ? iso_time(last) : std::string("<span class=\"muted\">not since the last restart</span>")) +
             "</td></tr>\n";
    }
  }
  out +=
      "</tbody></table></div></section>\n<section id=\"usage\"><h2>Usage by client <span class=\"muted\">(since "
      "the last restart)</span></h2>\n<div class=\"wrap\"><table><thead><tr><th>Client</th><th class=\"num\">"
      "Requests</th><th class=\"num\">Bytes</th></tr></thead><tbody>\n";
  if (const UsageTable* usage = usage_table()) {
    usage->for_each_client([&](const UsageTable::ClientUsage& u) {
      out += "<tr><td>" + html(u.client) + "</td><td class=\"num\">" + std::to_string(u.requests) +
             "</td><td class=\"num\">" + std::to_string(u.bytes) + "</td></tr>\n";
    });
  }
  out +=
      "</tbody></table></div></section></div>\n<div class=\"cols\"><section id=\"shared\"><h2>Shared networks "
      "<span class=\"muted\">(configured)</span></h2>\n<p>";
  for (const Record& s : v.shared) out += "<code>" + html(field(s, "network")) + "</code> ";
  if (v.shared.empty()) out += "<span class=\"muted\">None configured (UriTokenSharedNetwork).</span>";
  out +=
      "</p></section>\n<section id=\"proxies\"><h2>Suspected shared proxies</h2>\n<p class=\"hint\">Detected "
      "here: networks with many sessions at once.</p>\n<p>";
  for (const Record& p : v.proxies) out += "<code>" + html(field(p, "network")) + "</code> ";
  if (v.proxies.empty()) out += "<span class=\"muted\">None at the moment.</span>";
  out += "</p></section></div>\n";
  return out;
}

// Places, counters and the links to the page's JSON and metrics.
std::string page_footer(const request_rec* r, const View& v, const std::string& self) {
  std::string out;
  out += places_section(v);
  out += "<section id=\"counters\"><h2>Counters</h2>\n<details class=\"counters\"><summary>" +
         std::to_string(v.counters.size()) +
         " counters of gossip, sightings and the journal (also in Prometheus)</summary><table><tbody>";
  for (const Record& c : v.counters) {
    out += "<tr><td>" + html(field(c, "name")) + "</td><td class=\"num\">" + html(field(c, "value")) + "</td></tr>";
  }
  out += "</tbody></table></details></section>\n<footer>Shown at " +
         iso_time(static_cast<std::uint64_t>(apr_time_sec(r->request_time))) + " · <a href=\"" + self +
         "?json\">JSON</a> · <a href=\"" + self + "?metrics\">Prometheus metrics</a></footer>\n</main></body></html>\n";
  return out;
}

void render_html(request_rec* r, const ServerConfig* conf, const View& v) {
  ap_set_content_type(r, "text/html; charset=utf-8");
  const std::string csrf = "<input type=\"hidden\" name=\"csrf\" value=\"" + csrf_token(current_hour(r)) + "\">";
  const bool actions = !v.sharing_off && v.sidecar_problem.empty();
  const std::string self = html(ap_escape_uri(r->pool, r->uri));  // this page, for its forms and links
  std::string out = page_header(r, v);
  if (actions) out += revoke_form(self, csrf);
  out += blocked_section(r, conf, v, self, csrf, actions);
  out += pardoned_section(conf, v);
  out += members_section(r, v);
  out += keys_and_networks_section(conf, v);
  if (country_table() != nullptr) out += countries_section();
  out += page_footer(r, v, self);
  ap_rputs(out.c_str(), r);
}

// The form token of hour `hour`: HMAC-SHA-256 of it under this
// generation's random key, 32 hex digits. A page carries the current
// hour's; the previous hour's is accepted too, so a page left open works.
std::string csrf_token(std::uint64_t hour) {
  const unsigned char* key = csrf_key();
  if (key == nullptr) return "";
  unsigned char msg[8], mac[crypto_auth_hmacsha256_BYTES];
  for (int i = 0; i < 8; ++i) msg[i] = static_cast<unsigned char>(hour >> (8 * i));
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key, 32);
  crypto_auth_hmacsha256_update(&st, msg, sizeof msg);
  crypto_auth_hmacsha256_final(&st, mac);
  char hex[33];
  sodium_bin2hex(hex, sizeof hex, mac, 16);
  return hex;
}

std::uint64_t current_hour(const request_rec* r) {
  return static_cast<std::uint64_t>(apr_time_sec(r->request_time) / 3600);
}

bool csrf_ok(const request_rec* r, const std::string& given) {
  if (given.size() != 32) return false;
  for (const std::uint64_t hour : {current_hour(r), current_hour(r) - 1}) {
    const std::string want = csrf_token(hour);
    if (!want.empty() && sodium_memcmp(want.data(), given.data(), 32) == 0) return true;
  }
  return false;
}

// A state-changing POST must come from this page: Origin (or, without it,
// Referer) must name the host the request was sent to.
bool same_origin(const request_rec* r) {
  const char* origin = apr_table_get(r->headers_in, "Origin");
  if (origin == nullptr) origin = apr_table_get(r->headers_in, "Referer");
  if (origin == nullptr || r->hostname == nullptr) return false;
  apr_uri_t uri;
  if (apr_uri_parse(r->pool, origin, &uri) != APR_SUCCESS || uri.hostname == nullptr) return false;
  const char* host_header = apr_table_get(r->headers_in, "Host");
  const std::string sent = host_header != nullptr ? host_header : r->hostname;
  std::string named = uri.hostname;
  if (uri.port_str != nullptr) named += std::string(":") + uri.port_str;
  return strcasecmp(named.c_str(), sent.c_str()) == 0;
}

std::map<std::string, std::string> read_form(request_rec* r) {
  std::map<std::string, std::string> out;
  apr_array_header_t* pairs = nullptr;
  if (ap_parse_form_data(r, nullptr, &pairs, 32, 16384) != OK || pairs == nullptr) return out;
  for (int i = 0; i < pairs->nelts; ++i) {
    ap_form_pair_t& p = APR_ARRAY_IDX(pairs, i, ap_form_pair_t);
    apr_off_t len = 0;
    apr_brigade_length(p.value, 1, &len);
    if (len < 0 || len > 4096) continue;
    std::string value(static_cast<std::size_t>(len), '\0');
    apr_size_t size = static_cast<apr_size_t>(len);
    apr_brigade_flatten(p.value, value.data(), &size);
    value.resize(size);
    out[p.name] = value;
  }
  return out;
}

// The token of a pasted URL (or a bare token, with or without "_uk_"):
// its key id, session and expiry. The token itself is never shown or logged.
bool token_of(const std::string& text, std::uint16_t* key, std::string* session, std::uint32_t* expires) {
  std::string_view t = text;
  t.remove_prefix(std::min(t.find_first_not_of(" \t\r\n"), t.size()));
  t = t.substr(0, t.find_last_not_of(" \t\r\n") + 1);
  if (const auto from_url = token_of_url(t)) {
    t = *from_url;
  } else if (t.substr(0, kTokenPrefix.size()) == kTokenPrefix) {
    t.remove_prefix(kTokenPrefix.size());
  }
  Claims claims;
  if (decode_token(t, &claims) != Reason::ok) return false;
  *key = claims.key_id;
  *session = session_hex(claims.session);
  *expires = claims.expires;
  return true;
}

// POST revoke or pardon from the page's forms.
int handle_action(request_rec* r, const ServerConfig* conf) {
  const auto form = read_form(r);
  auto get = [&](const char* name) {
    const auto it = form.find(name);
    return it == form.end() ? std::string() : it->second;
  };
  if (!same_origin(r) || !csrf_ok(r, get("csrf"))) {
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00040: status page action refused: no valid form token or a foreign Origin (cross-site request?)");
    return HTTP_FORBIDDEN;
  }
  const std::string action = get("action");
  if ((action != "revoke" && action != "pardon") || conf->cluster == nullptr || conf->cluster->state_dir.empty()) {
    return HTTP_BAD_REQUEST;
  }
  Record request;
  request.kind = action;
  std::uint16_t key = 0;
  std::string session;
  std::uint32_t expires = 0;
  if (!get("url").empty()) {
    if (!token_of(get("url"), &key, &session, &expires)) return HTTP_BAD_REQUEST;
    request.add("key", key).add("session", session).add("expires", expires);
  } else {
    request.add("key", get("key")).add("session", get("session"));
    if (!get("expires").empty()) request.add("expires", get("expires"));
  }
  request.add("operator", r->useragent_ip ? r->useragent_ip : "-");
  if (r->user != nullptr) request.add("user", r->user);
  if (!get("comment").empty()) request.add("comment", get("comment"));
  std::string why;
  const auto answer = ask_sidecar(conf->cluster->state_dir + "/" + control::kSocketName, request, &why);
  const bool ok = answer && !answer->empty() && (*answer)[0].kind == "ok";
  const std::string message =
      ok ? action + (action == "revoke" ? "d" : "ed") + " session " + field((*answer)[0], "session")
         : (answer && !answer->empty() ? field((*answer)[0], "message") : why);
  ap_log_rerror(APLOG_MARK, ok ? APLOG_NOTICE : APLOG_WARNING, 0, r,
                "UT00041: status page: operator %s%s%s %s key %s session %s%s%s",
                r->useragent_ip ? r->useragent_ip : "-", r->user ? " user " : "", r->user ? r->user : "",
                ok ? (action == "revoke" ? "revoked" : "pardoned") : ("could not " + action).c_str(),
                field(request, "key").c_str(), field(request, "session").c_str(), ok ? "" : ": ",
                ok ? "" : message.c_str());
  // Back to the page (POST/redirect/GET), with the outcome to show.
  char* escaped = ap_escape_urlencoded(r->pool, message.c_str());
  apr_table_setn(r->headers_out, "Location",
                 apr_pstrcat(r->pool, r->uri, ok ? "?done=" : "?failed=", escaped, nullptr));
  return HTTP_SEE_OTHER;
}

}  // namespace

// A short section in mod_status's /server-status, from shared memory only
// (no sidecar round trip): mod_status pages are polled often.
int server_status_section(request_rec* r, int flags) {
  const ServerConfig* conf = server_config(r);
  const ClusterConfig* c = conf->cluster;
  const char* mode = c == nullptr || c->mode == SharingMode::off ? "off"
                     : c->mode == SharingMode::shadow            ? "shadow"
                                                                 : "enforce";
  const SharedState* shared = shared_state();
  const std::uint64_t now_ms = static_cast<std::uint64_t>(apr_time_as_msec(apr_time_now()));
  const std::uint64_t beat = shared != nullptr ? shared->sidecar_heartbeat() : 0;
  const bool sidecar_up = beat != 0 && now_ms - beat < 5000;
  const SharedCounters sc = shared != nullptr ? shared->counters() : SharedCounters{};
  std::uint64_t refusals = 0;
  refusal_totals([&](const char*, std::uint64_t n) { refusals += n; });
  if (flags & AP_STATUS_SHORT) {
    ap_rprintf(r,
               "UriTokenSharing: %s\nUriTokenSidecar: %s\nUriTokenRevocations: %" APR_UINT64_T_FMT
               "\nUriTokenSightingsDropped: %" APR_UINT64_T_FMT
               "\n"
               "UriTokenRefusals: %" APR_UINT64_T_FMT "\n",
               mode,
               shared == nullptr ? "none"
               : sidecar_up      ? "up"
                                 : "down",
               static_cast<apr_uint64_t>(sc.revocations_in_table), static_cast<apr_uint64_t>(sc.sightings_dropped),
               static_cast<apr_uint64_t>(refusals));
    return OK;
  }
  ap_rprintf(r,
             "<hr><h2>mod_uritoken</h2><dl><dt>Link sharing: %s; sidecar %s</dt><dt>%" APR_UINT64_T_FMT
             " revocations in the table, "
             "%" APR_UINT64_T_FMT " sightings dropped (ring full), %" APR_UINT64_T_FMT
             " requests refused since the last restart</dt></dl>\n",
             mode,
             shared == nullptr ? "none"
             : sidecar_up      ? "up"
                               : "<b>down</b>",
             static_cast<apr_uint64_t>(sc.revocations_in_table), static_cast<apr_uint64_t>(sc.sightings_dropped),
             static_cast<apr_uint64_t>(refusals));
  return OK;
}

int handle_status(request_rec* r) {
  if (r->handler == nullptr || std::strcmp(r->handler, "uritoken-status") != 0) return DECLINED;
  r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST);
  if (r->method_number != M_GET && r->method_number != M_POST) return HTTP_METHOD_NOT_ALLOWED;
  if (!host_allowed(r)) {
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                  "UT00038: status page refused for Host '%s': not a name of this server (DNS rebinding?)",
                  r->hostname);
    return HTTP_MISDIRECTED_REQUEST;
  }
  const ServerConfig* conf = server_config(r);
  if (r->method_number == M_POST) return handle_action(r, conf);
  const View v = load(r, conf);
  apr_table_setn(r->headers_out, "Cache-Control", "no-store");
  apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
  apr_table_setn(r->headers_out, "Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
  if (r->header_only) return OK;
  if (has_flag(r, "json")) {
    render_json(r, conf, v);
  } else if (has_flag(r, "metrics")) {
    render_metrics(r, conf, v);
  } else {
    render_html(r, conf, v);
  }
  return OK;
}

}  // namespace uritoken::httpd
