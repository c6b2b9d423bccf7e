// EventHub: delivery by workflow id and by task id, unsubscription, re-entrant callbacks
// and concurrent publish / subscribe / unsubscribe (meant to be run under ASan and TSan).
#include "scheduler/event_hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace flowmesh::scheduler {
namespace {

state::EventRecord Event(int64_t cursor, std::string workflow_id, std::string task_id) {
  state::EventRecord e;
  e.cursor = cursor;
  e.workflow_id = std::move(workflow_id);
  e.task_id = std::move(task_id);
  e.type = "TASK_LOG";
  return e;
}

// Collects the cursors a subscription received.
struct Sink {
  std::mutex mu;
  std::vector<int64_t> cursors;
  EventHub::Callback Callback() {
    return [this](const state::EventRecord& e) {
      std::lock_guard<std::mutex> lock(mu);
      cursors.push_back(e.cursor);
    };
  }
  std::vector<int64_t> Got() {
    std::lock_guard<std::mutex> lock(mu);
    return cursors;
  }
};

TEST(EventHubTest, DeliversByWorkflowIdAndByTaskId) {
  EventHub hub;
  Sink wf, task, other_wf, other_task;
  hub.Subscribe("wf_1", wf.Callback());
  hub.Subscribe("task_1", task.Callback());
  hub.Subscribe("wf_2", other_wf.Callback());
  hub.Subscribe("task_2", other_task.Callback());
  EXPECT_EQ(hub.subscribers(), 4u);

  hub.Publish(Event(1, "wf_1", "task_1"));  // both keys
  hub.Publish(Event(2, "wf_1", ""));        // workflow-level event
  hub.Publish(Event(3, "wf_2", "task_2"));
  hub.Publish(Event(4, "wf_9", "task_9"));  // nobody listens

  EXPECT_EQ(wf.Got(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(task.Got(), (std::vector<int64_t>{1}));
  EXPECT_EQ(other_wf.Got(), (std::vector<int64_t>{3}));
  EXPECT_EQ(other_task.Got(), (std::vector<int64_t>{3}));
}

TEST(EventHubTest, EmptyIdsMatchNoSubscriber) {
  EventHub hub;
  Sink empty_key;
  hub.Subscribe("", empty_key.Callback());
  hub.Publish(Event(1, "", ""));
  hub.Publish(Event(2, "wf_1", ""));
  EXPECT_TRUE(empty_key.Got().empty());
}

TEST(EventHubTest, SeveralSubscribersOnOneKeyEachGetEveryEvent) {
  EventHub hub;
  Sink a, b;
  uint64_t ia = hub.Subscribe("wf_1", a.Callback());
  uint64_t ib = hub.Subscribe("wf_1", b.Callback());
  EXPECT_NE(ia, ib);
  hub.Publish(Event(1, "wf_1", "task_1"));
  hub.Unsubscribe(ia);
  hub.Publish(Event(2, "wf_1", "task_1"));
  EXPECT_EQ(a.Got(), (std::vector<int64_t>{1}));
  EXPECT_EQ(b.Got(), (std::vector<int64_t>{1, 2}));
}

TEST(EventHubTest, UnsubscribeStopsDeliveryAndIsIdempotent) {
  EventHub hub;
  Sink wf, task;
  uint64_t iw = hub.Subscribe("wf_1", wf.Callback());
  uint64_t it = hub.Subscribe("task_1", task.Callback());
  hub.Publish(Event(1, "wf_1", "task_1"));
  hub.Unsubscribe(iw);
  EXPECT_EQ(hub.subscribers(), 1u);
  hub.Publish(Event(2, "wf_1", "task_1"));
  hub.Unsubscribe(it);
  hub.Unsubscribe(it);      // twice
  hub.Unsubscribe(424242);  // never issued
  EXPECT_EQ(hub.subscribers(), 0u);
  hub.Publish(Event(3, "wf_1", "task_1"));
  EXPECT_EQ(wf.Got(), (std::vector<int64_t>{1}));
  EXPECT_EQ(task.Got(), (std::vector<int64_t>{1, 2}));
}

// Callbacks run outside the hub's lock: one may unsubscribe itself or subscribe others.
TEST(EventHubTest, CallbacksMayReenterTheHub) {
  EventHub hub;
  int calls = 0;
  uint64_t self = 0;
  Sink late;
  self = hub.Subscribe("wf_1", [&](const state::EventRecord&) {
    ++calls;
    hub.Unsubscribe(self);
    hub.Subscribe("wf_1", late.Callback());
  });
  hub.Publish(Event(1, "wf_1", ""));
  hub.Publish(Event(2, "wf_1", ""));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(late.Got(), (std::vector<int64_t>{2}));
  EXPECT_EQ(hub.subscribers(), 1u);
}

TEST(EventHubTest, ConcurrentPublishSubscribeAndUnsubscribe) {
  EventHub hub;
  constexpr int kPublishers = 4;
  constexpr int kChurners = 3;
  constexpr int kEventsPerPublisher = 2000;
  // A stable subscriber per publisher key sees every one of that publisher's events, in
  // order; churning subscribers come and go on the same keys.
  std::vector<Sink> stable(kPublishers);
  for (int p = 0; p < kPublishers; ++p) {
    hub.Subscribe("wf_" + std::to_string(p), stable[p].Callback());
  }
  std::atomic<int64_t> churn_deliveries{0};
  std::atomic<bool> publishing{true};
  std::latch start(kPublishers + kChurners);
  std::vector<std::thread> threads;
  for (int p = 0; p < kPublishers; ++p) {
    threads.emplace_back([&, p] {
      start.arrive_and_wait();
      for (int i = 1; i <= kEventsPerPublisher; ++i) {
        hub.Publish(Event(i, "wf_" + std::to_string(p), "task_" + std::to_string(p)));
      }
    });
  }
  for (int c = 0; c < kChurners; ++c) {
    threads.emplace_back([&, c] {
      start.arrive_and_wait();
      int round = 0;
      while (publishing.load()) {
        std::string key = (round % 2 ? "task_" : "wf_") + std::to_string((round + c) % 4);
        uint64_t id = hub.Subscribe(key, [&](const state::EventRecord&) { churn_deliveries++; });
        hub.Unsubscribe(id);
        ++round;
      }
    });
  }
  for (int p = 0; p < kPublishers; ++p) threads[p].join();
  publishing = false;
  for (size_t t = kPublishers; t < threads.size(); ++t) threads[t].join();

  EXPECT_EQ(hub.subscribers(), static_cast<size_t>(kPublishers));
  for (int p = 0; p < kPublishers; ++p) {
    std::vector<int64_t> got = stable[p].Got();
    ASSERT_EQ(got.size(), static_cast<size_t>(kEventsPerPublisher)) << "publisher " << p;
    for (int i = 0; i < kEventsPerPublisher; ++i) EXPECT_EQ(got[i], i + 1);
  }
  // After everything is unsubscribed, nothing more is delivered to churners.
  int64_t before = churn_deliveries.load();
  hub.Publish(Event(99999, "wf_0", "task_0"));
  EXPECT_EQ(churn_deliveries.load(), before);
}

}  // namespace
}  // namespace flowmesh::scheduler
