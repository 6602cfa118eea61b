// The dashboard's data is one JSON object whatever an application names its routes.

#include "observe/metrics.h"

#include <gtest/gtest.h>
#include <simdjson.h>

namespace unbroken::observe {
namespace {

TEST(DashboardData, RouteNamesAreEscaped) {
  const std::vector<std::string> names = {R"(GET /say/"hi")", R"(GET /back\slash)", "GET /tab\there", "GET /plain"};
  http::LoopStats loop(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    for (std::size_t n = 0; n <= i; ++n) loop.routes[i].requests.add();
    loop.routes[i].departures.add();
  }
  MetricsSources src;
  src.loops = {&loop};
  src.route_names = names;
  std::string json = render_dashboard_data(src);

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  simdjson::dom::array rows;
  ASSERT_EQ(doc["top_routes"].get(rows), simdjson::SUCCESS) << json;
  std::vector<std::string> seen;
  for (simdjson::dom::element row : rows) {
    std::string_view route;
    std::uint64_t requests = 0;
    ASSERT_EQ(row["route"].get(route), simdjson::SUCCESS) << json;
    ASSERT_EQ(row["requests"].get(requests), simdjson::SUCCESS) << json;
    auto at = std::find(names.begin(), names.end(), route);
    ASSERT_NE(at, names.end()) << route;
    EXPECT_EQ(requests, static_cast<std::uint64_t>(at - names.begin()) + 1) << route;
    seen.emplace_back(route);
  }
  EXPECT_EQ(seen.size(), names.size());
}

}  // namespace
}  // namespace unbroken::observe
