// SPDX-License-Identifier: Apache-2.0
// The status report's verdicts (cluster/status_report.h): one schema for
// the status page's ?json and `uritoken blocked --json`, null for what a
// record lacks, and valid JSON whatever it holds, as Python's json module
// (a real parser, not ours) reads it.
#include "../../mod_uritoken/cluster/status_report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

using namespace uritoken;

namespace {

// Runs `script` (Python reading the JSON document `json` as `d`) and
// returns what it printed, or "ERROR ..." if Python could not parse it.
std::string python_reads(const std::string& json, const std::string& script) {
  char path[] = "/tmp/uritoken-report-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << json;
  const std::string command =
      "python3 -c 'import json,sys\ntry:\n d = json.load(open(sys.argv[1]))\nexcept "
      "Exception as e:\n print(\"ERROR\", e); sys.exit(0)\n" +
      script + "' " + path + " 2>&1";
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[4096];
    for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
  }
  std::remove(path);
  return out;
}

control::Record record(const char* kind) {
  control::Record r;
  r.kind = kind;
  return r;
}

}  // namespace

TEST(StatusReport, AMissingFieldIsNullAndTheDocumentStaysValid) {
  control::Record r = record("blocked");
  r.add("key", std::uint64_t{7});  // nothing else: an older or garbled record
  std::string out;
  report::append_json(out, std::vector<report::Verdict>{report::parse_verdict(r)});
  EXPECT_EQ(python_reads(out,
                         "e = d[0]\n"
                         "print(e[\"key_id\"], e[\"session\"], e[\"expires\"], e[\"network_count\"], e[\"first_seen\"],"
                         " e[\"score\"], e[\"bulk\"], e[\"networks\"], e[\"places\"], e[\"client\"])"),
            "7 None None None None None None [] [] None\n")
      << out;
}

TEST(StatusReport, HostileTextStaysInsideItsString) {
  control::Record r = record("blocked");
  r.add("key", std::uint64_t{12}).add("session", "0123456789abcdef").add("reason", "manual");
  r.add("comment", std::string("\"},{\"x\":1\n\t\x01 \xff\xfe end"));
  r.add("user", "</script><b>");
  r.add("nets", "198.51.100.0/24,\"]");
  r.add("score", "3.5,\"x\":1").add("limit", "3");
  std::string out;
  report::append_json(out, std::vector<report::Verdict>{report::parse_verdict(r)});
  EXPECT_EQ(python_reads(out,
                         "e = d[0]\n"
                         "print(repr(e[\"comment\"]), e[\"user\"], e[\"networks\"], e[\"score\"], e[\"limit\"])"),
            "'\"},{\"x\":1\\n\\t\\x01 \xef\xbf\xbd\xef\xbf\xbd end' </script><b> ['198.51.100.0/24', '\"]'] None "
            "3\n")
      << out;
}

TEST(StatusReport, ABlockedTokenCarriesItsEvidenceAndAPardonedOneDoesNot) {
  control::Record b = record("blocked");
  b.add("key", std::uint64_t{12}).add("session", "0123456789abcdef").add("since_ms", std::uint64_t{1799990000123});
  b.add("expires", std::uint64_t{1800000000}).add("reason", "bulk").add("origin", "media-eu-2");
  b.add("bulk_requests", std::uint64_t{900}).add("bulk_bytes", std::uint64_t{1} << 30);
  b.add("places", "AS7922 Comcast|2|c|13|1799989000|1799990000|US");
  report::Verdict blocked = report::parse_verdict(b);
  blocked.client = "shop-berlin";
  control::Record p = record("pardoned");
  p.add("key", std::uint64_t{12}).add("session", "fedcba9876543210").add("user", "alice");
  std::string out;
  report::append_json(out, std::vector<report::Verdict>{blocked, report::parse_verdict(p)});
  EXPECT_EQ(python_reads(out,
                         "print(list(d[0]))\nprint(list(d[1]))\n"
                         "print(d[0][\"since\"], d[0][\"client\"], d[0][\"bulk\"], d[0][\"places\"][0])"),
            "['key_id', 'session', 'kind', 'state', 'client', 'since', 'since_ms', 'expires', 'reason', 'networks', "
            "'network_count', "
            "'first_seen', 'last_seen', 'places', 'score', 'limit', 'bulk', 'decided_by', 'operator', 'user', "
            "'comment']\n"
            "['key_id', 'session', 'kind', 'state', 'client', 'since', 'since_ms', 'decided_by', 'operator', 'user', "
            "'comment']\n"
            "2027-01-15T05:13:20Z shop-berlin {'requests_per_min': 900, 'bytes_per_min': 1073741824} "
            "{'place': 'AS7922 Comcast', 'country': 'US', 'networks': 2, 'concurrent': True, 'weight': 1.3, "
            "'first_used': 1799989000, 'last_used': 1799990000}\n")
      << out;
}

TEST(StatusReport, AnEmptyListIsAnEmptyArray) {
  std::string out;
  report::append_json(out, std::vector<report::Verdict>{});
  EXPECT_EQ(out, "[]");
}
