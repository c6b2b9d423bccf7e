// The metrics registry: children by labels, histogram buckets, collectors, the text
// format's escaping and ordering, JSON, concurrent updates and the child cap.
#include "common/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace flowmesh::metrics {
namespace {

TEST(MetricsTest, CounterAndGaugeWithLabels) {
  Registry r;
  auto& tasks = r.AddCounter("flowmesh_tasks_total", "Tasks that ended.", {"task_type", "status"});
  tasks.With({"echo", "DONE"}).Inc();
  tasks.With({"echo", "DONE"}).Inc(2);
  tasks.With({"inference", "FAILED"}).Inc();
  tasks.With({"echo", "DONE"}).Inc(-5);  // ignored: counters only go up
  auto& depth = r.AddGauge("flowmesh_queue_depth", "Ready tasks.");
  depth.Get().Set(7);
  depth.Get().Dec(2);

  EXPECT_EQ(r.RenderText(),
            "# HELP flowmesh_queue_depth Ready tasks.\n"
            "# TYPE flowmesh_queue_depth gauge\n"
            "flowmesh_queue_depth 5\n"
            "# HELP flowmesh_tasks_total Tasks that ended.\n"
            "# TYPE flowmesh_tasks_total counter\n"
            "flowmesh_tasks_total{task_type=\"echo\",status=\"DONE\"} 3\n"
            "flowmesh_tasks_total{task_type=\"inference\",status=\"FAILED\"} 1\n");
  EXPECT_TRUE(r.Has("flowmesh_queue_depth"));
  EXPECT_FALSE(r.Has("flowmesh_nothing"));
}

TEST(MetricsTest, RegisteringTwiceReturnsTheSameFamily) {
  Registry r;
  auto& a = r.AddCounter("x_total", "help", {"a"});
  auto& b = r.AddCounter("x_total", "other help", {"a"});
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a.With({"1"}), &b.With({"1"}));  // children keep their address
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndLeInclusive) {
  Registry r;
  auto& h = r.AddHistogram("lat_seconds", "Latency.", {0.1, 1, 10});
  Histogram& c = h.Get();
  for (double v : {0.05, 0.1, 0.5, 1.0, 5.0, 100.0}) c.Observe(v);
  Histogram::Snapshot s = c.Read();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4, 5, 6}));
  EXPECT_EQ(s.count, 6u);
  EXPECT_DOUBLE_EQ(s.sum, 106.65);
  std::string text = r.RenderText();
  EXPECT_NE(text.find("# TYPE lat_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"1\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"10\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 6\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_sum 106.65\n"), std::string::npos);
  EXPECT_NE(text.find("lat_seconds_count 6\n"), std::string::npos);
}

TEST(MetricsTest, HistogramWithLabelsPutsLeLast) {
  Registry r;
  auto& h = r.AddHistogram("h", "", {1}, {"node"});
  h.With({"a"}).Observe(2);
  std::string text = r.RenderText();
  EXPECT_NE(text.find("h_bucket{node=\"a\",le=\"1\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_bucket{node=\"a\",le=\"+Inf\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_count{node=\"a\"} 1\n"), std::string::npos) << text;
}

TEST(MetricsTest, ExponentialBuckets) {
  auto b = ExponentialBuckets(0.001, 2, 4);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_DOUBLE_EQ(b[3], 0.008);
}

