#include "chaos/response_reader.h"

#include <gtest/gtest.h>

#include <string>

namespace unbroken::chaos {
namespace {

struct Result {
  int status = 0;
  std::uint64_t body = 0;
  bool complete = false;
  bool keep_alive = false;
};

// Feeds `wire` split at `split`, and reports what the reader made of its first response.
Result read(const std::string& wire, std::size_t split, bool close_after) {
  ResponseReader r;
  Result out;
  std::string_view rest = wire;
  for (std::string_view part : {rest.substr(0, split), rest.substr(split)}) {
    while (!part.empty() && !out.complete) {
      std::size_t used = 0;
      auto st = r.feed(part, used);
      part.remove_prefix(used);
      if (st == ResponseReader::Status::kError) return out;
      out.complete = st == ResponseReader::Status::kComplete;
      if (used == 0) break;
    }
  }
  if (!out.complete && close_after) out.complete = r.finish();
  out.status = r.status();
  out.body = r.body_bytes();
  out.keep_alive = r.keep_alive();
  return out;
}

TEST(ResponseReader, SameResultAtEverySplitPoint) {
  struct Case {
    const char* name;
    std::string wire;
    bool close_after;
    int status;
    std::uint64_t body;
    bool keep_alive;
  };
  const Case cases[] = {
      {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, 5, true},
      {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", false, 200, 5,
       true},
      {"until close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody-until-close", true, 200, 16, false},
      {"408 close", "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false, 408, 0,
       false},
      {"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, 200, 2, false},
  };
  for (const auto& c : cases) {
    for (std::size_t split = 0; split <= c.wire.size(); ++split) {
      Result r = read(c.wire, split, c.close_after);
      EXPECT_TRUE(r.complete) << c.name << " split " << split;
      EXPECT_EQ(r.status, c.status) << c.name << " split " << split;
      EXPECT_EQ(r.body, c.body) << c.name << " split " << split;
      EXPECT_EQ(r.keep_alive, c.keep_alive) << c.name << " split " << split;
    }
  }
}

TEST(ResponseReader, ACutShortBodyIsNotComplete) {
  ResponseReader r;
  std::size_t used = 0;
  EXPECT_EQ(r.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", used), ResponseReader::Status::kHead);
  EXPECT_FALSE(r.finish());
  EXPECT_EQ(r.body_bytes(), 3u);
}

TEST(ResponseReader, TwoResponsesOnOneConnection) {
  std::string wire = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nbc";
  ResponseReader r;
  std::size_t used = 0;
  ASSERT_EQ(r.feed(wire, used), ResponseReader::Status::kComplete);
  EXPECT_EQ(r.status(), 200);
  std::string_view rest = std::string_view(wire).substr(used);
  r.reset();
  ASSERT_EQ(r.feed(rest, used), ResponseReader::Status::kComplete);
  EXPECT_EQ(r.status(), 404);
  EXPECT_EQ(r.body_bytes(), 2u);
}

TEST(ResponseReader, GarbageIsAnError) {
  ResponseReader r;
  std::size_t used = 0;
  EXPECT_EQ(r.feed("SSH-2.0-OpenSSH_9.2\r\n", used), ResponseReader::Status::kError);
}

}  // namespace
}  // namespace unbroken::chaos
