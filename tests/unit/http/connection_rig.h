#pragma once
// A connection with its loop, routes and a fake transport, for tests that drive the state machine
// in memory (http_connection_test, exchange_test): records and closes are collected, the loop's timer
// wheel is advanced by hand.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/fake_transport.h"
#include "http/http_connection.h"

namespace unbroken::http {

using std::chrono::milliseconds;
using testing::FakeTransport;

struct Rec {
  std::string outcome, phase, timer, path;
  int status;
  bool cancelled;
  std::uint64_t bytes_out;
};

struct Rig {
  Rig() : loop_(std::move(*net::EventLoop::create())) {
    limits_.header_timeout = milliseconds(1000);
    limits_.body_timeout = milliseconds(1000);
    limits_.handler_timeout = milliseconds(1000);
    limits_.send_timeout = milliseconds(1000);
    limits_.keepalive_timeout = milliseconds(5000);
    router_.add("GET", "/sync", [](const ExchangePtr& ex) { ex->respond(200, "sync\n"); });
    router_.add("GET", "/async", [this](const ExchangePtr& ex) { held_ = ex; });
    router_.add("GET", "/stream", [this](const ExchangePtr& ex) {
      ex->start(200, 1000);
      ex->write("partial");
      held_ = ex;
    });
    router_.add("GET", "/throw", [](const ExchangePtr&) { throw std::runtime_error("boom"); });
    // Streams the body back as it comes, like /diag/echo: the head is queued before the body.
    router_.add(
        "POST", "/echo",
        [this](const ExchangePtr& ex) {
          held_ = ex;
          ex->start(200);
          ex->on_body([ex](std::string_view chunk) { ex->write(chunk); }, [ex] { ex->finish(); });
        },
        BodyMode::kStream);
    // A streamed-body consumer that pauses after each chunk while pause_on_chunk_ is set. held_ keeps
    // the exchange; the callbacks it owns hold it by pointer (owning would be a cycle).
    router_.add(
        "POST", "/sink",
        [this](const ExchangePtr& ex) {
          held_ = ex;
          Exchange* e = ex.get();
          ex->on_body(
              [this, e](std::string_view chunk) {
                sunk_ += chunk;
                if (pause_on_chunk_) e->pause_body();
              },
              [this, e] {
                sink_ended_ = true;
                e->respond(200, std::to_string(sunk_.size()));
              });
        },
        BodyMode::kStream);
    router_.add("GET", "/big", [](const ExchangePtr& ex) { ex->respond(200, std::string(64 * 1024, 'x')); });
    ctx_ = std::make_unique<LoopContext>(*loop_, limits_, router_, stats_);
    ctx_->record = [this](const RequestRecord& r) {
      records_.push_back(Rec{std::string(name(r.outcome)), std::string(name(r.phase)),
                             r.timer ? std::string(name(*r.timer)) : "", std::string(r.path), r.status, r.cancelled,
                             r.bytes_out});
    };
    ctx_->on_closed = [this](HttpConnection*) { ++closed_; };
    auto t = std::make_unique<FakeTransport>();
    transport_ = t.get();
    conn_ = std::make_unique<HttpConnection>(*ctx_, std::move(t), 1);
    conn_->start();
  }
  void advance(milliseconds by) { loop_->run_timers(loop_->now() + by); }

  std::unique_ptr<net::EventLoop> loop_;
  HttpLimits limits_;
  Router router_;
  LoopStats stats_;
  std::unique_ptr<LoopContext> ctx_;
  FakeTransport* transport_ = nullptr;
  std::unique_ptr<HttpConnection> conn_;
  std::vector<Rec> records_;
  ExchangePtr held_;
  std::string sunk_;
  bool pause_on_chunk_ = false;
  bool sink_ended_ = false;
  int closed_ = 0;
};

}  // namespace unbroken::http
