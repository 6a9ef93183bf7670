// SPDX-License-Identifier: Apache-2.0
// Control protocol records (cluster/control.h): round trips with every byte
// that needs escaping, and refusal of malformed lines and truncated responses.
#include "../../mod_uritoken/cluster/control.h"
#include "../../mod_uritoken/cluster/json.h"

#include <gtest/gtest.h>

using namespace uritoken::control;

namespace {

TEST(Control, RecordsRoundTripWithAwkwardValues) {
  Record r;
  r.kind = "blocked";
  r.add("key", 12).add("session", "0123456789abcdef").add("comment", "tab\there, newline\nthere, 100% = a=b\r\x01");
  r.add("empty", "");
  const std::string line = encode(r);
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
  const auto back = decode(std::string_view(line).substr(0, line.size() - 1));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, "blocked");
  EXPECT_EQ(back->fields, r.fields);
  EXPECT_EQ(back->get_u64("key"), 12u);
  EXPECT_EQ(back->get_u64("session", 16), 0x0123456789abcdefULL);
  EXPECT_FALSE(back->get("missing"));
  EXPECT_FALSE(back->get_u64("comment"));
}

TEST(Control, MalformedLinesAndTruncatedResponsesAreRefused) {
  for (const char* bad : {"", "Bad", "kind\tnoequals", "kind\t=v", "kind\tname=%zz", "kind\tname=%4", "kind\tna me=v",
                          "kind\tname=a\rb"}) {
    EXPECT_FALSE(decode(bad)) << bad;
  }
  Record ok;
  ok.kind = "ok";
  const std::string all = encode_all({ok, ok});
  EXPECT_TRUE(decode_all(all));
  EXPECT_EQ(decode_all(all)->size(), 2u);
  EXPECT_FALSE(decode_all(all.substr(0, all.size() - 4))) << "no end line";
  EXPECT_FALSE(decode_all(all + "x\n")) << "data after end";
  EXPECT_FALSE(decode_all("ok"));
}

}  // namespace

TEST(Control, PlacesFieldParsesAndSkipsMalformedEntries) {
  const auto places = parse_places(
      "AS7922 Comcast, LLC|2|c|13;net 452923ca|1|s|5;bad|x|c|10;short|1|c;"
      "odd|1|q|10;|1|c|10;extra|1|c|10|9;198.51.0.0/16|1|c|10");
  ASSERT_EQ(places.size(), 3u);
  EXPECT_EQ(places[0].name, "AS7922 Comcast, LLC");
  EXPECT_EQ(places[0].networks, 2u);
  EXPECT_TRUE(places[0].concurrent);
  EXPECT_DOUBLE_EQ(places[0].weight, 1.3);
  EXPECT_EQ(places[1].name, "net 452923ca");
  EXPECT_FALSE(places[1].concurrent);
  EXPECT_DOUBLE_EQ(places[1].weight, 0.5);
  EXPECT_EQ(places[2].name, "198.51.0.0/16");
  EXPECT_EQ(places[0].first_s, 0u) << "before protocol 4: no times";
  EXPECT_TRUE(parse_places("").empty());
  // Protocol 4: first and last use, and the country.
  const auto timed = parse_places(
      "AS7922 Comcast|2|c|13|1790000000|1790000300|US;net 1|1|s|5|0|0|;"
      "bad|1|c|10|x|0|;lower|1|c|10|1|2|us;long|1|c|10|1|2|USA;big|1|c|10|12345678901|2|");
  ASSERT_EQ(timed.size(), 2u);
  EXPECT_EQ(timed[0].first_s, 1790000000u);
  EXPECT_EQ(timed[0].last_s, 1790000300u);
  EXPECT_EQ(timed[0].country, "US");
  EXPECT_EQ(timed[1].name, "net 1");
  EXPECT_EQ(timed[1].country, "");
}

TEST(Control, ByteCountsForPeople) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(42000), "41.0 KiB");
  EXPECT_EQ(format_bytes(500ull << 20), "500.0 MiB");
  EXPECT_EQ(format_bytes(3ull << 29), "1.5 GiB");
  EXPECT_EQ(format_bytes(~0ull), "16384.0 PiB");
}

// The status page and the CLI copy these record fields into JSON.
TEST(Control, DecimalFieldsBecomeJsonNumbersOrNull) {
  const auto as_json = [](const char* s) {
    std::string out;
    uritoken::json_decimal(out, s);
    return out;
  };
  EXPECT_EQ(as_json("3"), "3");
  EXPECT_EQ(as_json("4.00"), "4.00");
  for (const char* bad : {"", ".5", "5.", "1.2.3", "-1", "1e5", "4,00", "null", "3 "})
    EXPECT_EQ(as_json(bad), "null") << bad;
  std::string s;
  uritoken::json_string(s, "a\"b\\\n");
  EXPECT_EQ(s, "\"a\\\"b\\\\\\n\"");
}
