#pragma once
// One `unbroken chaos --json` run as a child process, and its report parsed: for the chaos tests and
// for the proxy tests that aim the same mix at an application server directly and through unbroken.

#include <gtest/gtest.h>
#include <simdjson.h>

#include <memory>
#include <string>
#include <vector>

#include "integration/child_process.h"

namespace unbroken::testing {

struct ChaosRun {
  int exit_code = -1;
  std::string json;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;

  [[nodiscard]] std::uint64_t good(const char* field) const { return doc["good"][field].get_uint64().value_unsafe(); }
  [[nodiscard]] std::uint64_t reaction(const char* kind, const char* reaction) const {
    return doc["kinds"][kind][reaction].get_uint64().value_unsafe();
  }
  [[nodiscard]] std::uint64_t status(const char* kind, const char* code) const {
    auto v = doc["kinds"][kind]["statuses"][code].get_uint64();
    return v.error() ? 0 : v.value_unsafe();
  }
  [[nodiscard]] bool passed() const { return doc["verdict"]["passed"].get_bool().value_unsafe(); }
};

// Runs `unbroken chaos URL --json --duration SECONDSs --mix MIX EXTRA...` (its output in out_path),
// waits for it to end by itself, and parses its report; output that is not JSON fails the test.
inline std::unique_ptr<ChaosRun> run_chaos(const std::string& out_path, const std::string& url, const std::string& mix,
                                           int seconds, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{UNBROKEN_BINARY, "chaos", url, "--json", "--duration", std::to_string(seconds) + "s",
                                "--mix",         mix};
  args.insert(args.end(), extra.begin(), extra.end());
  auto run = std::make_unique<ChaosRun>();
  Child c(args, out_path);
  run->exit_code = c.wait(std::chrono::seconds(seconds + 20));
  std::string out = c.output();
  run->json = out.substr(out.find('{') == std::string::npos ? 0 : out.find('{'));
  auto parsed = run->parser.parse(run->json);
  EXPECT_FALSE(parsed.error()) << "not JSON: " << out;
  if (!parsed.error()) run->doc = parsed.value_unsafe();
  return run;
}

}  // namespace unbroken::testing
