// EventLoop: FIFO posts, timers by deadline, cancellation, RunSync, after-batch hook and
// draining on Stop. Ordering-sensitive cases first park the loop on a closure blocked on
// a latch, so that everything they post is queued before the loop looks at it.
#include "common/event_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <string>
#include <vector>

namespace flowmesh {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

// Parks the loop inside a closure until Release(); the constructor returns once it is
// parked. The closure shares the latch, so the Gate may go away before the loop resumes.
class Gate {
 public:
  explicit Gate(EventLoop& loop) : release_(std::make_shared<std::latch>(1)) {
    std::promise<void> parked;
    loop.Post([&parked, release = release_] {
      parked.set_value();
      release->wait();
    });
    parked.get_future().wait();
  }
  void Release() { release_->count_down(); }

 private:
  std::shared_ptr<std::latch> release_;
};

TEST(EventLoopTest, PostRunsClosuresInOrderOnTheLoopThread) {
  EventLoop loop("test");
  loop.Start();
  std::vector<int> seen;
  std::atomic<bool> all_on_loop{true};
  std::promise<void> done;
  for (int i = 0; i < 1000; ++i) {
    loop.Post([&, i] {
      if (!loop.InLoopThread()) all_on_loop = false;
      seen.push_back(i);
    });
  }
  loop.Post([&] { done.set_value(); });
  done.get_future().wait();
  ASSERT_EQ(seen.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_TRUE(all_on_loop);
  EXPECT_FALSE(loop.InLoopThread());
}

TEST(EventLoopTest, DelayedClosuresRunByDeadlineNotByPostOrder) {
  EventLoop loop("test");
  loop.Start();
  std::vector<int> seen;
  std::promise<void> done;
  auto start = std::chrono::steady_clock::now();
  Gate gate(loop);
  loop.PostDelayed(milliseconds(30), [&] {
    seen.push_back(30);
    done.set_value();
  });
  loop.PostDelayed(milliseconds(10), [&] { seen.push_back(10); });
  loop.PostDelayed(milliseconds(20), [&] { seen.push_back(20); });
  loop.PostDelayed(microseconds(0), [&] { seen.push_back(0); });
  gate.Release();
  done.get_future().wait();
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(30));
  EXPECT_EQ(seen, (std::vector<int>{0, 10, 20, 30}));
}

TEST(EventLoopTest, DelayedClosureWaitsForItsDeadline) {
  EventLoop loop("test");
  loop.Start();
  std::promise<std::chrono::steady_clock::time_point> ran;
  auto start = std::chrono::steady_clock::now();
  loop.PostDelayed(milliseconds(20), [&] { ran.set_value(std::chrono::steady_clock::now()); });
  EXPECT_GE(ran.get_future().get() - start, milliseconds(20));
}

TEST(EventLoopTest, CancelledTimerNeverRuns) {
  EventLoop loop("test");
  loop.Start();
  bool cancelled_ran = false;
  std::promise<void> done;
  Gate gate(loop);
  auto id = loop.PostDelayed(microseconds(0), [&] { cancelled_ran = true; });
  loop.PostDelayed(milliseconds(5), [&] { done.set_value(); });
  loop.CancelTimer(id);
  loop.CancelTimer(id);         // twice: no-op
  loop.CancelTimer(id + 1000);  // unknown: no-op
  gate.Release();
  done.get_future().wait();
  EXPECT_FALSE(cancelled_ran);
}

// A timer that is already due when the loop wakes can still be cancelled by a closure that
// runs before it in the same batch.
TEST(EventLoopTest, TimerCancelledByEarlierClosureInSameBatchDoesNotRun) {
  EventLoop loop("test");
  loop.Start();
  bool victim_ran = false;
  std::promise<void> done;
  EventLoop::TimerId victim = 0;
  Gate gate(loop);
  loop.PostDelayed(microseconds(0), [&] { loop.CancelTimer(victim); });
  victim = loop.PostDelayed(microseconds(1), [&] { victim_ran = true; });
  loop.PostDelayed(microseconds(2), [&] { done.set_value(); });
  // Make all three due before the loop wakes up, so that they land in one batch.
  auto due = std::chrono::steady_clock::now() + microseconds(5);
  while (std::chrono::steady_clock::now() < due) {
  }
  gate.Release();
  done.get_future().wait();
  EXPECT_FALSE(victim_ran);
}

TEST(EventLoopTest, TimerCancelledFromInsideTheLoopBeforeDeadline) {
  EventLoop loop("test");
  loop.Start();
  std::atomic<bool> ran{false};
  std::promise<void> done;
  loop.Post([&] {
    auto id = loop.PostDelayed(milliseconds(1), [&] { ran = true; });
    loop.CancelTimer(id);
    loop.PostDelayed(milliseconds(10), [&] { done.set_value(); });
  });
  done.get_future().wait();
  EXPECT_FALSE(ran);
}

TEST(EventLoopTest, RunSyncBlocksUntilTheClosureRan) {
  EventLoop loop("test");
  loop.Start();
  int value = 0;  // touched only on the loop; RunSync orders the accesses
  bool on_loop = false;
  loop.RunSync([&] {
    value = 42;
    on_loop = loop.InLoopThread();
  });
  EXPECT_EQ(value, 42);
  EXPECT_TRUE(on_loop);
  // Runs after earlier posts.
  std::vector<int> seen;
  for (int i = 0; i < 10; ++i) loop.Post([&, i] { seen.push_back(i); });
  loop.RunSync([&] { seen.push_back(99); });
  ASSERT_EQ(seen.size(), 11u);
  EXPECT_EQ(seen.back(), 99);
}

TEST(EventLoopTest, AfterBatchRunsOnceAfterEachBatch) {
  EventLoop loop("test");
  std::vector<std::string> log;  // touched only on the loop thread
  std::promise<std::vector<std::string>> after_c;
  loop.SetAfterBatch([&] {
    log.push_back("after");
    if (log.size() >= 2 && log[log.size() - 2] == "c") after_c.set_value(log);
  });
  loop.Start();
  Gate gate(loop);  // its closure is a batch of its own
  loop.Post([&] { log.push_back("a"); });
  loop.Post([&] { log.push_back("b"); });
  loop.Post([&] { log.push_back("c"); });
  gate.Release();
  EXPECT_EQ(after_c.get_future().get(),
            (std::vector<std::string>{"after", "a", "b", "c", "after"}));
}

TEST(EventLoopTest, StopRunsClosuresAlreadyQueued) {
  EventLoop loop("test");
  loop.Start();
  std::atomic<int> count{0};
  std::promise<void> parked;
  std::latch go(1);
  loop.Post([&] {
    parked.set_value();
    go.wait();
    loop.Stop();  // from the loop thread: marks stopping, cannot join itself
  });
  parked.get_future().wait();
  for (int i = 0; i < 100; ++i) loop.Post([&] { count++; });
  // Closures posted by drained closures still run.
  loop.Post([&] { loop.Post([&] { count += 1000; }); });
  go.count_down();
  loop.Stop();  // joins
  EXPECT_EQ(count.load(), 1100);
  EXPECT_EQ(loop.queued(), 0u);
}

TEST(EventLoopTest, StopDoesNotWaitForFutureTimers) {
  EventLoop loop("test");
  loop.Start();
  bool ran = false;
  loop.PostDelayed(std::chrono::hours(1), [&] { ran = true; });
  auto start = std::chrono::steady_clock::now();
  loop.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_FALSE(ran);
}

TEST(EventLoopTest, StopWithoutStartAndTwiceIsHarmless) {
  EventLoop never_started("idle");
  never_started.Stop();
  EventLoop loop("test");
  loop.Start();
  loop.Stop();
  loop.Stop();
}

}  // namespace
}  // namespace flowmesh
