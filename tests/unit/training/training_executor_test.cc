#include "training/training_executor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "common/hash.h"

namespace flowmesh::training {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kPython = "/usr/bin/python3";

bool GoneWithin(pid_t pid, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (kill(pid, 0) != 0) return true;
    std::error_code ec;
    std::string stat;
    if (FILE* f = fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r")) {
      char buffer[512] = {0};
      size_t n = fread(buffer, 1, sizeof buffer - 1, f);
      fclose(f);
      stat.assign(buffer, n);
      size_t close = stat.rfind(')');
      if (close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z')
        return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a condition
  }
  return false;
}

// The executor against tests/unit/training/fake_trainer, a stand-in that speaks the
// protocol (its behaviour is chosen by spec.fake).
class TrainingExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " missing";
    std::string pattern = (fs::temp_directory_path() / "fm-train-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    config_.python = kPython;
    config_.package_dir = std::string(FLOWMESH_SOURCE_DIR) + "/tests/unit/training/fake_trainer";
    config_.work_root = (root_ / "work").string();
  }
  void TearDown() override {
    unsetenv("FAKE_PROTOCOL");
    unsetenv("FAKE_TASK_TYPES");
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  Result<json> Run(const std::string& task_type, json spec, const std::string& cancel_on = "") {
    executors::TaskContext ctx{
        "tsk-train",
        "wfl-1",
        1,
        task_type,
        spec,
        [&](std::string line) {
          if (!cancel_on.empty() && line.find(cancel_on) != std::string::npos) {
            cancel_line_ = line;
            cancelled_ = true;
          }
          lines_.push_back(std::move(line));
        },
        [&](json update) { updates_.push_back(std::move(update)); },
        cancelled_};
    ctx.put_files = [&](const std::vector<executors::OutputFile>& files) {
      std::vector<executors::StoredFile> stored;
      for (const auto& f : files) {
        uploaded_.push_back(f.name);
        stored.push_back({f.name, Sha256Hex("weights"), 7, true, ""});
      }
      return Result<std::vector<executors::StoredFile>>(stored);
    };
    return TrainingExecutor(task_type, config_).Run(ctx);
  }

  bool Logged(const std::string& text) const {
    for (const auto& l : lines_) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }

  TrainingConfig config_;
  fs::path root_;
  std::atomic<bool> cancelled_{false};
  std::string cancel_line_;
  std::vector<std::string> lines_;
  std::vector<json> updates_;
  std::vector<std::string> uploaded_;
};

TEST_F(TrainingExecutorTest, ResultProgressLogsAndFiles) {
  auto result = Run(
      "lora_sft",
      json{{"fake", "ok"}, {"training", {{"learning_rate", "0.001"}}}, {"lora", {{"alpha", 16}}}});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ((*result)["task_type"], "lora_sft");
  EXPECT_EQ((*result)["lr"], 0.001);  // the published quoted number, read as a number
  EXPECT_EQ((*result)["alpha"], 16);
  ASSERT_EQ((*result)["files"].size(), 1u);
  EXPECT_EQ((*result)["files"][0]["name"], "final_lora/adapter.bin");
  EXPECT_EQ((*result)["files"][0]["sha256"], Sha256Hex("weights"));
  EXPECT_EQ((*result)["files"][0]["size"], 7);
  EXPECT_EQ((*result)["files"][0]["stored"], true);
  EXPECT_EQ(uploaded_, (std::vector<std::string>{"final_lora/adapter.bin"}));
  ASSERT_EQ(updates_.size(), 3u);
  EXPECT_EQ(updates_[2],
            (json{{"progress",
                   {{"step", 3}, {"max_steps", 3}, {"loss", 0.0}, {"tokens_per_second", 100.5}}}}));
  EXPECT_TRUE(Logged("[trainer] training lora_sft"));
  EXPECT_TRUE(Logged("[trainer] checkpoint final_lora"));
  EXPECT_TRUE(Logged("[stderr] a stray line on stderr"));
  EXPECT_TRUE(fs::is_empty(config_.work_root));  // the attempt's folder is gone
}

TEST_F(TrainingExecutorTest, BadHyperparameterFailsBeforeAnyProcess) {
  config_.python = "/no/such/python";  // would be FailedPrecondition if it were started
  auto result = Run("sft", json{{"fake", "ok"}, {"training", {{"learning_rate", -1}}}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("training.learning_rate"), std::string::npos)
      << result.status().message();
  EXPECT_FALSE(executors::IsRetryable(result.status()));
  auto lora = Run("lora_sft", json{{"training", json::object()}, {"lora", {{"r", 0}}}});
  EXPECT_EQ(lora.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(lora.status().message().find("lora.r"), std::string::npos) << lora.status().message();
  auto batch = Run("dpo", json{{"training", {{"batch_size", "many"}}}});
  EXPECT_EQ(batch.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(TrainingExecutorTest, SpecErrorOfTheTrainerIsNotRetried) {
  auto result = Run("sft", json{{"fake", "invalid"}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(), "sft: data row 2 has no prompt");
}

TEST_F(TrainingExecutorTest, InternalErrorIsRetryableWithStderr) {
  auto result = Run("sft", json{{"fake", "internal"}});
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(executors::IsRetryable(result.status()));
  EXPECT_NE(result.status().message().find("sft training failed: RuntimeError: boom"),
            std::string::npos);
  EXPECT_NE(result.status().message().find("CUDA out of memory"), std::string::npos)
      << result.status().message();
}

TEST_F(TrainingExecutorTest, CrashIsRetryableWithStderr) {
  auto result = Run("dpo", json{{"fake", "crash"}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(
      result.status().message().find("dpo training crashed: the trainer was killed by signal 6"),
      std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("Segmentation fault"), std::string::npos);
  auto silent = Run("sft", json{{"fake", "silent_exit"}});
  EXPECT_EQ(silent.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(silent.status().message().find("exited with code 0 without a result"),
            std::string::npos)
      << silent.status().message();
}

TEST_F(TrainingExecutorTest, CancelKillsTheTrainerAndWhatItStarted) {
  auto result = Run("sft", json{{"fake", "hang"}}, "pids ");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kCancelled);
  std::istringstream pids(cancel_line_.substr(cancel_line_.find("pids ") + 5));
  pid_t trainer = 0, child = 0;
  pids >> trainer >> child;
  ASSERT_GT(trainer, 0);
  ASSERT_GT(child, 0);
  EXPECT_TRUE(GoneWithin(trainer, std::chrono::seconds(10)));
  EXPECT_TRUE(GoneWithin(child, std::chrono::seconds(10)));
  EXPECT_TRUE(fs::is_empty(config_.work_root));
}

TEST_F(TrainingExecutorTest, OtherProtocolVersionIsRefused) {
  EXPECT_TRUE(ProbeTraining(config_).ok());
  setenv("FAKE_PROTOCOL", "2", 1);
  Status probe = ProbeTraining(config_);
  EXPECT_EQ(probe.code(), StatusCode::kFailedPrecondition);
  auto result = Run("sft", json{{"fake", "ok"}});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("protocol 2"), std::string::npos)
      << result.status().message();
}

TEST_F(TrainingExecutorTest, RegistersOnlyWhereTheProbePasses) {
  executors::ExecutorRegistry registry;
  EXPECT_TRUE(RegisterTrainingExecutors(registry, config_).ok());
  EXPECT_EQ(registry.RegisteredTaskTypes(), (std::vector<std::string>{"dpo", "lora_sft", "sft"}));
  executors::ExecutorRegistry without;
  TrainingConfig missing = config_;
  missing.python = "/no/such/python";
  EXPECT_FALSE(RegisterTrainingExecutors(without, missing).ok());
  EXPECT_TRUE(without.RegisteredTaskTypes().empty());
}

TEST_F(TrainingExecutorTest, RegistersTheTaskTypesTheProbeLists) {
  // A venv without diffusers lists no diffusion; names the worker does not know are dropped.
  setenv("FAKE_TASK_TYPES", "sft,ppo,image_classification,omni_text2speech,bogus", 1);
  executors::ExecutorRegistry registry;
  EXPECT_TRUE(RegisterTrainingExecutors(registry, config_).ok());
  unsetenv("FAKE_TASK_TYPES");
  EXPECT_EQ(registry.RegisteredTaskTypes(),
            (std::vector<std::string>{"image_classification", "omni_text2speech", "ppo", "sft"}));
}

TEST_F(TrainingExecutorTest, GenerationIsNotCheckedAsTraining) {
  // diffusion has no `training` section to resolve; ppo's is checked like sft's.
  json diffusion = {{"inference", {{"height", 64}}}};
  EXPECT_TRUE(CheckTrainingSpec("diffusion", &diffusion).ok());
  EXPECT_FALSE(diffusion.contains("training"));
  json ppo = {{"training", {{"learning_rate", -1}}}};
  Status refused = CheckTrainingSpec("ppo", &ppo);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("training.learning_rate"), std::string::npos)
      << refused.message();
}

}  // namespace
}  // namespace flowmesh::training
