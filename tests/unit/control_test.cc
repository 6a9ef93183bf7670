// Control protocol records (core/control.h): round trips with every byte
// that needs escaping, and refusal of malformed lines and truncated responses.
#include "../../mod_uritoken/core/control.h"

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
