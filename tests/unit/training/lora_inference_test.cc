#include "training/lora_inference.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/hash.h"

namespace flowmesh::training {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The refusals, which come before any conversion (no venv needed).
class LoraInferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "fm-lora-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::create_directories(root_ / "base");
    std::ofstream(root_ / "base" / "config.json") << "{}";
    fs::create_directories(root_ / "adapter");
    std::ofstream(root_ / "adapter" / "adapter_config.json") << "{}";
    config_.training.python = "/no/such/python";
    config_.llama_cpp_dir = root_ / "llama.cpp";
    config_.cache_dir = root_ / "cache";
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  Result<LoraGguf> Prepare(json model) {
    GgufAdapterCache cache(config_);
    std::atomic<bool> cancelled{false};
    return cache.Prepare(model, cancelled, [](std::string) {});
  }
  json Model(json adapter, std::string base = "") {
    return json{
        {"source",
         {{"type", "local"}, {"identifier", base.empty() ? (root_ / "base").string() : base}}},
        {"adapters", json::array({adapter})}};
  }

  fs::path root_;
  LoraInferenceConfig config_;
};

TEST_F(LoraInferenceTest, AdaptersByTaskOrUrlAreNotFetchedYet) {
  auto by_task = Prepare(Model({{"type", "lora"}, {"task_id", "tsk-1"}}));
  EXPECT_EQ(by_task.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(by_task.status().message().find("name their folder in `path`"), std::string::npos);
  EXPECT_EQ(Prepare(Model({{"url", "https://x/y.tar"}})).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(LoraInferenceTest, RefusesWhatCannotBeApplied) {
  std::string adapter = (root_ / "adapter").string();
  EXPECT_EQ(Prepare(Model({{"type", "vera"}, {"path", adapter}})).status().code(),
            StatusCode::kInvalidArgument);
  auto no_adapter = Prepare(Model({{"type", "lora"}, {"path", (root_ / "base").string()}}));
  EXPECT_EQ(no_adapter.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_adapter.status().message().find("adapter_config.json"), std::string::npos);
  auto gguf_base = Prepare(Model({{"type", "lora"}, {"path", adapter}}, "/models/base.gguf"));
  EXPECT_EQ(gguf_base.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(gguf_base.status().message().find("transformers folder"), std::string::npos);
  auto bad_scale = Prepare(Model({{"path", adapter}, {"kwargs", {{"scale", "big"}}}}));
  EXPECT_EQ(bad_scale.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_scale.status().message().find("kwargs.scale"), std::string::npos);
  json two = Model({{"path", adapter}});
  two["adapters"].push_back({{"path", adapter}});
  EXPECT_EQ(Prepare(two).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(LoraInferenceTest, RegistersOnlyOverAnInferenceExecutor) {
  executors::ExecutorRegistry empty;
  EXPECT_EQ(RegisterLoraInference(empty, config_).code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(std::string(BuiltLlamaSourceDir()), "");
}

// Hugging Face snapshots: which ones are converted, and the cache of converted ones.
class SnapshotConversionTest : public LoraInferenceTest {
 protected:
  static constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
  void SetUp() override {
    LoraInferenceTest::SetUp();
    config_.hf_hub_dir = (root_ / "hub").string();
    snapshot_ = root_ / "hub" / "models--org--tiny" / "snapshots" / kCommit;
    fs::create_directories(snapshot_);
    std::ofstream(snapshot_ / "config.json") << "{}";
    std::ofstream(snapshot_ / "model.safetensors") << "weights";
    fs::create_directories(root_ / "hub" / "models--org--tiny" / "refs");
    std::ofstream(root_ / "hub" / "models--org--tiny" / "refs" / "main") << kCommit;
  }
  Result<std::string> PrepareSnapshot(json model, std::vector<std::string>* log = nullptr) {
    GgufAdapterCache cache(config_);
    std::atomic<bool> cancelled{false};
    return cache.PrepareSnapshot(model, cancelled, [log](std::string line) {
      if (log) log->push_back(std::move(line));
    });
  }
  static json Hf(std::string id) {
    return json{{"source", {{"type", "huggingface"}, {"identifier", std::move(id)}}}};
  }
  fs::path snapshot_;
};

TEST_F(SnapshotConversionTest, OnlySafetensorsSnapshotsAreConverted) {
  // Not a huggingface source, not in the cache, or no hub configured: left to the engine.
  EXPECT_EQ(PrepareSnapshot(json{{"source", {{"type", "local"}, {"identifier", "/m"}}}}).value(),
            "");
  EXPECT_EQ(PrepareSnapshot(Hf("org/absent")).value(), "");
  EXPECT_EQ(PrepareSnapshot(Hf("../escape")).value(), "");
  // The snapshot is converted: with no python here, the converter cannot start.
  EXPECT_FALSE(PrepareSnapshot(Hf("org/tiny")).ok());
  // Already converted (the cache is named by the snapshot's commit): loaded at once.
  fs::create_directories(config_.cache_dir);
  fs::path cached = fs::path(config_.cache_dir) /
                    (Sha256Hex(std::string("huggingface:org/tiny@") + kCommit) + ".gguf");
  std::ofstream(cached) << "gguf";
  std::vector<std::string> log;
  EXPECT_EQ(PrepareSnapshot(Hf("org/tiny"), &log).value(), cached.string());
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("already converted"), std::string::npos) << log[0];
  // A snapshot that has a GGUF of its own is the engine's to load.
  std::ofstream(snapshot_ / "model-q8_0.gguf") << "gguf";
  EXPECT_EQ(PrepareSnapshot(Hf("org/tiny")).value(), "");
  config_.hf_hub_dir.clear();
  EXPECT_EQ(PrepareSnapshot(Hf("org/tiny")).value(), "");
}

}  // namespace
}  // namespace flowmesh::training
