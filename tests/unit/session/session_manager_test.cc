// Head hooks that compose: the session layer's saver and two test hooks on one request, driven
// through a real connection on a fake transport and a real loop (the store's work comes back by
// post()). All three run, in the order they were added, each sees the request, and the response
// head waits for the last of them.

#include "session/session_manager.h"

#include <gtest/gtest.h>

#include "common/fake_transport.h"
#include "http/http_connection.h"
#include "session/memory_store.h"

namespace unbroken::session {
namespace {

using http::Exchange;
using http::ExchangePtr;
using namespace std::chrono_literals;

struct SessionHooks : ::testing::Test {
  SessionHooks() : loop_(std::move(*net::EventLoop::create())) {
    auto store = std::make_unique<MemoryStore>();
    store_ = store.get();
    sessions_ = std::make_unique<SessionManager>(std::move(store), SessionOptions{});
  }
  void connect() {
    ctx_ = std::make_unique<http::LoopContext>(*loop_, limits_, router_, stats_);
    auto t = std::make_unique<testing::FakeTransport>();
    transport_ = t.get();
    conn_ = std::make_unique<http::HttpConnection>(*ctx_, std::move(t), 1);
    conn_->start();
  }
  // Runs the loop until pred holds (checked every timer tick), at most `within`.
  bool run_until(const std::function<bool()>& pred, std::chrono::milliseconds within = 5s) {
    if (pred()) return true;
    auto deadline = std::chrono::steady_clock::now() + within;
    bool met = false;
    loop_->run_every(1ms, [&] {
      met = pred();
      if (met || std::chrono::steady_clock::now() > deadline) loop_->stop();
    });
    loop_->run();
    return met;
  }

  std::unique_ptr<net::EventLoop> loop_;
  http::HttpLimits limits_;
  http::Router router_;
  http::LoopStats stats_;
  std::unique_ptr<http::LoopContext> ctx_;
  testing::FakeTransport* transport_ = nullptr;
  std::unique_ptr<http::HttpConnection> conn_;
  MemoryStore* store_ = nullptr;
  std::unique_ptr<SessionManager> sessions_;
};

TEST_F(SessionHooks, SessionSaverAndTestHooksRunInOrderAndTheHeadWaitsForAll) {
  std::vector<std::string> ran;
  Exchange::HookDone first_done, last_done;
  std::string id_seen_by_last;
  router_.add("GET", "/both", [&](const ExchangePtr& ex) {
    // A test hook added before the session layer's, and one after it.
    ex->add_head_hook([&](Exchange& e, Exchange::HookDone done) {
      ran.push_back("first " + e.request().target);
      first_done = std::move(done);
    });
    sessions_->with_session(ex, [&, ex](Session& s) {
      s.set("k", "v");
      ex->add_head_hook([&](Exchange& e, Exchange::HookDone done) {
        ran.push_back("last " + e.request().target);
        last_done = std::move(done);
      });
      id_seen_by_last = s.id();
      ex->respond(200, "hello\n");
    });
  });
  connect();
  transport_->receive("GET /both?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(ran, std::vector<std::string>{"first /both?x=1"});
  EXPECT_EQ(transport_->out_, "");  // held behind the first hook

  first_done(Exchange::HookVerdict::proceed());
  // The session hook saves on the manager's threads, then the last hook runs.
  ASSERT_TRUE(run_until([&] { return ran.size() == 2; }));
  EXPECT_EQ(ran[1], "last /both?x=1");
  EXPECT_EQ(transport_->out_, "");  // still held: the last hook has not proceeded
  auto saved = store_->load(id_seen_by_last, Clock::now());
  ASSERT_TRUE(saved.ok());
  ASSERT_TRUE(saved->has_value()) << "the session is saved before the hooks after it run";
  EXPECT_EQ((*saved)->values.at("k"), "v");

  last_done(Exchange::HookVerdict::proceed());
  EXPECT_TRUE(transport_->out_.starts_with("HTTP/1.1 200 OK\r\n"));
  EXPECT_NE(transport_->out_.find("Set-Cookie: ub_session=" + id_seen_by_last), std::string::npos);
  EXPECT_TRUE(transport_->out_.ends_with("hello\n"));
}

}  // namespace
}  // namespace unbroken::session
