// libFuzzer target: a whole HTTP connection in memory (no sockets), driven by a script the input
// encodes: bytes arriving in pieces, the "kernel" taking output, time passing, the peer's FIN or
// RST, an async handler answering late, a streamed body paused and resumed. Sanitizers catch memory errors; the checks
// below catch a connection that answers after it closed, or records more ends than it had requests.

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "common/fake_transport.h"
#include "http/http_connection.h"

namespace {

using namespace unbroken;
using namespace unbroken::http;
using std::chrono::milliseconds;

struct Rig {
  Rig() : loop(std::move(*net::EventLoop::create())) {
    limits.header_timeout = limits.body_timeout = limits.handler_timeout = limits.send_timeout = milliseconds(1000);
    limits.keepalive_timeout = milliseconds(5000);
    limits.max_header_bytes = 4096;
    limits.max_body = 64 * 1024;
    router.add("GET", "/sync", [](const ExchangePtr& ex) { ex->respond(200, "sync\n"); });
    router.add("GET", "/async", [this](const ExchangePtr& ex) { held = ex; });
    router.add("GET", "/stream", [this](const ExchangePtr& ex) {
      ex->start(200);
      ex->write("partial");
      held = ex;
    });
    router.add("POST", "/echo", [](const ExchangePtr& ex) { ex->respond(200, ex->request().body); });
    router.add("GET", "/throw", [](const ExchangePtr&) { throw std::runtime_error("boom"); });
    // A slow consumer: pauses after every chunk; the script resumes it (op 5). The callbacks hold
    // the exchange by pointer (they are its own: owning it would be a cycle).
    router.add(
        "POST", "/sink",
        [this](const ExchangePtr& ex) {
          held = ex;
          Exchange* e = ex.get();
          ex->on_body([e](std::string_view) { e->pause_body(); }, [e] { e->respond(200, "sunk\n"); });
        },
        BodyMode::kStream);
    ctx = std::make_unique<LoopContext>(*loop, limits, router, stats);
    ctx->record = [this](const RequestRecord&) { ++records; };
    ctx->on_closed = [this](HttpConnection*) { ++closes; };
    auto t = std::make_unique<testing::FakeTransport>();
    transport = t.get();
    conn = std::make_unique<HttpConnection>(*ctx, std::move(t), 1);
    conn->start();
  }

  std::unique_ptr<net::EventLoop> loop;
  HttpLimits limits;
  Router router;
  LoopStats stats;
  std::unique_ptr<LoopContext> ctx;
  testing::FakeTransport* transport = nullptr;
  std::unique_ptr<HttpConnection> conn;
  ExchangePtr held;
  int records = 0;
  int closes = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Rig rig;
  std::size_t i = 0;
  while (i < size && !rig.conn->closed()) {
    std::uint8_t op = data[i++];
    std::size_t arg = i < size ? data[i++] : 0;
    switch (op % 8) {
      case 0:
      case 1:
      case 2: {  // bytes arrive: the next `arg` bytes of the input
        std::size_t n = std::min(arg, size - i);
        rig.transport->receive(std::string_view(reinterpret_cast<const char*>(data) + i, n));
        i += n;
        break;
      }
      case 3: rig.transport->drain(arg * 16); break;  // the kernel takes some output
      case 4: rig.loop->run_timers(rig.loop->now() + milliseconds(arg * 20)); break;
      case 5:  // the async handler answers, streams on, or finishes
        if (rig.held) {
          if (arg % 3 == 0) rig.held->respond(200, "late\n");
          if (arg % 3 == 1) rig.held->write("more");
          if (arg % 3 == 2) rig.held->finish();
          if (arg % 5 == 4) rig.held->resume_body();
          if (arg % 2 == 0) rig.held.reset();
        }
        break;
      case 6: rig.transport->handler_->on_peer_closed(); break;
      case 7:
        rig.transport->handler_->on_transport_error(arg % 2 ? net::SocketError::kReset : net::SocketError::kBrokenPipe);
        break;
    }
    rig.loop->run_timers(rig.loop->now());  // end of a turn: deferred work runs
  }
  // A connection that closed sends nothing more, whatever a handler still holding its exchange does.
  bool closed = rig.conn->closed();
  std::size_t out_at_close = rig.transport->out_.size();
  if (rig.held) rig.held->respond(200, "after\n");
  rig.held.reset();
  rig.loop->run_timers(rig.loop->now() + milliseconds(10'000));
  if (closed && rig.transport->out_.size() != out_at_close) std::abort();
  if (rig.closes > 1) std::abort();
  return 0;
}
