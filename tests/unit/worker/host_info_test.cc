#include "worker/host_info.h"

#include <gtest/gtest.h>

namespace flowmesh::worker {
namespace {

TEST(HostInfoTest, ParsesMemInfo) {
  EXPECT_EQ(ParseMemTotalMb("MemTotal:       16384000 kB\nMemFree:  1 kB\n"), 16000);
  EXPECT_EQ(ParseMemTotalMb("nothing"), 0);
}

TEST(HostInfoTest, ParsesNvidiaSmiCsv) {
  auto gpus = ParseNvidiaSmiCsv("0, NVIDIA H100 80GB HBM3, 81559\n1, NVIDIA A10, 23028\n\nbad\n");
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[0].index, 0);
  EXPECT_EQ(gpus[0].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(gpus[0].memory_mb, 81559);
  EXPECT_EQ(gpus[1].index, 1);
}

TEST(HostInfoTest, DetectsThisHost) {
  HostInfo host = DetectHost(false);
  EXPECT_GE(host.cpu_cores, 1);
  EXPECT_GT(host.memory_mb, 0);
  EXPECT_TRUE(host.gpus.empty());
  EXPECT_EQ(SplitList(" a, b,,c "), (std::vector<std::string>{"a", "b", "c"}));
}

}  // namespace
}  // namespace flowmesh::worker
