// The Bus contract on RedisBus against a real redis-server, plus failure handling:
// Redis killed and restarted mid-stream, AUTH, nothing listening.
#include <gtest/gtest.h>

#include "support/redis_server.h"
#include "unit/bus/bus_conformance.h"

namespace flowmesh::bus::testing {
namespace {

using flowmesh::testing::RedisServer;
using flowmesh::testing::RedisServerOptions;

RedisConfig ConfigFor(const RedisServer& server) {
  RedisConfig config;
  config.host = server.host();
  config.port = server.port();
  config.password = server.password();
  return config;
}

class RedisHarness {
 public:
  Status SetUp() { return server_.Start(); }
  std::shared_ptr<Bus> bus() { return MakeRedisBus(ConfigFor(server_)); }
  // A restarted process is a new client with no memory of what it was handed.
  std::shared_ptr<Bus> AfterRestart(const std::shared_ptr<Bus>&, const std::string&,
                                    const std::string&, const std::string&) {
    return MakeRedisBus(ConfigFor(server_));
  }
  std::unique_ptr<Subscriber> Subscribe(std::vector<std::string> channels,
                                        Subscriber::Handler handler) {
    return SubscribeRedis(ConfigFor(server_), std::move(channels), std::move(handler));
  }

 private:
  RedisServer server_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Redis, BusConformanceTest, RedisHarness);

class RedisBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::Available()) GTEST_SKIP() << "redis-server not installed";
  }
};

TEST_F(RedisBusTest, UnavailableWhenNothingListens) {
  RedisConfig config;
  config.port = RedisServer::FreePort();
  auto bus = MakeRedisBus(config);
  std::string endpoint = "127.0.0.1:" + std::to_string(config.port);
  auto id = bus->Append("s", "x");
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(id.status().message().find(endpoint), std::string::npos) << id.status().ToString();
  EXPECT_EQ(bus->AppendBatch("s", {"a", "b"}).code(), StatusCode::kUnavailable);
  EXPECT_EQ(bus->EnsureGroup("s", "g").code(), StatusCode::kUnavailable);
  EXPECT_EQ(bus->Ack("s", "g", {"1-1"}).code(), StatusCode::kUnavailable);
  EXPECT_EQ(bus->Publish("c", "x").code(), StatusCode::kUnavailable);
  auto read = bus->ReadGroup("s", "g", "c", 10, milliseconds(100));
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(read.status().message().find(endpoint), std::string::npos);

  // Consumers and subscribers keep retrying in the background and still stop promptly.
  StreamConsumer consumer(bus, "s", "g", "c", [](const std::vector<Message>&) {});
  consumer.Start();
  auto sub = SubscribeRedis(config, {"c"}, [](const std::string&, const std::string&) {});
  auto start = std::chrono::steady_clock::now();
  consumer.Stop();
  sub->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));
}

TEST_F(RedisBusTest, ConnectsOnceRedisComesUp) {
  RedisServer server;
  ASSERT_TRUE(server.Start().ok());
  auto bus = MakeRedisBus(ConfigFor(server));
  server.Kill();
  EXPECT_EQ(bus->Append("s", "x").status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(server.Start().ok());
  auto id = bus->Append("s", "y");
  EXPECT_TRUE(id.ok()) << id.status().ToString();
}

TEST_F(RedisBusTest, AuthWithPassword) {
  RedisServer server(RedisServerOptions{.password = "s3cret pass"});
  ASSERT_TRUE(server.Start().ok());
  auto config = ConfigFor(server);
  auto bus = MakeRedisBus(config);
  ASSERT_TRUE(bus->Append("s", "x").ok());
  auto read = bus->ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(Payloads(*read), std::vector<std::string>{"x"});

  Collector<std::string> got;
  auto sub = SubscribeRedis(config, {"c"}, [&](const std::string&, const std::string& p) {
    got.Add(p);
  });
  ASSERT_TRUE(bus->Publish("c", "hello").ok());
  ASSERT_TRUE(got.WaitForCount(1));

  config.password = "wrong";
  auto wrong = MakeRedisBus(config)->Append("s", "x");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated) << wrong.status().ToString();
  config.password.clear();
  auto none = MakeRedisBus(config)->Append("s", "x");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnauthenticated) << none.status().ToString();
}

