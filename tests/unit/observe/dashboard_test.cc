// The dashboard page colours outcomes, phases and timers by their wire names: the names it knows
// are the schema's (base/record_schema.h), in the schema's order. A name the page lacks would still
// be drawn (in a spare colour), so only this test notices when the two part.

#include "observe/dashboard.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "base/record_schema.h"
#include "http/stats.h"

namespace unbroken::observe {
namespace {

// The names of `const LIST = [['name', '#colour'], ...];` in the page's script.
std::vector<std::string> page_list(const std::string& list) {
  std::string page(dashboard_page());
  std::smatch m;
  if (!std::regex_search(page, m, std::regex("const " + list + R"( = \[([^;]*)\];)"))) return {};
  std::string body = m[1];
  std::vector<std::string> names;
  std::regex entry(R"(\['([a-z_]+)', *'#[0-9a-f]{6}'\])");
  for (auto it = std::sregex_iterator(body.begin(), body.end(), entry); it != std::sregex_iterator(); ++it)
    names.push_back((*it)[1]);
  return names;
}

template <std::size_t N>
std::vector<std::string> names(const std::array<std::string_view, N>& a, std::size_t from, std::size_t to) {
  return {a.begin() + static_cast<std::ptrdiff_t>(from), a.begin() + static_cast<std::ptrdiff_t>(to)};
}

TEST(DashboardPage, KnowsTheSchemasNames) {
  // Departures only (ok is no departure), every phase, the timers a client meets (as /metrics counts).
  EXPECT_EQ(page_list("OUTCOMES"), names(schema::kOutcomeNames, 1, schema::kOutcomeCount));
  EXPECT_EQ(page_list("PHASES"), names(schema::kPhaseNames, 0, schema::kPhaseCount));
  EXPECT_EQ(page_list("TIMERS"), names(schema::kTimerNames, 0, schema::kClientTimerCount));
  EXPECT_EQ(page_list("PHASES").back(), "tls_handshake");
  EXPECT_EQ(page_list("TIMERS").back(), "tls_handshake");
}

// The TLS panel's results are /metrics' and /dashboard/data's (http::TlsResult), in their order.
TEST(DashboardPage, KnowsTheTlsHandshakeResults) {
  std::vector<std::string> results;
  for (std::size_t k = 0; k < http::kTlsResultCount; ++k)
    results.emplace_back(http::name(static_cast<http::TlsResult>(k)));
  EXPECT_EQ(page_list("TLS_RESULTS"), results);
}

}  // namespace
}  // namespace unbroken::observe
