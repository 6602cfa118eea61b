#include "net/event_loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

namespace unbroken::net {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kDeadline{5000};  // a test that gets here has failed

// An owner of a ready-list place (and of a descriptor, when registered) that logs what it hears.
struct Owner : IoHandler {
  Owner(EventLoop& l, std::string n, std::vector<std::string>& log) : loop(l), name(std::move(n)), log(log) {}
  void on_events(std::uint32_t) override { log.push_back(name + " event"); }
  void on_ready() override {
    log.push_back(name + " ready " + std::to_string(loop.turn()));
    if (then) then();
  }
  EventLoop& loop;
  std::string name;
  std::vector<std::string>& log;
  ReadyNode node{this};
  std::function<void()> then;
};

class ReadyListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = EventLoop::create();
    ASSERT_TRUE(l);
    loop_ = std::move(*l);
  }
  // Runs turns until stop(); false when the deadline came first (a poll waited with work ready).
  bool run() {
    bool in_time = true;
    auto id = loop_->run_after(kDeadline, [&] {
      in_time = false;
      loop_->stop();
    });
    loop_->run();
    loop_->cancel_timer(id);
    return in_time;
  }
  std::unique_ptr<EventLoop> loop_;
  std::vector<std::string> log_;
};

TEST_F(ReadyListTest, ServesInTheNextTurnInOrderOnceEachWithoutWaiting) {
  Owner a(*loop_, "a", log_), b(*loop_, "b", log_);
  loop_->make_ready(a.node);
  loop_->make_ready(b.node);
  loop_->make_ready(a.node);  // already queued: still once, in its first place
  b.then = [&] { loop_->stop(); };
  std::uint64_t turn = loop_->turn() + 1;
  ASSERT_TRUE(run());
  EXPECT_EQ(log_, (std::vector<std::string>{"a ready " + std::to_string(turn), "b ready " + std::to_string(turn)}));
  EXPECT_FALSE(a.node.queued());
}

TEST_F(ReadyListTest, QueuedAgainWhileServedWaitsForTheTurnAfter) {
  Owner a(*loop_, "a", log_);
  int left = 3;
  a.then = [&] {
    if (--left > 0) {
      loop_->make_ready(a.node);
    } else {
      loop_->stop();
    }
  };
  loop_->make_ready(a.node);
  std::uint64_t turn = loop_->turn();
  ASSERT_TRUE(run());
  EXPECT_EQ(log_,
            (std::vector<std::string>{"a ready " + std::to_string(turn + 1), "a ready " + std::to_string(turn + 2),
                                      "a ready " + std::to_string(turn + 3)}));
}

TEST_F(ReadyListTest, ComesAfterTheTurnsEvents) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd mine(sv[0]), theirs(sv[1]);
  Owner io(*loop_, "io", log_), r(*loop_, "r", log_);
  ASSERT_TRUE(loop_->add(mine.get(), kReadable, &io));
  ASSERT_EQ(::write(theirs.get(), "x", 1), 1);
  loop_->make_ready(r.node);
  r.then = [&] { loop_->stop(); };
  ASSERT_TRUE(run());
  EXPECT_EQ(log_, (std::vector<std::string>{"io event", "r ready " + std::to_string(loop_->turn())}));
  loop_->remove(mine.get());
}

TEST_F(ReadyListTest, AnOwnerUnlinkedOrFreedBeforeItsTurnIsNotCalled) {
  auto gone = std::make_unique<Owner>(*loop_, "gone", log_);
  Owner unlinked(*loop_, "unlinked", log_), last(*loop_, "last", log_);
  Owner first(*loop_, "first", log_);
  loop_->make_ready(first.node);
  loop_->make_ready(gone->node);
  loop_->make_ready(unlinked.node);
  loop_->make_ready(last.node);
  unlinked.node.unlink();
  // One served before them frees another further down the same turn's list.
  first.then = [&] { gone.reset(); };
  last.then = [&] { loop_->stop(); };
  ASSERT_TRUE(run());
  std::string turn = std::to_string(loop_->turn());
  EXPECT_EQ(log_, (std::vector<std::string>{"first ready " + turn, "last ready " + turn}));
}

// What frees closed connections runs after every deferred task of the turn, also those deferred
// by a deferred task: an earlier close's freeing must not run before a later connection's flush.
TEST_F(ReadyListTest, DeferredLastRunsAfterEveryDeferredTask) {
  loop_->run_after(std::chrono::milliseconds(0), [this] {  // within a turn, as a close is
    loop_->defer([this] {
      log_.push_back("flush a");
      loop_->defer_last([this] {
        log_.push_back("free");
        loop_->stop();
      });
      loop_->defer([this] { log_.push_back("flush b"); });
    });
    loop_->defer([this] { log_.push_back("flush c"); });
  });
  ASSERT_TRUE(run());
  EXPECT_EQ(log_, (std::vector<std::string>{"flush a", "flush c", "flush b", "free"}));
}

}  // namespace
}  // namespace unbroken::net
