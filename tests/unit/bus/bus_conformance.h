// The Bus contract as one typed test suite, run against every implementation:
// InProcessBus (tests/unit/bus) and RedisBus on a real redis-server (tests/integration/bus).
//
// A harness type H provides:
//   Status SetUp();                       // called once per test
//   std::shared_ptr<Bus> bus();           // the bus under test
//   std::shared_ptr<Bus> AfterRestart(const std::shared_ptr<Bus>& bus, stream, group,
//                                     consumer);  // a bus on which `consumer` starts over
//   std::unique_ptr<Subscriber> Subscribe(channels, handler);
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bus/bus.h"

namespace flowmesh::bus::testing {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Collects values from other threads; tests wait on it instead of sleeping.
template <typename T>
class Collector {
 public:
  void Add(T value) {
    std::lock_guard<std::mutex> lock(mu_);
    values_.push_back(std::move(value));
    cv_.notify_all();
  }
  // Waits until `done(values)` holds; false on timeout.
  bool WaitFor(const std::function<bool(const std::vector<T>&)>& done,
               milliseconds timeout = seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done(values_); });
  }
  bool WaitForCount(size_t n, milliseconds timeout = seconds(20)) {
    return WaitFor([n](const std::vector<T>& v) { return v.size() >= n; }, timeout);
  }
  std::vector<T> values() {
    std::lock_guard<std::mutex> lock(mu_);
    return values_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> values_;
};

inline std::vector<std::string> Payloads(const std::vector<Message>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m.payload);
  return out;
}

inline std::vector<std::string> Ids(const std::vector<Message>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m.id);
  return out;
}

// Stream ids compare as (ms, seq) pairs.
inline std::pair<uint64_t, uint64_t> ParseId(const std::string& id) {
  auto dash = id.find('-');
  return {std::stoull(id.substr(0, dash)), std::stoull(id.substr(dash + 1))};
}

inline std::vector<std::string> Numbered(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

template <typename H>
class BusConformanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = harness_.SetUp();
    if (s.code() == StatusCode::kNotFound) GTEST_SKIP() << s.ToString();
    ASSERT_TRUE(s.ok()) << s.ToString();
    bus_ = harness_.bus();
  }

  // Reads until `n` entries came or a read returns nothing.
  std::vector<Message> ReadAll(Bus& bus, const std::string& stream, const std::string& group,
                               const std::string& consumer, int n, int max) {
    std::vector<Message> all;
    while (static_cast<int>(all.size()) < n) {
      auto r = bus.ReadGroup(stream, group, consumer, max, milliseconds(1000));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok() || r->empty()) break;
      all.insert(all.end(), r->begin(), r->end());
    }
    return all;
  }

  H harness_;
  std::shared_ptr<Bus> bus_;
};

TYPED_TEST_SUITE_P(BusConformanceTest);

TYPED_TEST_P(BusConformanceTest, AppendReadAck) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.EnsureGroup("s", "g").ok());
  std::vector<std::string> ids;
  for (const char* p : {"one", "two", "three"}) {
    auto id = bus.Append("s", p);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    ids.push_back(*id);
  }
  auto read = bus.ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(Payloads(*read), (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(Ids(*read), ids);
  ASSERT_TRUE(bus.Ack("s", "g", ids).ok());

  // Acknowledged entries are not delivered again, not even after a restart.
  auto again = bus.ReadGroup("s", "g", "c", 10, milliseconds(0));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  bus.RewindPending("s", "g", "c");
  again = bus.ReadGroup("s", "g", "c", 10, milliseconds(0));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TYPED_TEST_P(BusConformanceTest, PayloadsAreOpaqueBytes) {
  Bus& bus = *this->bus_;
  std::string binary("a\0b\r\n\xff{\"k\":1}", 12);
  ASSERT_TRUE(bus.Append("s", binary).ok());
  ASSERT_TRUE(bus.Append("s", "").ok());
  auto read = bus.ReadGroup("s", "g", "c", 10, milliseconds(1000));  // group made on demand
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(Payloads(*read), (std::vector<std::string>{binary, ""}));
}

TYPED_TEST_P(BusConformanceTest, EnsureGroupIsIdempotentAndReadsFromStart) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.Append("s", "before").ok());
  ASSERT_TRUE(bus.EnsureGroup("s", "g").ok());
  ASSERT_TRUE(bus.EnsureGroup("s", "g").ok());
  ASSERT_TRUE(bus.EnsureGroup("empty", "g").ok());
  auto read = bus.ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(Payloads(*read), std::vector<std::string>{"before"});
  auto empty = bus.ReadGroup("empty", "g", "c", 10, milliseconds(0));
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());
}

