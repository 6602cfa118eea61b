// libFuzzer target: the response parser. The input's first byte picks a split point, its second
// says whether the first response answers HEAD and whether the server closes after the bytes; the
// rest is the stream. Fed whole and split, the same bytes must give the same trace (interim heads,
// messages with their status, fields, body and keep-alive, an upgrade with what is left after it,
// the error text): a client whose reading depends on how TCP cut the stream is a desync bug. The
// parser's body count must match the bytes its sink saw.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/collect_body.h"
#include "http/response_parser.h"

namespace {

using Body = unbroken::testing::CollectBody;
using unbroken::http::ParserLimits;
using unbroken::http::ResponseParser;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "broken: %s\n", what);
    std::abort();
  }
}

std::string message(const ResponseParser& p, const Body& body) {
  const auto& r = p.response();
  check(p.body_bytes() == body.body.size(), "body_bytes() differs from what the sink saw");
  std::string out = "message " + std::to_string(r.status) + " " + r.reason + " " + std::to_string(body.body.size()) +
                    ":" + body.body + (r.keep_alive ? " ka;" : " close;");
  for (auto [k, v] : r.headers) out.append(k).append(":").append(v).append(";");
  for (auto [k, v] : r.trailers) out.append("trailer ").append(k).append(":").append(v).append(";");
  return out;
}

std::string drive(std::string_view data, std::size_t split, bool head, bool eof) {
  ResponseParser p(ParserLimits{4096, 32, 64 * 1024});
  p.expect_response_to(head ? "HEAD" : "GET");
  Body body;
  std::string trace;
  std::vector<std::string_view> chunks{data.substr(0, split), data.substr(split)};
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    std::string_view chunk = chunks[i];
    while (!chunk.empty()) {
      auto r = p.feed(chunk, &body);
      check(r.consumed <= chunk.size(), "consumed more than it was given");
      chunk.remove_prefix(r.consumed);
      switch (r.status) {
        case ResponseParser::Status::kNeedMore: check(chunk.empty(), "kNeedMore with bytes left"); break;
        case ResponseParser::Status::kHead: trace += "head;"; continue;
        case ResponseParser::Status::kInterim:
          trace += "interim " + std::to_string(p.response().status) + ";";
          continue;
        case ResponseParser::Status::kMessage:
          trace += message(p, body);
          body.body.clear();
          p.expect_response_to("GET");
          continue;
        case ResponseParser::Status::kUpgrade: {
          std::string rest(chunk);
          for (std::size_t j = i + 1; j < chunks.size(); ++j) rest.append(chunks[j]);
          return trace + "upgrade " + std::to_string(p.response().status) + " rest " + rest;
        }
        case ResponseParser::Status::kError: return trace + "error " + std::string(p.error_reason());
      }
      break;
    }
  }
  if (eof) {
    auto end = p.finish();
    if (end == ResponseParser::Status::kMessage) trace += "eof " + message(p, body);
    if (end == ResponseParser::Status::kError) trace += "cut " + std::string(p.error_reason());
  }
  return trace;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  bool head = data[1] & 1;
  bool eof = data[1] & 2;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);
  std::size_t split = input.empty() ? 0 : data[0] % (input.size() + 1);
  std::string whole = drive(input, input.size(), head, eof);
  std::string cut = drive(input, split, head, eof);
  if (whole != cut) {
    std::fprintf(stderr, "fed whole: %s\nsplit at %zu: %s\n", whole.c_str(), split, cut.c_str());
    std::abort();
  }
  return 0;
}
