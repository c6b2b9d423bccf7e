#include "worker/task_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "spec/task_spec.h"

namespace flowmesh::worker {
namespace {

// Collects events and lets the test wait for a terminal one.
class EventLog {
 public:
  void Add(const v1::TaskEvent& e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(e);
    cv_.notify_all();
  }
  // Waits for the terminal event of (task_id, attempt).
  v1::TaskEvent WaitTerminal(const std::string& task_id, int attempt = 1) {
    std::unique_lock<std::mutex> lock(mu_);
    v1::TaskEvent found;
    bool ok = cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      for (const auto& e : events_) {
        if (e.task_id() == task_id && e.attempt() == attempt &&
            (e.type() == "TASK_SUCCEEDED" || e.type() == "TASK_FAILED" ||
             e.type() == "TASK_CANCELLED")) {
          found = e;
          return true;
        }
      }
      return false;
    });
    EXPECT_TRUE(ok) << "no terminal event for " << task_id;
    return found;
  }
  void WaitType(const std::string& task_id, const std::string& type) {
    std::unique_lock<std::mutex> lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      for (const auto& e : events_) {
        if (e.task_id() == task_id && e.type() == type) return true;
      }
      return false;
    }));
  }
  std::vector<std::string> Types(const std::string& task_id) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> types;
    for (const auto& e : events_) {
      if (e.task_id() == task_id) types.push_back(e.type());
    }
    return types;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<v1::TaskEvent> events_;
};

class TaskRunnerTest : public ::testing::Test {
 protected:
  // inline_max 0: every result goes through the uploader.
  void MakeRunner(int slots = 2, size_t inline_max = 0) {
    runner_ = std::make_unique<TaskRunner>(
        &registry_, slots, [this](const v1::TaskEvent& e) { log_.Add(e); },
        [this](const Assignment& a, const nlohmann::json& metadata,
               const nlohmann::json& result) -> Result<std::string> {
          std::lock_guard<std::mutex> lock(upload_mu_);
          uploads_.push_back({{"task_id", a.task_id}, {"metadata", metadata}, {"result", result}});
          if (fail_uploads_) return Unavailable("server down");
          return std::string("digest-") + a.task_id;
        },
        inline_max);
  }
  static Assignment Echo(const std::string& id, nlohmann::json echo, int attempt = 1,
                         double timeout = 0) {
    Assignment a;
    a.task_id = id;
    a.workflow_id = "wfl-1";
    a.attempt = attempt;
    a.task_type = "echo";
    a.spec = {{"echo", std::move(echo)}};
    a.timeout_s = timeout;
    return a;
  }

  executors::ExecutorRegistry registry_ = executors::BuiltinExecutors();
  EventLog log_;
  std::mutex upload_mu_;
  std::vector<nlohmann::json> uploads_;
  bool fail_uploads_ = false;
  std::unique_ptr<TaskRunner> runner_;
};

TEST_F(TaskRunnerTest, SuccessUploadsThenReportsDigest) {
  MakeRunner();
  ASSERT_TRUE(runner_->Submit(Echo("t1", {{"message", "hi"}})));
  auto done = log_.WaitTerminal("t1");
  EXPECT_EQ(done.type(), "TASK_SUCCEEDED");
  EXPECT_EQ(nlohmann::json::parse(done.payload_json())["result_digest"], "digest-t1");
  EXPECT_EQ(log_.Types("t1"),
            (std::vector<std::string>{"TASK_STARTED", "TASK_LOG", "TASK_SUCCEEDED"}));
  std::lock_guard<std::mutex> lock(upload_mu_);
  ASSERT_EQ(uploads_.size(), 1u);
  EXPECT_EQ(uploads_[0]["metadata"]["executor"], "echo");
  EXPECT_TRUE(uploads_[0]["metadata"]["duration_sec"].is_number());
  EXPECT_EQ(uploads_[0]["result"]["items"][0]["output"], "hi");
}

TEST_F(TaskRunnerTest, ExecutorErrorsCarryRetryability) {
  MakeRunner();
  ASSERT_TRUE(runner_->Submit(Echo("retry", {{"fail_attempts", 1}})));
  ASSERT_TRUE(runner_->Submit(Echo("perm", {{"fail", "bad input"}})));
  auto retry = log_.WaitTerminal("retry");
  EXPECT_EQ(retry.type(), "TASK_FAILED");
  EXPECT_TRUE(retry.retryable());
  EXPECT_EQ(retry.error(), "echo: injected failure on attempt 1");
  auto perm = log_.WaitTerminal("perm");
  EXPECT_EQ(perm.type(), "TASK_FAILED");
  EXPECT_FALSE(perm.retryable());
}

TEST_F(TaskRunnerTest, UnknownTaskTypeFailsPermanently) {
  MakeRunner();
  Assignment a = Echo("x", {});
  a.task_type = "teleport";
  ASSERT_TRUE(runner_->Submit(a));
  auto done = log_.WaitTerminal("x");
  EXPECT_EQ(done.type(), "TASK_FAILED");
  EXPECT_FALSE(done.retryable());
}

TEST_F(TaskRunnerTest, UploadFailureIsRetryable) {
  fail_uploads_ = true;
  MakeRunner();
  ASSERT_TRUE(runner_->Submit(Echo("u", {})));
  auto done = log_.WaitTerminal("u");
  EXPECT_EQ(done.type(), "TASK_FAILED");
  EXPECT_TRUE(done.retryable());
}