TEST(MetricsTest, EscapesLabelValuesAndHelp) {
  Registry r;
  r.AddGauge("g", "line one\nback\\slash", {"path"}).With({"a\"b\\c\nd"}).Set(1);
  EXPECT_EQ(r.RenderText(),
            "# HELP g line one\\nback\\\\slash\n"
            "# TYPE g gauge\n"
            "g{path=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsTest, FormatsSpecialValues) {
  EXPECT_EQ(Registry::FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(Registry::FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(Registry::FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(Registry::FormatValue(3), "3");
  EXPECT_EQ(Registry::FormatValue(0.25), "0.25");
  EXPECT_EQ(Registry::FormatValue(1e21), "1e+21");
}

TEST(MetricsTest, ValidatesNames) {
  EXPECT_TRUE(Registry::ValidName("flowmesh_tasks_total"));
  EXPECT_TRUE(Registry::ValidName("a:b"));
  EXPECT_FALSE(Registry::ValidName("1abc"));
  EXPECT_FALSE(Registry::ValidName("a-b"));
  EXPECT_FALSE(Registry::ValidName(""));
  EXPECT_TRUE(Registry::ValidLabelName("task_type"));
  EXPECT_FALSE(Registry::ValidLabelName("__reserved"));
  EXPECT_FALSE(Registry::ValidLabelName("le"));
  EXPECT_FALSE(Registry::ValidLabelName("a:b"));
}

TEST(MetricsTest, CollectorsRenderAtScrapeTime) {
  Registry r;
  int calls = 0;
  r.AddCollector("flowmesh_worker_slots", "Slots.", Type::kGauge, [&calls] {
    ++calls;
    return std::vector<Sample>{{{{"node", "a"}}, 4}, {{{"node", "b"}}, 2}};
  });
  std::string text = r.RenderText();
  EXPECT_EQ(text,
            "# HELP flowmesh_worker_slots Slots.\n"
            "# TYPE flowmesh_worker_slots gauge\n"
            "flowmesh_worker_slots{node=\"a\"} 4\n"
            "flowmesh_worker_slots{node=\"b\"} 2\n");
  EXPECT_EQ(calls, 1);
  nlohmann::json j = r.ToJson();
  EXPECT_EQ(j["flowmesh_worker_slots"][1]["node"], "b");
  EXPECT_EQ(j["flowmesh_worker_slots"][1]["value"], 2);
}

TEST(MetricsTest, ToJson) {
  Registry r;
  r.AddGauge("plain", "").Get().Set(2.5);
  r.AddCounter("by_type_total", "", {"type"}).With({"echo"}).Inc(3);
  r.AddHistogram("h_seconds", "", {1}).Get().Observe(0.5);
  nlohmann::json j = r.ToJson();
  EXPECT_EQ(j["plain"], 2.5);
  EXPECT_EQ(j["by_type_total"][0]["type"], "echo");
  EXPECT_EQ(j["by_type_total"][0]["value"], 3);
  EXPECT_EQ(j["h_seconds"]["count"], 1);
  EXPECT_EQ(j["h_seconds"]["buckets"]["1"], 1);
  EXPECT_EQ(j["h_seconds"]["buckets"]["+Inf"], 1);
}

TEST(MetricsTest, ChildrenAreCappedIntoOther) {
  Registry r;
  auto& f = r.AddCounter("c_total", "", {"k"});
  for (size_t i = 0; i < Family<Counter>::kMaxChildren + 10; ++i) f.With({std::to_string(i)}).Inc();
  EXPECT_DOUBLE_EQ(f.With({"_other"}).Value(), 10);
  EXPECT_EQ(&f.With({"another"}), &f.With({"_other"}));
}

TEST(MetricsTest, ConcurrentUpdatesAndRendersAreExact) {
  Registry r;
  auto& c = r.AddCounter("n_total", "", {"t"});
  auto& h = r.AddHistogram("d_seconds", "", {0.5});
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&c, &h, t] {
      Counter& mine = c.With({t % 2 == 0 ? "even" : "odd"});
      for (int i = 0; i < kEach; ++i) {
        mine.Inc();
        h.Get().Observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  threads.emplace_back([&r] {
    for (int i = 0; i < 200; ++i) ASSERT_FALSE(r.RenderText().empty());
  });
  for (auto& t : threads) t.join();
  EXPECT_DOUBLE_EQ(c.With({"even"}).Value(), 2.0 * kEach);
  EXPECT_DOUBLE_EQ(c.With({"odd"}).Value(), 2.0 * kEach);
  Histogram::Snapshot s = h.Get().Read();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_EQ(s.cumulative[0], static_cast<uint64_t>(kThreads * kEach / 2));
}

}  // namespace
}  // namespace flowmesh::metrics
