#pragma once
// Serves --root as the router's fallback: what no route matches is looked up as a file.

#include <memory>

#include "http/router.h"
#include "http/static_files.h"

namespace unbroken::app {

// revalidate_after: how long a cached small file is served before the file system is asked again
// (each loop thread has one cache, made on its first request with the first mount's value).
void mount_static_files(http::Router& router, std::shared_ptr<const http::StaticFiles> files,
                        std::chrono::milliseconds revalidate_after = http::StaticCache::kRevalidateAfter);

}  // namespace unbroken::app
