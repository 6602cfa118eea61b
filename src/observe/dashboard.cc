#include "observe/dashboard.h"

namespace unbroken::embedded {
// Generated at build time from src/observe/dashboard/index.html by cmake/embed.cmake.
std::string_view dashboard_index_html();
}  // namespace unbroken::embedded

namespace unbroken::observe {

std::string_view dashboard_page() {
  return embedded::dashboard_index_html();
}

}  // namespace unbroken::observe