TYPED_TEST_P(BusConformanceTest, BatchKeepsOrder) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.EnsureGroup("s", "g").ok());
  ASSERT_TRUE(bus.Append("s", "first").ok());
  auto batch = Numbered("m", 300);
  ASSERT_TRUE(bus.AppendBatch("s", batch).ok());
  ASSERT_TRUE(bus.AppendBatch("s", {}).ok());
  ASSERT_TRUE(bus.Append("s", "last").ok());
  auto all = this->ReadAll(bus, "s", "g", "c", 302, 7);
  std::vector<std::string> expected = {"first"};
  expected.insert(expected.end(), batch.begin(), batch.end());
  expected.push_back("last");
  EXPECT_EQ(Payloads(all), expected);
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(ParseId(all[i - 1].id), ParseId(all[i].id)) << i;
  }
}

TYPED_TEST_P(BusConformanceTest, BlockingReadWakesOnAppend) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.EnsureGroup("s", "g").ok());
  std::thread reader_thread;
  Collector<std::string> got;
  reader_thread = std::thread([&] {
    // Far longer than the test may take: returning early proves the wake-up.
    auto r = bus.ReadGroup("s", "g", "c", 10, seconds(30));
    got.Add(r.ok() ? (r->empty() ? "<empty>" : r->front().payload) : r.status().ToString());
  });
  ASSERT_TRUE(bus.Append("s", "wake").ok());
  EXPECT_TRUE(got.WaitForCount(1));
  reader_thread.join();
  EXPECT_EQ(got.values(), std::vector<std::string>{"wake"});
}

TYPED_TEST_P(BusConformanceTest, BlockingReadTimesOutEmpty) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.EnsureGroup("s", "g").ok());
  auto start = std::chrono::steady_clock::now();
  auto r = bus.ReadGroup("s", "g", "c", 10, milliseconds(200));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->empty());
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(150));
  // The connection is still fine afterwards.
  ASSERT_TRUE(bus.Append("s", "x").ok());
  r = bus.ReadGroup("s", "g", "c", 10, milliseconds(200));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Payloads(*r), std::vector<std::string>{"x"});
}

TYPED_TEST_P(BusConformanceTest, TwoConsumersSplitTheWork) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.EnsureGroup("s", "g").ok());
  ASSERT_TRUE(bus.AppendBatch("s", Numbered("m", 20)).ok());
  auto a = bus.ReadGroup("s", "g", "a", 5, milliseconds(1000));
  auto b = bus.ReadGroup("s", "g", "b", 100, milliseconds(1000));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->size(), 5u);
  EXPECT_EQ(b->size(), 15u);
  std::set<std::string> seen;
  for (const auto& m : *a) seen.insert(m.payload);
  for (const auto& m : *b) seen.insert(m.payload);
  auto expected = Numbered("m", 20);
  EXPECT_EQ(seen, std::set<std::string>(expected.begin(), expected.end()));
  // Another group sees everything again.
  auto other = this->ReadAll(bus, "s", "other", "a", 20, 100);
  EXPECT_EQ(other.size(), 20u);
}

TYPED_TEST_P(BusConformanceTest, ReadingAgainWithoutAckGivesNewEntries) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.EnsureGroup("s", "g").ok());
  ASSERT_TRUE(bus.AppendBatch("s", Numbered("m", 4)).ok());
  auto first = bus.ReadGroup("s", "g", "c", 2, milliseconds(1000));
  auto second = bus.ReadGroup("s", "g", "c", 2, milliseconds(1000));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(Payloads(*first), (std::vector<std::string>{"m0", "m1"}));
  EXPECT_EQ(Payloads(*second), (std::vector<std::string>{"m2", "m3"}));
}

TYPED_TEST_P(BusConformanceTest, UnackedEntriesAreRedeliveredAfterRestart) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.EnsureGroup("s", "g").ok());
  ASSERT_TRUE(bus.AppendBatch("s", Numbered("m", 5)).ok());
  auto taken = bus.ReadGroup("s", "g", "c", 3, milliseconds(1000));
  ASSERT_TRUE(taken.ok());
  ASSERT_EQ(Payloads(*taken), (std::vector<std::string>{"m0", "m1", "m2"}));
  ASSERT_TRUE(bus.Ack("s", "g", {taken->at(1).id}).ok());
  // "c" crashes here with m0 and m2 unacknowledged.

  // Pending entries belong to "c": another consumer only gets new ones.
  auto other = bus.ReadGroup("s", "g", "d", 100, milliseconds(1000));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(Payloads(*other), (std::vector<std::string>{"m3", "m4"}));
  ASSERT_TRUE(bus.Ack("s", "g", Ids(*other)).ok());
  ASSERT_TRUE(bus.Append("s", "m5").ok());

  auto restarted = this->harness_.AfterRestart(this->bus_, "s", "g", "c");
  // Pending first, in order, in batches of `max`; then new entries.
  auto r1 = restarted->ReadGroup("s", "g", "c", 1, milliseconds(1000));
  auto r2 = restarted->ReadGroup("s", "g", "c", 1, milliseconds(1000));
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(Payloads(*r1), std::vector<std::string>{"m0"});
  EXPECT_EQ(Payloads(*r2), std::vector<std::string>{"m2"});
  EXPECT_EQ(r1->front().id, taken->at(0).id);
  auto r3 = restarted->ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(Payloads(*r3), std::vector<std::string>{"m5"});

  // Not acknowledged again: a second restart hands all three out once more.
  auto again = this->harness_.AfterRestart(restarted, "s", "g", "c");
  auto all = again->ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Payloads(*all), (std::vector<std::string>{"m0", "m2", "m5"}));
  ASSERT_TRUE(again->Ack("s", "g", Ids(*all)).ok());
  again->RewindPending("s", "g", "c");
  auto none = again->ReadGroup("s", "g", "c", 10, milliseconds(0));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TYPED_TEST_P(BusConformanceTest, RewindPendingOnTheSameBus) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.AppendBatch("s", Numbered("m", 2)).ok());
  auto taken = bus.ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(taken.ok());
  ASSERT_EQ(taken->size(), 2u);
  bus.RewindPending("s", "g", "c");
  auto again = bus.ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Ids(*again), Ids(*taken));
}

