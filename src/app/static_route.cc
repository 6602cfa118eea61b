#include "app/static_route.h"

namespace unbroken::app {

void mount_static_files(http::Router& router, std::shared_ptr<const http::StaticFiles> files,
                        std::chrono::milliseconds revalidate_after) {
  router.set_fallback([files = std::move(files), revalidate_after](const http::ExchangePtr& ex) {
    const http::Request& req = ex->request();
    http::StaticRequest sr{req.method,
                           req.target,
                           req.header("if-none-match"),
                           req.header("if-modified-since"),
                           req.header("range"),
                           req.header("if-range"),
                           req.header("accept-encoding")};
    // The fallback runs on the loop threads: one cache each, no locks.
    thread_local http::StaticCache cache(revalidate_after);
    http::StaticResponse r = files->serve(sr, &cache);
    for (auto [k, v] : r.headers) ex->add_header(k, v);
    if (r.file.valid()) {
      ex->respond_file(r.status, std::move(r.file), r.offset, r.length);
    } else if (r.cached) {
      ex->respond(r.status, r.cached_body, "");
    } else {
      ex->respond(r.status, std::move(r.body), "");
    }
    cache.give_back(std::move(r.headers));
  });
}

}  // namespace unbroken::app
