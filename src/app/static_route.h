#pragma once
// Serves --root as the router's fallback: what no route matches is looked up as a file.

#include <memory>

#include "http/router.h"
#include "http/static_files.h"

namespace unbroken::app {

void mount_static_files(http::Router& router, std::shared_ptr<const http::StaticFiles> files);

}  // namespace unbroken::app
