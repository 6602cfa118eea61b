// The shared text helpers, as tables: case folding, OWS trimming, and JSON strings that are valid
// JSON whatever bytes go in.

#include "base/text.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>
#include <vector>

namespace unbroken {
namespace {

TEST(Text, Iequals) {
  struct Row {
    std::string_view a, b;
    bool equal;
  };
  const Row rows[] = {
      {"Content-Length", "content-length", true},
      {"HOST", "host", true},
      {"", "", true},
      {"gzip", "GZIP", true},
      {"gzip", "gzip2", false},
      {"a", "b", false},
      {"[", "{", false},                // 0x5b and 0x7b differ by 32 but are not letters
      {"\xc3\x89", "\xc3\xa9", false},  // ASCII only: É and é differ
  };
  for (const Row& r : rows) EXPECT_EQ(iequals(r.a, r.b), r.equal) << r.a << " / " << r.b;
}

TEST(Text, TrimOws) {
  const std::pair<std::string_view, std::string_view> rows[] = {{"  gzip\t", "gzip"}, {"\t \t", ""},     {"", ""},
                                                                {"a b", "a b"},       {" \r\n", "\r\n"}, {"x ", "x"}};
  for (auto [in, out] : rows) EXPECT_EQ(trim_ows(in), out) << '"' << in << '"';
}

TEST(Text, NextListElementSplitsAtCommasAndTrimsEachMember) {
  struct Row {
    std::string_view list;
    std::vector<std::string_view> members;
  };
  const Row rows[] = {
      {"gzip, chunked", {"gzip", "chunked"}},
      {"chunked", {"chunked"}},
      {" a ,\tb\t,c ", {"a", "b", "c"}},
      {"a,,b", {"a", "", "b"}},  // empty members come back empty
      {"a,", {"a"}},             // a trailing comma ends the list
      {",", {""}},
      {"", {}},
  };
  for (const Row& r : rows) {
    std::string_view list = r.list;
    std::vector<std::string_view> got;
    while (!list.empty()) got.push_back(next_list_element(list));
    EXPECT_EQ(got, r.members) << '"' << r.list << '"';
  }
}

TEST(Text, JsonStringIsValidJsonAndRoundTrips) {
  struct Row {
    std::string in;
    std::string json;  // expected output
  };
  const Row rows[] = {
      {"plain", R"("plain")"},
      {R"(GET /say/"hi")", R"("GET /say/\"hi\"")"},
      {R"(a\b)", R"("a\\b")"},
      {"\r\n\t", R"("\r\n\t")"},
      {std::string("\0\x1f\x7f", 3), R"("\u0000\u001f\u007f")"},
      {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
      {"\xff\xc3", R"("\u00ff\u00c3")"},  // not UTF-8: escaped byte by byte
  };
  simdjson::dom::parser parser;
  for (const Row& r : rows) {
    std::string s;
    append_json_string(s, r.in);
    EXPECT_EQ(s, r.json);
    fmt::memory_buffer buf;  // the access log's buffer type gives the same bytes
    append_json_string(buf, r.in);
    EXPECT_EQ(fmt::to_string(buf), r.json);
    std::string_view back;
    ASSERT_EQ(parser.parse(s).get(back), simdjson::SUCCESS) << s;
    if (r.in != "\xff\xc3") {
      EXPECT_EQ(back, r.in);
    }
  }
}

}  // namespace
}  // namespace unbroken
