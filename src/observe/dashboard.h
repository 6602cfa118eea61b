#pragma once
// The live dashboard page (src/observe/dashboard/index.html), compiled into the binary.

#include <string_view>

namespace unbroken::observe {

// The whole HTML page: inline CSS and JS, polling GET /dashboard/data every 2 s. Static storage,
// valid for the life of the process; safe from any thread.
std::string_view dashboard_page();

}  // namespace unbroken::observe