TYPED_TEST_P(BusConformanceTest, AckRejectsMalformedIds) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.EnsureGroup("s", "g").ok());
  EXPECT_EQ(bus.Ack("s", "g", {"not-an-id"}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(bus.Ack("s", "g", {}).ok());
  EXPECT_TRUE(bus.Ack("s", "g", {"1-1"}).ok());  // unknown ids are fine
}

TYPED_TEST_P(BusConformanceTest, PubSubDeliversSubscribedChannelsInOrder) {
  Collector<std::pair<std::string, std::string>> got;
  auto sub = this->harness_.Subscribe({"a", "b"}, [&](const std::string& c, const std::string& p) {
    got.Add({c, p});
  });
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.Publish("other", "x").ok());
  ASSERT_TRUE(bus.Publish("a", "1").ok());
  ASSERT_TRUE(bus.Publish("b", "2").ok());
  ASSERT_TRUE(bus.Publish("a", "3").ok());
  ASSERT_TRUE(got.WaitForCount(3));
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(got.values(), (std::vector<P>{{"a", "1"}, {"b", "2"}, {"a", "3"}}));
  sub->Stop();
  sub->Stop();  // idempotent
  ASSERT_TRUE(bus.Publish("a", "after stop").ok());
}

TYPED_TEST_P(BusConformanceTest, PublishWithoutSubscribersIsFine) {
  EXPECT_TRUE(this->bus_->Publish(kHeartbeatChannel, "{}").ok());
}

TYPED_TEST_P(BusConformanceTest, StreamConsumerDeliversEverythingOnce) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.AppendBatch("s", Numbered("early", 300)).ok());
  Collector<std::string> got;
  {
    StreamConsumer consumer(this->bus_, "s", "g", "c",
                            [&](const std::vector<Message>& batch) {
                              for (const auto& m : batch) got.Add(m.payload);
                            },
                            64);
    consumer.Start();
    for (const auto& p : Numbered("late", 100)) ASSERT_TRUE(bus.Append("s", p).ok());
    ASSERT_TRUE(got.WaitForCount(400));
    consumer.Stop();
  }
  auto expected = Numbered("early", 300);
  auto late = Numbered("late", 100);
  expected.insert(expected.end(), late.begin(), late.end());
  EXPECT_EQ(got.values(), expected);  // one consumer: in order, nothing twice
  // Everything was acknowledged.
  auto restarted = this->harness_.AfterRestart(this->bus_, "s", "g", "c");
  auto pending = restarted->ReadGroup("s", "g", "c", 10, milliseconds(0));
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
}

TYPED_TEST_P(BusConformanceTest, TwoStreamConsumersShareAGroup) {
  Bus& bus = *this->bus_;
  Collector<std::string> got;
  auto handler = [&](const std::vector<Message>& batch) {
    for (const auto& m : batch) got.Add(m.payload);
  };
  StreamConsumer a(this->bus_, "s", "g", "a", handler, 8);
  StreamConsumer b(this->bus_, "s", "g", "b", handler, 8);
  a.Start();
  b.Start();
  ASSERT_TRUE(bus.AppendBatch("s", Numbered("m", 200)).ok());
  ASSERT_TRUE(got.WaitForCount(200));
  a.Stop();
  b.Stop();
  auto values = got.values();
  std::sort(values.begin(), values.end());
  auto expected = Numbered("m", 200);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(values, expected);
}

