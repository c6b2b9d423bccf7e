#include "training/bridge_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace flowmesh::training {
namespace {

// Alive and not a zombie.
bool Alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t close = all.rfind(')');
  return close == std::string::npos || all.size() < close + 3 || all[close + 2] != 'Z';
}

bool GoneWithin(pid_t pid, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!Alive(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition
  }
  return false;
}

BridgeCommand Shell(const std::string& script) {
  return BridgeCommand{{"/bin/sh", "-c", script}, {}, ""};
}

TEST(BridgeProcessTest, ForwardsLinesAndExitCode) {
  BridgeCommand command =
      Shell("read line; echo \"got $line\"; echo \"$FM_X\" >&2; printf tail; exit 3");
  command.env["FM_X"] = "from env";
  auto process = BridgeProcess::Start(command);
  ASSERT_TRUE(process.ok()) << process.status().ToString();
  ASSERT_TRUE((*process)->Send("hello").ok());
  std::vector<std::string> out, err;
  std::atomic<bool> cancelled{false};
  auto exit = (*process)->Pump(
      cancelled, [&](std::string l) { out.push_back(l); },
      [&](std::string l) { err.push_back(l); });
  ASSERT_TRUE(exit.ok()) << exit.status().ToString();
  EXPECT_FALSE(exit->signaled);
  EXPECT_EQ(exit->exit_code, 3);
  EXPECT_EQ(out, (std::vector<std::string>{"got hello", "tail"}));
  EXPECT_EQ(err, (std::vector<std::string>{"from env"}));
  EXPECT_EQ(exit->stderr_tail.back(), "from env");
  EXPECT_EQ(exit->Describe(), "exited with code 3");
}

TEST(BridgeProcessTest, ReportsASignal) {
  auto process = BridgeProcess::Start(Shell("kill -9 $$"));
  ASSERT_TRUE(process.ok());
  std::atomic<bool> cancelled{false};
  auto exit = (*process)->Pump(cancelled, nullptr, nullptr);
  ASSERT_TRUE(exit.ok());
  EXPECT_TRUE(exit->signaled);
  EXPECT_EQ(exit->signal, SIGKILL);
  EXPECT_NE(exit->Describe().find("signal 9"), std::string::npos);
}

TEST(BridgeProcessTest, KeepsTheLastStderrLines) {
  auto process =
      BridgeProcess::Start(Shell("i=0; while [ $i -lt 50 ]; do echo line$i >&2; i=$((i+1)); done"));
  ASSERT_TRUE(process.ok());
  std::atomic<bool> cancelled{false};
  auto exit = (*process)->Pump(cancelled, nullptr, nullptr);
  ASSERT_TRUE(exit.ok());
  ASSERT_EQ(exit->stderr_tail.size(), BridgeExit::kStderrTailLines);
  EXPECT_EQ(exit->stderr_tail.front(), "line30");
  EXPECT_EQ(exit->stderr_tail.back(), "line49");
}

TEST(BridgeProcessTest, CancelKillsTheWholeGroup) {
  auto process = BridgeProcess::Start(Shell("sleep 1000 & echo $!; wait"));
  ASSERT_TRUE(process.ok());
  pid_t child = (*process)->pid();
  pid_t grandchild = 0;
  std::atomic<bool> cancelled{false};
  auto exit = (*process)->Pump(
      cancelled,
      [&](std::string line) {
        grandchild = std::stoi(line);
        cancelled = true;
      },
      nullptr);
  ASSERT_FALSE(exit.ok());
  EXPECT_EQ(exit.status().code(), StatusCode::kCancelled);
  ASSERT_GT(grandchild, 0);
  EXPECT_FALSE(Alive(child));
  EXPECT_TRUE(GoneWithin(grandchild, std::chrono::seconds(10)));
}

TEST(BridgeProcessTest, LeftoversOfAnExitedChildDoNotHoldThePump) {
  // The grandchild keeps stdout open after its parent exited; the pump must still return.
  auto process = BridgeProcess::Start(Shell("sleep 1000 & echo $!; exit 4"));
  ASSERT_TRUE(process.ok());
  pid_t grandchild = 0;
  std::atomic<bool> cancelled{false};
  auto started = std::chrono::steady_clock::now();
  auto exit = (*process)->Pump(
      cancelled, [&](std::string line) { grandchild = std::stoi(line); }, nullptr);
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->exit_code, 4);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  ASSERT_GT(grandchild, 0);
  EXPECT_TRUE(GoneWithin(grandchild, std::chrono::seconds(10)));
}

TEST(BridgeProcessTest, DestructorKillsARunningChild) {
  pid_t pid = 0;
  {
    auto process = BridgeProcess::Start(Shell("exec sleep 1000"));
    ASSERT_TRUE(process.ok());
    pid = (*process)->pid();
    EXPECT_TRUE(Alive(pid));
  }
  EXPECT_FALSE(Alive(pid));
}

TEST(BridgeProcessTest, RunToCompletion) {
  auto out = RunToCompletion(Shell("echo one; echo two"));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "one\ntwo\n");
  auto failed = RunToCompletion(Shell("echo why >&2; exit 2"));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(failed.status().message().find("exited with code 2\nwhy"), std::string::npos)
      << failed.status().message();
  EXPECT_EQ(BridgeProcess::Start(BridgeCommand{{"/no/such/python"}, {}, ""}).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(BridgeProcess::Start(BridgeCommand{{"python3"}, {}, ""}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace flowmesh::training