// Redis crashes while a consumer is mid-batch and comes back with its data (AOF): the
// consumer resumes and every entry arrives at least once.
TEST_F(RedisBusTest, StreamConsumerSurvivesRedisRestart) {
  RedisServer server(RedisServerOptions{.password = "", .appendonly = true});
  ASSERT_TRUE(server.Start().ok());
  auto bus = MakeRedisBus(ConfigFor(server));
  ASSERT_TRUE(bus->AppendBatch("s", Numbered("a", 200)).ok());

  Collector<std::string> got;
  std::mutex mu;
  std::condition_variable cv;
  bool holding = false;  // the handler holds a batch containing a100, unacknowledged
  bool killed = false;
  StreamConsumer consumer(
      bus, "s", "g", "c",
      [&](const std::vector<Message>& batch) {
        for (const auto& m : batch) got.Add(m.payload);
        std::unique_lock<std::mutex> lock(mu);
        for (const auto& m : batch) {
          if (m.payload == "a100" && !killed) {
            holding = true;
            cv.notify_all();
            cv.wait(lock, [&] { return killed; });
          }
        }
      },
      16);
  consumer.Start();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, seconds(20), [&] { return holding; }));
  }
  server.Kill();
  {
    std::lock_guard<std::mutex> lock(mu);
    killed = true;
    cv.notify_all();
  }
  // While Redis is down the producer sees Unavailable.
  EXPECT_EQ(bus->Append("s", "lost").status().code(), StatusCode::kUnavailable);
  ASSERT_TRUE(server.Start().ok());
  for (const auto& p : Numbered("b", 100)) {
    auto id = bus->Append("s", p);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
  }
  std::set<std::string> expected;
  for (const auto& p : Numbered("a", 200)) expected.insert(p);
  for (const auto& p : Numbered("b", 100)) expected.insert(p);
  bool all = got.WaitFor([&](const std::vector<std::string>& v) {
    std::set<std::string> seen(v.begin(), v.end());
    return std::includes(seen.begin(), seen.end(), expected.begin(), expected.end());
  });
  consumer.Stop();
  auto values = got.values();
  std::set<std::string> seen(values.begin(), values.end());
  std::vector<std::string> missing;
  std::set_difference(expected.begin(), expected.end(), seen.begin(), seen.end(),
                      std::back_inserter(missing));
  EXPECT_TRUE(all);
  EXPECT_TRUE(missing.empty()) << missing.size() << " missing, first " << missing[0];
  EXPECT_EQ(seen, expected);

  // Nothing is left pending once the consumer caught up.
  auto fresh = MakeRedisBus(ConfigFor(server));
  auto pending = fresh->ReadGroup("s", "g", "c", 10, milliseconds(0));
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
}

// A reconnect counts as a restart: what was handed out but not acknowledged comes again.
TEST_F(RedisBusTest, PendingRedeliveredAfterReconnect) {
  RedisServer server(RedisServerOptions{.password = "", .appendonly = true});
  ASSERT_TRUE(server.Start().ok());
  auto bus = MakeRedisBus(ConfigFor(server));
  ASSERT_TRUE(bus->AppendBatch("s", Numbered("m", 3)).ok());
  auto taken = bus->ReadGroup("s", "g", "c", 2, milliseconds(1000));
  ASSERT_TRUE(taken.ok());
  ASSERT_EQ(Payloads(*taken), (std::vector<std::string>{"m0", "m1"}));
  ASSERT_TRUE(server.Restart().ok());
  auto again = bus->ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(Payloads(*again), (std::vector<std::string>{"m0", "m1"}));
  auto rest = bus->ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  EXPECT_EQ(Payloads(*rest), std::vector<std::string>{"m2"});
}

