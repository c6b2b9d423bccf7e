// The Bus contract on InProcessBus, plus what is specific to it.
#include <gtest/gtest.h>

#include <regex>

#include "unit/bus/bus_conformance.h"

namespace flowmesh::bus::testing {
namespace {

class InProcessHarness {
 public:
  Status SetUp() { return Status::Ok(); }
  std::shared_ptr<Bus> bus() { return bus_; }
  // There is no process to restart: a consumer starting over is a rewind of its session.
  std::shared_ptr<Bus> AfterRestart(const std::shared_ptr<Bus>& bus, const std::string& stream,
                                    const std::string& group, const std::string& consumer) {
    bus->RewindPending(stream, group, consumer);
    return bus;
  }
  std::unique_ptr<Subscriber> Subscribe(std::vector<std::string> channels,
                                        Subscriber::Handler handler) {
    return SubscribeInProcess(bus_, std::move(channels), std::move(handler));
  }

 private:
  std::shared_ptr<Bus> bus_ = MakeInProcessBus();
};

INSTANTIATE_TYPED_TEST_SUITE_P(InProcess, BusConformanceTest, InProcessHarness);

TEST(InProcessBusTest, IdsLookLikeRedisIdsAndIncrease) {
  auto bus = MakeInProcessBus();
  std::string previous = "0-0";
  for (int i = 0; i < 1000; ++i) {
    auto id = bus->Append("s", "x");
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(std::regex_match(*id, std::regex("[0-9]+-[0-9]+"))) << *id;
    ASSERT_LT(ParseId(previous), ParseId(*id));
    previous = *id;
  }
}

TEST(InProcessBusTest, StreamsAreIndependent) {
  auto bus = MakeInProcessBus();
  ASSERT_TRUE(bus->Append(NodeStream("n1"), "for n1").ok());
  ASSERT_TRUE(bus->Append(kEventsStream, "event").ok());
  auto r = bus->ReadGroup(NodeStream("n1"), "supervisor", "n1", 10, milliseconds(0));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Payloads(*r), std::vector<std::string>{"for n1"});
  auto none = bus->ReadGroup(NodeStream("n2"), "supervisor", "n2", 10, milliseconds(0));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(InProcessBusTest, SubscriberMayStopItselfFromItsHandler) {
  auto bus = MakeInProcessBus();
  Collector<std::string> got;
  std::unique_ptr<Subscriber> sub;
  std::mutex mu;
  {
    std::lock_guard<std::mutex> lock(mu);
    sub = SubscribeInProcess(bus, {"c"}, [&](const std::string&, const std::string& p) {
      {
        std::lock_guard<std::mutex> lock(mu);
        sub->Stop();
      }
      got.Add(p);
    });
  }
  ASSERT_TRUE(bus->Publish("c", "1").ok());
  ASSERT_TRUE(got.WaitForCount(1));
  ASSERT_TRUE(bus->Publish("c", "2").ok());
  std::lock_guard<std::mutex> lock(mu);
  sub.reset();
  EXPECT_EQ(got.values(), std::vector<std::string>{"1"});
}

TEST(InProcessBusTest, SubscriberOutlivingTheBusIsSafe) {
  auto bus = MakeInProcessBus();
  auto sub = SubscribeInProcess(bus, {"c"}, [](const std::string&, const std::string&) {});
  bus.reset();
  sub->Stop();
}

}  // namespace
}  // namespace flowmesh::bus::testing
