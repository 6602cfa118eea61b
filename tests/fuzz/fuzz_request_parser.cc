// libFuzzer target: the request parser wrapper. The same bytes fed whole and split at a point the
// input chooses must give the same sequence of results (head, message, error status) and the same
// request: a parser that depends on how TCP cut the stream is a smuggling bug.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/collect_body.h"
#include "http/request_parser.h"

namespace {

using Body = unbroken::testing::CollectBody;
using unbroken::http::ParserLimits;
using unbroken::http::RequestParser;

// What a parse produced, as comparable text.
std::string drive(std::string_view data, std::size_t split) {
  RequestParser p(ParserLimits{4096, 32, 64 * 1024});
  Body body;
  std::string trace;
  std::vector<std::string_view> chunks{data.substr(0, split), data.substr(split)};
  for (std::string_view chunk : chunks) {
    while (!chunk.empty()) {
      auto r = p.feed(chunk, &body);
      chunk.remove_prefix(r.consumed);
      switch (r.status) {
        case RequestParser::Status::kNeedMore: break;
        case RequestParser::Status::kHead: trace += "head;"; break;
        case RequestParser::Status::kError: return trace + "error " + std::to_string(p.error_status());
        case RequestParser::Status::kMessage: {
          const auto& req = p.request();
          trace += "message " + req.method + " " + req.target + " " + std::to_string(req.headers.size()) + " " +
                   std::to_string(body.body.size()) + (req.keep_alive ? " ka;" : " close;");
          for (auto [k, v] : req.headers) trace.append(k).append(":").append(v).append(";");
          body.body.clear();
          break;
        }
      }
      if (r.consumed == 0 && r.status == RequestParser::Status::kNeedMore) break;
    }
  }
  return trace;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t split = data[0] % size;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  split = std::min(split, input.size());
  std::string whole = drive(input, input.size());
  std::string cut = drive(input, split);
  if (whole != cut) {
    std::fprintf(stderr, "fed whole: %s\nsplit at %zu: %s\n", whole.c_str(), split, cut.c_str());
    std::abort();
  }
  return 0;
}
