// How a connection ends after its last response: at once when its client asked to close and sent
// nothing more, with a lingering close otherwise (see HttpConnection::can_close_at_once). The fake
// transport plays a socket whose last read emptied it (drained_) and whose kernel has every byte
// acknowledged (acked_all_), as on loopback.

#include <gtest/gtest.h>

#include "connection_rig.h"

namespace unbroken::http {
namespace {

struct CloseCase {
  const char* name;
  std::string input;
  int status;
  bool at_once;  // closed without FIN-and-linger
  const char* outcome;
  // With bytes after the request: a split here gives the request a read of its own, with nothing
  // after it yet, so the close is at once there (what comes later meets a closed socket: the client
  // broke its own Connection: close).
  std::size_t alone_at = std::string::npos;
};

const CloseCase kCloseCases[] = {
    {"connection close", "GET /sync HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200, true, "ok"},
    {"http/1.0", "GET /sync HTTP/1.0\r\n\r\n", 200, true, "ok"},
    {"404 is still a good end", "GET /nope HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 404, true, "ok"},
    // Bytes after the request that asked to close: unread input, so a close would reset.
    {"bytes after it", "GET /sync HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /sync HTTP/1.1\r\n", 200, false,
     "ok", 50},
    // The server decides to close after an error: the client may well be sending more.
    {"error answer", "GET /sync HTTP/1.1\r\n\r\n", 400, false, "protocol_error"},
};

TEST(ConnectionClose, AtOnceOnlyWhenTheClientAskedAndSentNothingMoreAtEverySplit) {
  for (const CloseCase& c : kCloseCases) {
    for (std::size_t split = 0; split <= c.input.size(); ++split) {
      Rig t;
      t.transport_->drained_ = t.transport_->acked_all_ = true;
      t.transport_->receive(std::string_view(c.input).substr(0, split));
      t.transport_->receive(std::string_view(c.input).substr(split));
      std::string where = std::string(c.name) + ", split " + std::to_string(split);
      bool at_once = c.at_once || split == c.alone_at;
      ASSERT_EQ(t.transport_->out_.substr(0, 12).substr(9), std::to_string(c.status)) << where;
      EXPECT_EQ(t.closed_, at_once ? 1 : 0) << where;
      EXPECT_EQ(t.transport_->closed_, at_once) << where;
      EXPECT_EQ(t.transport_->shut_, !at_once) << where;  // lingering: FIN first, then read and drop
      EXPECT_FALSE(t.transport_->abortive_) << where;
      if (!at_once) t.transport_->handler_->on_peer_closed();  // the client's FIN ends the linger
      EXPECT_EQ(t.closed_, 1) << where;
      ASSERT_EQ(t.records_.size(), 1u) << where;
      EXPECT_EQ(t.records_[0].outcome, c.outcome) << where;
      EXPECT_EQ(t.records_[0].status, c.status) << where;
      EXPECT_EQ(t.records_[0].bytes_out, t.transport_->out_.size()) << where;
    }
  }
}

TEST(ConnectionClose, LingersUnlessTheSocketIsEmptyAndEverythingAcknowledged) {
  struct Row {
    const char* name;
    bool drained, acked;
    const char* request;
    bool shut;
  };
  const char* close = "GET /sync HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  const Row rows[] = {
      // The record must say what the client got: with bytes unacknowledged (or no way to ask), only
      // waiting tells, so the connection lingers and the record waits for the FIN (or its timer).
      {"unacknowledged", true, false, close, true},
      // The last read filled its buffer: more may be waiting in the socket.
      {"not drained", false, true, close, true},
      {"keep-alive", true, true, "GET /sync HTTP/1.1\r\nHost: a\r\n\r\n", false},
  };
  for (const Row& r : rows) {
    Rig t;
    t.transport_->drained_ = r.drained;
    t.transport_->acked_all_ = r.acked;
    t.transport_->receive(r.request);
    EXPECT_EQ(t.transport_->shut_, r.shut) << r.name;
    EXPECT_EQ(t.closed_, 0) << r.name;
    EXPECT_TRUE(t.records_.empty()) << r.name;
    t.transport_->handler_->on_peer_closed();
    EXPECT_EQ(t.closed_, 1) << r.name;
    ASSERT_EQ(t.records_.size(), 1u) << r.name;
    EXPECT_EQ(t.records_[0].outcome, "ok") << r.name;
  }
}

TEST(ConnectionClose, AServerChosenCloseLingersEvenWhenDrained) {
  // A drain closes a keep-alive client's connection after its response: the client did not ask,
  // and its next request may be on its way.
  Rig t;
  t.transport_->drained_ = t.transport_->acked_all_ = true;
  t.transport_->receive("GET /async HTTP/1.1\r\nHost: a\r\n\r\n");
  t.conn_->begin_drain();
  t.held_->respond(200, "last");
  t.held_.reset();
  EXPECT_NE(t.transport_->out_.find("Connection: close"), std::string::npos) << t.transport_->out_;
  EXPECT_TRUE(t.transport_->shut_);
  EXPECT_EQ(t.closed_, 0);
}

TEST(ConnectionClose, ConnectionObjectsComeFromAFreeListReusedAcrossConnections) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "sanitizer builds give every block straight back to the heap";
#else
  Rig t;
  auto make = [&t] { return std::make_unique<HttpConnection>(*t.ctx_, std::make_unique<testing::FakeTransport>(), 2); };
  auto first = make();
  const void* block = first.get();
  first.reset();
  auto second = make();  // the block the first one gave back, not a new one from malloc
  EXPECT_EQ(static_cast<const void*>(second.get()), block);
#endif
}

}  // namespace
}  // namespace unbroken::http
