// What an idle accepted connection holds: no read buffer (it goes back to the loop's pool once
// every byte read was consumed), and what it says about its socket (input_drained, delivery), which
// decides whether its close may skip the lingering (HttpConnection::can_close_at_once).

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "net/tcp_connection.h"

namespace unbroken::net {
namespace {

using std::chrono::milliseconds;

// Consumes whole lines and leaves a partial one in the buffer, as a parser waiting for more would.
struct LineReader : TransportHandler {
  void on_data(Buffer& in) override {
    for (auto nl = in.readable().find('\n'); nl != std::string_view::npos; nl = in.readable().find('\n')) {
      lines.emplace_back(in.readable().substr(0, nl));
      in.consume(nl + 1);
    }
    loop->stop();  // one event at a time: the test looks after each
  }
  void on_peer_closed() override { loop->stop(); }
  void on_transport_error(SocketError) override { loop->stop(); }
  void on_written(std::size_t) override {}
  EventLoop* loop = nullptr;
  std::vector<std::string> lines;
};

class IdleConnection : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_ = std::move(*EventLoop::create());
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    peer_ = UniqueFd(sv[1]);
    conn_ = std::make_unique<TcpConnection>(*loop_, UniqueFd(sv[0]), "peer", 64 * 1024);
    reader_.loop = loop_.get();
    conn_->set_handler(&reader_);
    ASSERT_TRUE(conn_->start());
  }
  // Sends `bytes` from the peer and runs the loop until the connection has read them.
  void send_and_read(std::string_view bytes) {
    ASSERT_EQ(::send(peer_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    run_until_read();
  }
  // Runs the loop until the reader stops it (one event), within a deadline.
  void run_until_read() {
    auto deadline = loop_->run_after(milliseconds(5000), [this] {
      timed_out_ = true;
      loop_->stop();
    });
    loop_->run();
    loop_->cancel_timer(deadline);
    ASSERT_FALSE(timed_out_);
  }

  std::unique_ptr<EventLoop> loop_;
  UniqueFd peer_;
  std::unique_ptr<TcpConnection> conn_;
  LineReader reader_;
  bool timed_out_ = false;
};

TEST_F(IdleConnection, GivesItsBufferBackAndReadsTheNextRequestWholeByteByByte) {
  EXPECT_FALSE(conn_->input().has_storage());  // accepted and not yet read: none
  send_and_read("first\n");
  ASSERT_EQ(reader_.lines, std::vector<std::string>{"first"});
  EXPECT_FALSE(conn_->input().has_storage());  // idle again: the buffer is the loop's
  EXPECT_TRUE(conn_->input_drained());

  const std::string next = "second line\n";
  for (std::size_t i = 0; i < next.size(); ++i) {
    SCOPED_TRACE(i);
    send_and_read(next.substr(i, 1));
    bool partial = i + 1 < next.size();
    // A partial line is kept (and its buffer with it) until the rest arrives.
    EXPECT_EQ(conn_->input().has_storage(), partial);
    EXPECT_EQ(conn_->input().size(), partial ? i + 1 : 0u);
    EXPECT_EQ(conn_->input_drained(), !partial);  // bytes wait unconsumed: not drained
  }
  EXPECT_EQ(reader_.lines, (std::vector<std::string>{"first", "second line"}));
}

TEST_F(IdleConnection, AReadThatFillsItsRoomIsNotDrained) {
  // Past the cap (64 KiB) reading stops with bytes still in the socket: no close at once then.
  send_and_read(std::string(80 * 1024, 'x'));
  EXPECT_EQ(conn_->input().size(), 64u * 1024);
  EXPECT_FALSE(conn_->input_drained());
}

TEST_F(IdleConnection, APausedConnectionIsNotDrained) {
  // While reading is off, bytes that arrive go unseen: the last read's word no longer holds.
  send_and_read("request\n");
  ASSERT_TRUE(conn_->input_drained());
  conn_->set_reading(false);
  EXPECT_FALSE(conn_->input_drained());
  ASSERT_EQ(::send(peer_.get(), "more\n", 5, MSG_NOSIGNAL), 5);
  conn_->set_reading(true);  // re-registering reports what waited
  run_until_read();
  EXPECT_EQ(reader_.lines, (std::vector<std::string>{"request", "more"}));
  EXPECT_TRUE(conn_->input_drained());
}

}  // namespace
}  // namespace unbroken::net
