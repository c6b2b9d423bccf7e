#include "executors/echo.h"
#include "executors/python.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

namespace flowmesh::executors {
namespace {

struct Harness {
  std::atomic<bool> cancelled{false};
  std::vector<std::string> lines;
  TaskContext Context(nlohmann::json spec, int attempt = 1) {
    return TaskContext{"tsk-1", "wfl-1", attempt, "echo", std::move(spec),
                       [this](std::string line) { lines.push_back(std::move(line)); },
                       [](nlohmann::json) {}, cancelled};
  }
};

TEST(EchoExecutorTest, EchoesItemsAndLogsEach) {
  Harness h;
  auto ctx = h.Context({{"data", {{"type", "list"}, {"items", {"a", 2, {{"k", "v"}}}}}}});
  auto result = EchoExecutor().Run(ctx);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  nlohmann::json expected = {{"items",
                              {{{"input", "a"}, {"output", "a"}},
                               {{"input", 2}, {"output", 2}},
                               {{"input", {{"k", "v"}}}, {"output", {{"k", "v"}}}}}}};
  EXPECT_EQ(*result, expected);
  EXPECT_EQ(h.lines.size(), 3u);
}

TEST(EchoExecutorTest, MessageWithoutData) {
  Harness h;
  auto ctx = h.Context({{"echo", {{"message", "hi"}}}});
  auto result = EchoExecutor().Run(ctx);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ((*result)["items"], nlohmann::json::parse(R"([{"input":"hi","output":"hi"}])"));

  auto empty_ctx = h.Context(nlohmann::json::object());
  auto empty = EchoExecutor().Run(empty_ctx);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)["items"], nlohmann::json::parse(R"([{"input":"","output":""}])"));
}

TEST(EchoExecutorTest, FailAttemptsIsRetryableUntilN) {
  Harness h;
  nlohmann::json spec = {{"echo", {{"fail_attempts", 2}}}};
  for (int attempt = 1; attempt <= 2; ++attempt) {
    auto ctx = h.Context(spec, attempt);
    auto result = EchoExecutor().Run(ctx);
    ASSERT_FALSE(result.ok());
    EXPECT_TRUE(IsRetryable(result.status()));
    EXPECT_EQ(result.status().message(),
              "echo: injected failure on attempt " + std::to_string(attempt));
  }
  auto ctx = h.Context(spec, 3);
  EXPECT_TRUE(EchoExecutor().Run(ctx).ok());
}

TEST(EchoExecutorTest, FailIsPermanent) {
  Harness h;
  auto ctx = h.Context({{"echo", {{"fail", "boom"}}}});
  auto result = EchoExecutor().Run(ctx);
  ASSERT_FALSE(result.ok());
  EXPECT_FALSE(IsRetryable(result.status()));
  EXPECT_NE(result.status().message().find("boom"), std::string::npos);
}

TEST(EchoExecutorTest, SleepIsCancellable) {
  Harness h;
  auto ctx = h.Context({{"echo", {{"sleep_seconds", 60}}}});
  auto start = std::chrono::steady_clock::now();
  auto run = std::async(std::launch::async, [&] { return EchoExecutor().Run(ctx); });
  h.cancelled = true;
  auto result = run.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(EchoExecutorTest, ShortSleepCompletes) {
  Harness h;
  auto ctx = h.Context({{"echo", {{"sleep_seconds", 0.05}, {"message", "x"}}}});
  EXPECT_TRUE(EchoExecutor().Run(ctx).ok());
}

TEST(ExecutorRegistryTest, BuiltinsAndUnknown) {
  auto registry = BuiltinExecutors();
  // python is offered where its sandbox works (bwrap, python3, user namespaces).
  std::vector<std::string> expected = {"api", "data_profiling", "data_retrieval", "echo"};
  if (PythonExecutor::Available(PythonExecutorConfig{}).ok()) expected.push_back("python");
  EXPECT_EQ(registry.RegisteredTaskTypes(), expected);
  EXPECT_TRUE(registry.Create("echo").ok());
  EXPECT_EQ(registry.Create("nope").status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(IsRetryable(InvalidArgument("x")));
  EXPECT_FALSE(IsRetryable(Unimplemented("x")));
  EXPECT_TRUE(IsRetryable(Unavailable("x")));
}

}  // namespace
}  // namespace flowmesh::executors