TEST_F(TaskRunnerTest, InterruptCancelsRunningAttempt) {
  MakeRunner();
  ASSERT_TRUE(runner_->Submit(Echo("s", {{"sleep_seconds", 60}})));
  log_.WaitType("s", "TASK_STARTED");
  EXPECT_EQ(runner_->ActiveTaskIds(), std::vector<std::string>{"s"});
  runner_->Interrupt("s", 2);  // another attempt: ignored
  runner_->Interrupt("s", 1);
  EXPECT_EQ(log_.WaitTerminal("s").type(), "TASK_CANCELLED");
  EXPECT_TRUE(runner_->ActiveTaskIds().empty());
}

TEST_F(TaskRunnerTest, TimeoutFailsRetryable) {
  MakeRunner();
  ASSERT_TRUE(runner_->Submit(Echo("slow", {{"sleep_seconds", 60}}, 1, 0.2)));
  auto done = log_.WaitTerminal("slow");
  EXPECT_EQ(done.type(), "TASK_FAILED");
  EXPECT_TRUE(done.retryable());
  EXPECT_EQ(done.error(), "timed out after 0.2s");
}

TEST_F(TaskRunnerTest, DuplicateAttemptIgnoredNewAttemptAccepted) {
  MakeRunner();
  ASSERT_TRUE(runner_->Submit(Echo("d", {{"sleep_seconds", 60}})));
  EXPECT_FALSE(runner_->Submit(Echo("d", {{"sleep_seconds", 60}})));
  EXPECT_TRUE(runner_->Submit(Echo("d", {}, 2)));
  EXPECT_EQ(log_.WaitTerminal("d", 2).type(), "TASK_SUCCEEDED");
  runner_->StopAll("worker stopping");
  auto first = log_.WaitTerminal("d", 1);
  EXPECT_EQ(first.type(), "TASK_FAILED");
  EXPECT_TRUE(first.retryable());
  EXPECT_FALSE(runner_->Submit(Echo("late", {})));
}

TEST_F(TaskRunnerTest, QueuedBeyondSlotsRunsLater) {
  MakeRunner(1);
  ASSERT_TRUE(runner_->Submit(Echo("a", {{"sleep_seconds", 0.1}})));
  ASSERT_TRUE(runner_->Submit(Echo("b", {})));
  EXPECT_EQ(log_.WaitTerminal("b").type(), "TASK_SUCCEEDED");
  EXPECT_EQ(log_.WaitTerminal("a").type(), "TASK_SUCCEEDED");
}

TEST_F(TaskRunnerTest, SmallResultTravelsInsideTheSucceededEvent) {
  MakeRunner(2, TaskRunner::kDefaultInlineResultMax);
  ASSERT_TRUE(runner_->Submit(Echo("t-inline", {{"message", "hi"}})));
  auto done = log_.WaitTerminal("t-inline");
  EXPECT_EQ(done.type(), "TASK_SUCCEEDED");
  auto payload = nlohmann::json::parse(done.payload_json());
  EXPECT_EQ(payload["result"]["items"][0]["output"], "hi");
  EXPECT_EQ(payload["metadata"]["executor"], "echo");
  std::lock_guard<std::mutex> lock(upload_mu_);
  EXPECT_TRUE(uploads_.empty());
}

}  // namespace
}  // namespace flowmesh::worker

namespace flowmesh::worker {
namespace {

// The task spec travels versioned: an assignment from a newer scheduler is refused with a
// clear error instead of being misread; an unversioned one (older supervisors) is read.
TEST(AssignmentFromProtoTest, RefusesANewerTaskSpecVersion) {
  v1::TaskAssignment proto;
  proto.set_task_id("tsk-1");
  proto.set_attempt(1);
  proto.set_task_type("echo");
  proto.set_spec_json(R"({"echo": {}})");
  for (int version : {0, spec::kTaskSpecVersion}) {
    proto.set_spec_version(version);
    auto a = AssignmentFromProto(proto);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_EQ(a->spec, nlohmann::json::parse(R"({"echo": {}})"));
  }
  proto.set_spec_version(spec::kTaskSpecVersion + 1);
  auto newer = AssignmentFromProto(proto);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(newer.status().message(), ::testing::HasSubstr("newer than this worker's"));
}

}  // namespace
}  // namespace flowmesh::worker

namespace flowmesh::worker {
namespace {

// The tokens an attempt used come from its result's `usage` (inference, api and agent all
// report it there); anything else, or a malformed count, records none.
TEST(TokenUsageTest, ReadsTheResultsUsageCounts) {
  using nlohmann::json;
  EXPECT_EQ(TokenUsage(json::parse(R"({"usage": {"prompt_tokens": 12, "completion_tokens": 3,
                                                  "total_tokens": 15}})")),
            json::parse(R"({"prompt_tokens": 12, "completion_tokens": 3})"));
  EXPECT_EQ(TokenUsage(json::parse(R"({"usage": {"completion_tokens": 7}})")),
            json::parse(R"({"completion_tokens": 7})"));
  EXPECT_TRUE(TokenUsage(json::parse(R"({"echo": 1})")).is_null());
  EXPECT_TRUE(TokenUsage(json::parse(R"({"usage": "lots"})")).is_null());
  EXPECT_TRUE(TokenUsage(json::parse(R"({"usage": {"prompt_tokens": -4,
                                                   "completion_tokens": 1.5}})")).is_null());
  EXPECT_TRUE(TokenUsage(json::parse(R"([1, 2])")).is_null());
}

}  // namespace
}  // namespace flowmesh::worker
