// SPDX-License-Identifier: Apache-2.0
// The client-site API: `SetHandler uritoken-client-api` in a Location.
// A client site revokes its own tokens (POST) and reads its verdicts (GET)
// with requests signed by its own key (core/client_api.h); the node checks
// the signature here, its sidecar the nonce, and the revocation spreads
// like any verdict. docs/client-api.md.
#include <httpd.h>
// after httpd.h
#include <apr_strings.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "../cluster/control_client.h"
#include "../cluster/json.h"
#include "../cluster/status_report.h"
#include "../core/client_api.h"
#include "../core/token.h"
#include "config.h"
#include "status.h"

APLOG_USE_MODULE(uritoken);

namespace uritoken::httpd {
namespace {

using client_api::Problem;

// The body, at most kMaxBodyBytes; false if it is larger or unreadable.
bool read_body(request_rec* r, std::string* body) {
  if (ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK) != OK) return false;
  if (!ap_should_client_block(r)) return true;
  char buf[1024];
  for (;;) {
    const long n = ap_get_client_block(r, buf, sizeof buf);
    if (n < 0) return false;
    if (n == 0) return true;
    body->append(buf, static_cast<std::size_t>(n));
    if (body->size() > client_api::kMaxBodyBytes) return false;
  }
}

void append_json(std::string& out, const std::string& s) { json_string(out, s); }

int answer_json(request_rec* r, int status, const std::string& json) {
  r->status = status;
  ap_set_content_type(r, "application/json");
  apr_table_setn(r->headers_out, "Cache-Control", "no-store");
  apr_table_setn(r->headers_out, "X-Content-Type-Options", "nosniff");
  ap_rwrite(json.data(), static_cast<int>(json.size()), r);
  return OK;
}

// A refusal: logged (rate-limited, with the client only once it is
// authenticated) and answered {"error": reason, "message": ...}.
int refuse(request_rec* r, Problem p, const std::string& message, const char* client = nullptr) {
  if (refusal_log_allowed(r, Refusal::client_api)) {
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, "UT00059: client-site API request refused (%s)%s%s: %s",
                  client_api::problem_name(p), client ? " for client " : "", client ? client : "", message.c_str());
  }
  std::string json = "{\"error\":";
  append_json(json, std::string(client_api::problem_name(p)));
  json += ",\"message\":";
  append_json(json, message);
  json += "}\n";
  return answer_json(r, client_api::problem_http_status(p), json);
}

// The sidecar's "ok" answer; otherwise the refusal or a 503 is written
// and *status set.
std::optional<std::vector<control::Record>> ask(request_rec* r, const ServerConfig* conf, const control::Record& req,
                                                const char* client, int* status) {
  control::CallResult result = control::call(conf->cluster->state_dir + "/" + control::kSocketName, req);
  if (result.ok()) return std::move(result.records);
  if (result.error == control::CallError::refused && !result.records.empty()) {
    const std::string problem = result.records[0].get("problem").value_or("");
    for (Problem p : {Problem::replayed, Problem::expired_token, Problem::bad_request, Problem::superseded}) {
      if (problem == client_api::problem_name(p)) {
        *status = refuse(r, p, result.message, client);
        return std::nullopt;
      }
    }
  }
  ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "UT00060: client-site API for client %s: the sidecar did not answer: %s",
                client, result.message.c_str());
  *status = answer_json(r, HTTP_SERVICE_UNAVAILABLE,
                        "{\"error\":\"unavailable\",\"message\":\"the cluster is not reachable on this node; try "
                        "another node\"}\n");
  return std::nullopt;
}

const char* nonce_of(request_rec* r) { return apr_table_get(r->headers_in, "X-UriToken-Nonce"); }

int revoke(request_rec* r, const ServerConfig* conf, const Key& key, const std::string& body) {
  client_api::RevokeRequest what;
  std::string why;
  const std::int64_t now = apr_time_sec(r->request_time);
  if (const Problem p = client_api::parse_revoke(body, *conf->keys, key.client, now, &what, &why); p != Problem::ok) {
    return refuse(r, p, why, key.client.c_str());
  }
  if (what.subscriber) {
    // Every token of the subscriber issued until now; the verdict lasts as
    // long as the longest token this node accepts.
    what.expires = static_cast<std::uint32_t>(now + max_ttl_seconds(conf) + clock_skew_seconds(conf));
  }
  control::Record req;
  req.kind = "client-revoke";
  req.add("client", key.client).add("nonce", nonce_of(r));
  req.add("key", what.key_id).add("session", session_hex(what.session)).add("expires", what.expires);
  req.add("operator", r->useragent_ip ? r->useragent_ip : "-");
  if (!what.comment.empty()) req.add("comment", what.comment);
  if (what.issued_before != 0) req.add("issued_before", what.issued_before);
  int status = OK;
  const auto answer = ask(r, conf, req, key.client.c_str(), &status);
  if (!answer) return status;
  const std::string session = session_hex(what.session);
  const std::string stamp = (*answer)[0].get("stamp_ms").value_or("0");
  std::string subscriber;
  if (what.subscriber) {
    subscriber = session_hex(*what.subscriber);
  }
  const std::string revoked =
      !what.subscriber ? "key " + std::to_string(what.key_id) + " session " + session
      : what.issued_before != 0
          ? "every token issued before " + std::to_string(what.issued_before) + " of subscriber " + subscriber
          : "every token so far of subscriber " + subscriber;
  ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, "UT00061: client site %s (from %s) revoked %s in the cluster",
                key.client.c_str(), r->useragent_ip ? r->useragent_ip : "-", revoked.c_str());
  std::string json = "{\"revoked\":{" + (what.subscriber ? "\"subscriber\":\"" + subscriber + "\"," : std::string()) +
                     "\"key_id\":" + std::to_string(what.key_id) + ",\"session\":\"" + session +
                     "\",\"expires\":" + std::to_string(what.expires) + ",\"since_ms\":";
  json_decimal(json, stamp);
  json += "}}\n";
  return answer_json(r, HTTP_OK, json);
}

