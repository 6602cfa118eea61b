// A small program built on the unbroken library: one async route, one blocking route, and a
// graceful stop on Ctrl-C.
//
//   ./hello_server 127.0.0.1:8081
//   curl http://127.0.0.1:8081/hello
//   curl http://127.0.0.1:8081/slow-sum/50000000

#include <signal.h>

#include <charconv>
#include <cstdio>

#include "http/blocking_exchange.h"
#include "http/server.h"

using namespace unbroken;

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  auto addr = net::SocketAddress::parse(argc > 1 ? argv[1] : "127.0.0.1:8081");
  if (!addr) {
    std::fprintf(stderr, "usage: hello_server HOST:PORT\n");
    return 2;
  }

  http::Router router;
  // Async: runs on the loop thread and answers at once.
  router.add("GET", "/hello", [](const http::ExchangePtr& ex) { ex->respond(200, "hello, world\n"); });
  // Blocking: runs on the worker pool, checks the token so a departed client stops the work.
  router.add_blocking("GET", "/slow-sum/{n}", [](http::BlockingExchange& ex) {
    std::uint64_t n = 0;
    auto p = ex.request().params[0];
    std::from_chars(p.data(), p.data() + p.size(), n);
    std::uint64_t sum = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      sum += i;
      if (i % 1'000'000 == 0 && ex.cancelled()) return;  // the client left: stop working
    }
    ex.respond(200, std::to_string(sum) + "\n");
  });

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  http::ServerOptions opts;
  opts.listen = {*addr};
  opts.threads = 2;
  opts.workers = 2;
  http::Server server(opts, router, [](const http::RequestRecord& r) {
    std::printf("%.*s %d %s\n", static_cast<int>(r.path.size()), r.path.data(), r.status,
                std::string(http::name(r.outcome)).c_str());
  });
  if (auto r = server.start(); !r) {
    std::fprintf(stderr, "listen: %s\n", r.error().message().c_str());
    return 1;
  }
  std::fprintf(stderr, "listening on http://%s\n", server.addresses()[0].to_string().c_str());
  int sig = 0;
  sigwait(&sigs, &sig);
  server.drain();
  server.wait();
  return 0;
}
