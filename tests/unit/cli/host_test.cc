#include "cli/host.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

#include <gtest/gtest.h>

#include "common/process.h"
#include "support/temp_dir.h"

namespace flowmesh::cli {
namespace {

TEST(TailTest, LastLines) {
  EXPECT_EQ(TailLines("a\nb\nc\n", 2), "b\nc\n");
  EXPECT_EQ(TailLines("a\nb\nc", 2), "b\nc");
  EXPECT_EQ(TailLines("a\nb\n", 5), "a\nb\n");
  EXPECT_EQ(TailLines("a\nb\n", 0), "");
  EXPECT_EQ(TailLines("", 3), "");
}

TEST(TailTest, FileTailAndMissingFile) {
  testing::TempDir dir;
  {
    std::ofstream out(dir / "server.log");
    for (int i = 1; i <= 100; ++i) out << "line " << i << "\n";
  }
  EXPECT_EQ(TailFile(dir / "server.log", 2), "line 99\nline 100\n");
  EXPECT_EQ(TailFile(dir / "absent.log", 2), "");
}

TEST(PidFileTest, RoundTripAndMalformed) {
  testing::TempDir dir;
  ASSERT_TRUE(WritePidFile(dir / "server.pid", 1234).ok());
  EXPECT_EQ(ReadPidFile(dir / "server.pid"), 1234);
  EXPECT_EQ(ReadPidFile(dir / "missing.pid"), 0);
  { std::ofstream(dir / "bad.pid") << "garbage"; }
  EXPECT_EQ(ReadPidFile(dir / "bad.pid"), 0);
}

TEST(GpuTargetsTest, ListsAllAndErrors) {
  auto two = ParseGpuTargets("0,1,1", 0);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, (std::vector<std::string>{"0", "1"}));
  auto all = ParseGpuTargets("all", 3);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_FALSE(ParseGpuTargets("all", 0).ok());
  EXPECT_FALSE(ParseGpuTargets("0,x", 2).ok());
  EXPECT_FALSE(ParseGpuTargets("", 2).ok());
  EXPECT_FALSE(ParseGpuTargets("-1", 2).ok());
}

TEST(PortTest, ListeningPortIsInUse) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);
  EXPECT_TRUE(PortInUse(port));
  ::close(fd);
  EXPECT_FALSE(PortInUse(port));
}

TEST(ExecutableTest, FindsOnPath) {
  EXPECT_EQ(FindExecutable("sh", "/nonexistent:/bin:/usr/bin").empty(), false);
  EXPECT_EQ(FindExecutable("no-such-program-xyz", "/bin:/usr/bin"), "");
  EXPECT_EQ(FindExecutable("/bin/sh", ""), "/bin/sh");
}

TEST(ProcessTest, DescendantsAndMatchSeeASpawnedChild) {
  SpawnOptions so;
  so.argv = {"/bin/sleep", "30"};
  auto pid = Spawn(so);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  auto kids = Descendants(::getpid());
  EXPECT_NE(std::find(kids.begin(), kids.end(), *pid), kids.end());
  EXPECT_TRUE(ProcessMatches(*pid, "sleep"));
  EXPECT_FALSE(ProcessMatches(*pid, "redis-server"));
  TerminateProcess(*pid, std::chrono::milliseconds(2000));
  EXPECT_FALSE(ProcessMatches(*pid, "sleep"));
}

TEST(ProcessTest, ProcessesWithEnvFindsMarkedProcessesOnly) {
  testing::TempDir dir;
  std::string marker = "FLOWMESH_STACK_HOME=" + dir.path();
  SpawnOptions marked;
  marked.argv = {"/bin/sleep", "30"};
  marked.env = {{"FLOWMESH_STACK_HOME", dir.path()}};
  SpawnOptions unmarked;
  unmarked.argv = {"/bin/sleep", "30"};
  auto a = Spawn(marked);
  auto b = Spawn(unmarked);
  ASSERT_TRUE(a.ok() && b.ok());
  auto found = ProcessesWithEnv(marker);
  EXPECT_EQ(found, std::vector<pid_t>{*a});
  TerminateProcess(*a, std::chrono::milliseconds(2000));
  TerminateProcess(*b, std::chrono::milliseconds(2000));
  EXPECT_TRUE(ProcessesWithEnv(marker).empty());
}

}  // namespace
}  // namespace flowmesh::cli