TYPED_TEST_P(BusConformanceTest, StreamConsumerRedeliversAFailedBatch) {
  Bus& bus = *this->bus_;
  Collector<std::string> got;
  std::atomic<bool> failed_once{false};
  StreamConsumer consumer(this->bus_, "s", "g", "c", [&](const std::vector<Message>& batch) {
    for (const auto& m : batch) got.Add(m.payload);
    if (!failed_once.exchange(true)) throw std::runtime_error("handler bug");
  });
  consumer.Start();
  ASSERT_TRUE(bus.Append("s", "m").ok());
  ASSERT_TRUE(got.WaitForCount(2));
  consumer.Stop();
  EXPECT_EQ(got.values(), (std::vector<std::string>{"m", "m"}));
}

TYPED_TEST_P(BusConformanceTest, StreamConsumerResumesUnackedAfterRestart) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.AppendBatch("s", Numbered("m", 3)).ok());
  // A previous incarnation of "c" took everything and died before acknowledging.
  auto taken = bus.ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(taken.ok());
  ASSERT_EQ(taken->size(), 3u);
  Collector<std::string> got;
  StreamConsumer consumer(this->bus_, "s", "g", "c", [&](const std::vector<Message>& batch) {
    for (const auto& m : batch) got.Add(m.payload);
  });
  consumer.Start();
  ASSERT_TRUE(got.WaitForCount(3));
  consumer.Stop();
  EXPECT_EQ(got.values(), Numbered("m", 3));
}

TYPED_TEST_P(BusConformanceTest, StreamConsumerStopsPromptlyAndRestarts) {
  Collector<std::string> got;
  StreamConsumer consumer(this->bus_, "s", "g", "c", [&](const std::vector<Message>& batch) {
    for (const auto& m : batch) got.Add(m.payload);
  });
  consumer.Start();
  consumer.Start();  // no second thread
  auto start = std::chrono::steady_clock::now();
  consumer.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));
  ASSERT_TRUE(this->bus_->Append("s", "after").ok());
  consumer.Start();
  ASSERT_TRUE(got.WaitForCount(1));
  EXPECT_EQ(got.values(), std::vector<std::string>{"after"});
}

TYPED_TEST_P(BusConformanceTest, DeferredConsumerAcknowledgesOnlyCompletedBatches) {
  Bus& bus = *this->bus_;
  ASSERT_TRUE(bus.AppendBatch("s", Numbered("m", 10)).ok());
  Collector<std::string> got;
  std::mutex mu;
  std::vector<std::function<void()>> completions;  // guarded by mu
  {
    StreamConsumer consumer(
        this->bus_, "s", "g", "c",
        StreamConsumer::DeferredHandler(
            [&](const std::vector<Message>& batch, std::function<void()> acknowledge) {
              {
                std::lock_guard<std::mutex> lock(mu);
                completions.push_back(std::move(acknowledge));
              }
              for (const auto& m : batch) got.Add(m.payload);  // after: counts imply completions
            }),
        4);
    consumer.Start();
    // The consumer reads on without waiting for completions.
    ASSERT_TRUE(got.WaitForCount(10));
    {
      std::lock_guard<std::mutex> lock(mu);
      ASSERT_GE(completions.size(), 3u);
      completions.front()();  // only the first batch is durable
    }
    // The next read acknowledges it; then stop with the rest still pending.
    ASSERT_TRUE(bus.Append("s", "last").ok());
    ASSERT_TRUE(got.WaitForCount(11));
    consumer.Stop();
  }
  // A restart redelivers exactly the batches that never completed.
  auto restarted = this->harness_.AfterRestart(this->bus_, "s", "g", "c");
  auto pending = restarted->ReadGroup("s", "g", "c", 100, milliseconds(0));
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->size(), 11u - 4u);
  // Late completions after the consumer is gone are harmless.
  std::lock_guard<std::mutex> lock(mu);
  for (auto& c : completions) c();
}

REGISTER_TYPED_TEST_SUITE_P(BusConformanceTest, AppendReadAck, PayloadsAreOpaqueBytes,
                            EnsureGroupIsIdempotentAndReadsFromStart, BatchKeepsOrder,
                            BlockingReadWakesOnAppend, BlockingReadTimesOutEmpty,
                            TwoConsumersSplitTheWork, ReadingAgainWithoutAckGivesNewEntries,
                            UnackedEntriesAreRedeliveredAfterRestart, RewindPendingOnTheSameBus,
                            AckRejectsMalformedIds, PubSubDeliversSubscribedChannelsInOrder,
                            PublishWithoutSubscribersIsFine, StreamConsumerDeliversEverythingOnce,
                            TwoStreamConsumersShareAGroup, StreamConsumerRedeliversAFailedBatch,
                            StreamConsumerResumesUnackedAfterRestart,
                            StreamConsumerStopsPromptlyAndRestarts,
                            DeferredConsumerAcknowledgesOnlyCompletedBatches);

}  // namespace flowmesh::bus::testing
