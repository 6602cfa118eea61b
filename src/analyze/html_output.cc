#include "analyze/output.h"

namespace unbroken::analyze {

std::string render_html(const Report&) { return "<!doctype html><title>unbroken analyze</title>\n"; }

}  // namespace unbroken::analyze