// Redis comes back empty (no persistence): the group is recreated and new entries flow.
TEST_F(RedisBusTest, StreamConsumerRecreatesGroupAfterDataLoss) {
  RedisServer server;
  ASSERT_TRUE(server.Start().ok());
  auto bus = MakeRedisBus(ConfigFor(server));
  Collector<std::string> got;
  StreamConsumer consumer(bus, "s", "g", "c", [&](const std::vector<Message>& batch) {
    for (const auto& m : batch) got.Add(m.payload);
  });
  consumer.Start();
  ASSERT_TRUE(bus->Append("s", "before").ok());
  ASSERT_TRUE(got.WaitForCount(1));
  ASSERT_TRUE(server.Restart().ok());
  auto id = bus->Append("s", "after");
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  ASSERT_TRUE(got.WaitForCount(2));
  consumer.Stop();
  EXPECT_EQ(got.values(), (std::vector<std::string>{"before", "after"}));
}

TEST_F(RedisBusTest, ReadGroupRecreatesMissingGroup) {
  RedisServer server;
  ASSERT_TRUE(server.Start().ok());
  auto bus = MakeRedisBus(ConfigFor(server));
  ASSERT_TRUE(bus->EnsureGroup("s", "g").ok());
  ASSERT_TRUE(bus->ReadGroup("s", "g", "c", 10, milliseconds(0)).ok());
  ASSERT_TRUE(server.Restart().ok());  // empty again
  auto other = MakeRedisBus(ConfigFor(server));
  ASSERT_TRUE(other->Append("s", "x").ok());  // stream exists, group does not
  auto read = bus->ReadGroup("s", "g", "c", 10, milliseconds(1000));
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(Payloads(*read), std::vector<std::string>{"x"});
}

TEST_F(RedisBusTest, SubscriberResubscribesAfterRestart) {
  RedisServer server;
  ASSERT_TRUE(server.Start().ok());
  auto config = ConfigFor(server);
  Collector<std::string> got;
  auto sub = SubscribeRedis(config, {kHeartbeatChannel},
                            [&](const std::string&, const std::string& p) { got.Add(p); });
  auto bus = MakeRedisBus(config);
  ASSERT_TRUE(bus->Publish(kHeartbeatChannel, "first").ok());
  ASSERT_TRUE(got.WaitForCount(1));
  ASSERT_TRUE(server.Restart().ok());
  // Pub/sub is best effort: publish until the resubscribed listener hears one.
  bool heard = false;
  for (int i = 0; i < 200 && !heard; ++i) {
    (void)bus->Publish(kHeartbeatChannel, "again");
    heard = got.WaitForCount(2, milliseconds(100));
  }
  EXPECT_TRUE(heard);
  sub->Stop();
}

TEST_F(RedisBusTest, ConcurrentProducersAndBlockingReaders) {
  RedisServer server;
  ASSERT_TRUE(server.Start().ok());
  auto bus = MakeRedisBus(ConfigFor(server));
  ASSERT_TRUE(bus->EnsureGroup("s", "g").ok());
  Collector<std::string> got;
  auto handler = [&](const std::vector<Message>& batch) {
    for (const auto& m : batch) got.Add(m.payload);
  };
  // Two consumers on one bus: their blocking reads must not hold up the producers.
  StreamConsumer a(bus, "s", "g", "a", handler, 10);
  StreamConsumer b(bus, "s", "g", "b", handler, 10);
  a.Start();
  b.Start();
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t) {
    producers.emplace_back([&, t] {
      for (const auto& p : Numbered("t" + std::to_string(t) + "-", 100)) {
        EXPECT_TRUE(bus->Append("s", p).ok());
      }
    });
  }
  for (auto& p : producers) p.join();
  ASSERT_TRUE(got.WaitForCount(400));
  a.Stop();
  b.Stop();
  auto values = got.values();
  EXPECT_EQ(std::set<std::string>(values.begin(), values.end()).size(), 400u);
}

}  // namespace
}  // namespace flowmesh::bus::testing