// The client's keys, every state: its verdicts are those of its tokens.
std::string keys_of(const KeyRing& keys, const std::string& client) {
  std::string list;
  for (const auto& k : keys.keys()) {
    if (k->client == client) list += (list.empty() ? "" : ",") + std::to_string(k->id);
  }
  return list;
}

int feed(request_rec* r, const ServerConfig* conf, const Key& key) {
  client_api::FeedQuery query;
  std::string why;
  if (const Problem p = client_api::parse_feed_query(r->args ? r->args : "", &query, &why); p != Problem::ok) {
    return refuse(r, p, why, key.client.c_str());
  }
  control::Record req;
  req.kind = "client-feed";
  req.add("client", key.client).add("nonce", nonce_of(r)).add("keys", keys_of(*conf->keys, key.client));
  if (query.after.stamp_ms != 0) req.add("after", client_api::format_cursor(query.after));
  req.add("limit", query.limit);
  int status = OK;
  const auto answer = ask(r, conf, req, key.client.c_str(), &status);
  if (!answer) return status;
  std::vector<report::Verdict> verdicts;
  std::string next, more = "0";
  for (const control::Record& rec : *answer) {
    if (rec.kind == "blocked" || rec.kind == "pardoned") {
      report::Verdict v = report::parse_verdict(rec, conf->keys);
      if (v.reason.value_or("") != "client") {  // an operator's address and name stay in the cluster
        v.operator_address.reset();
        v.user.reset();
      }
      verdicts.push_back(std::move(v));
    } else if (rec.kind == "page") {
      next = rec.get("next").value_or("");
      more = rec.get("more").value_or("0");
    }
  }
  std::string json = "{\"client\":";
  append_json(json, key.client);
  json += ",\"verdicts\":";
  report::append_json(json, verdicts);
  json += ",\"next\":";
  append_json(json, next);
  json += std::string(",\"more\":") + (more == "1" ? "true" : "false") + "}\n";
  return answer_json(r, HTTP_OK, json);
}

// The request target as the client sent it, which it signed.
std::string_view target_of(const request_rec* r) { return r->unparsed_uri ? r->unparsed_uri : ""; }

}  // namespace

int handle_client_api(request_rec* r) {
  if (r->handler == nullptr || std::strcmp(r->handler, "uritoken-client-api") != 0) return DECLINED;
  r->allowed = (AP_METHOD_BIT << M_GET) | (AP_METHOD_BIT << M_POST);
  if (r->method_number != M_GET && r->method_number != M_POST) return HTTP_METHOD_NOT_ALLOWED;
  const ServerConfig* conf = server_config(r);
  if (!client_api_plain_http_allowed(conf) && !connection_is_tls(r->connection)) {
    return refuse(r, Problem::plain_http, "this API answers over HTTPS only (UriTokenClientApiPlainHTTP)");
  }
  if (conf->keys == nullptr || conf->cluster == nullptr || conf->cluster->state_dir.empty()) {
    return answer_json(r, HTTP_SERVICE_UNAVAILABLE,
                       "{\"error\":\"unavailable\",\"message\":\"this node has no cluster (UriTokenStateDir)\"}\n");
  }
  std::string body;
  if (!read_body(r, &body)) {
    return refuse(r, Problem::too_large, "the body is over " + std::to_string(client_api::kMaxBodyBytes) + " bytes");
  }
  client_api::Auth auth;
  const Problem parsed = client_api::parse_auth(apr_table_get(r->headers_in, "X-UriToken-Key"),
                                                apr_table_get(r->headers_in, "X-UriToken-Time"), nonce_of(r),
                                                apr_table_get(r->headers_in, "X-UriToken-Signature"), &auth);
  if (parsed != Problem::ok) {
    return refuse(r, parsed,
                  "sign the request: X-UriToken-Key, X-UriToken-Time, X-UriToken-Nonce (16 to 64 base64url "
                  "characters) and X-UriToken-Signature (docs/client-api.md)");
  }
  const Key* key = nullptr;
  const Problem checked =
      client_api::authenticate(*conf->keys, auth, r->method, target_of(r), body, apr_time_sec(r->request_time), &key);
  if (checked != Problem::ok) {
    const std::string message = checked == Problem::stale ? "X-UriToken-Time is more than 60 s from this node's clock"
                                                          : "key " + std::to_string(auth.key_id) + ": not accepted";
    return refuse(r, checked, message);
  }
  return r->method_number == M_POST ? revoke(r, conf, *key, body) : feed(r, conf, *key);
}

}  // namespace uritoken::httpd
