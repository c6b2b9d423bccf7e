#include "inference/inference_executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "executors/executor.h"
#include "test_model.h"

namespace flowmesh::inference {
namespace {

using json = nlohmann::json;

std::shared_ptr<ModelCache> Cache(int slots = 8) {
  ModelCacheConfig config;
  config.default_slots = slots;
  config.default_threads = 1;
  config.sources.allow_download = false;
  return std::make_shared<ModelCache>(config);
}

json Spec(const json& items, const json& inference) {
  return {{"taskType", "inference"},
          {"model", {{"source", {{"type", "local"}, {"identifier", testing::TinyModel()}}},
                     {"llamacpp", {{"n_ctx", 4096}}}}},
          {"data", {{"type", "list"}, {"items", items}}},
          {"inference", inference}};
}

struct Ran {
  Result<json> result;
  std::vector<std::string> logs;
};

Ran RunTask(executors::Executor& executor, const json& spec, const std::atomic<bool>& cancelled,
            const std::string& workflow = "wf") {
  std::vector<std::string> logs;
  std::mutex mu;
  executors::TaskContext ctx{"task", workflow, 1, "inference", spec,
                             [&](std::string line) {
                               std::lock_guard<std::mutex> lock(mu);
                               logs.push_back(std::move(line));
                             },
                             [](json) {}, cancelled};
  auto result = executor.Run(ctx);
  return {std::move(result), std::move(logs)};
}

TEST(InferenceExecutorTest, ResultShapeChatAndSystemPrompt) {
  auto cache = Cache();
  InferenceExecutor executor(cache);
  std::atomic<bool> cancelled{false};
  json items = {"raw prompt", json::array({{{"role", "user"}, {"content", "hi"}}})};
  auto ran = RunTask(executor, Spec(items, {{"max_tokens", 8}, {"temperature", 0}, {"system_prompt", "be kind"}}),
                     cancelled);
  ASSERT_TRUE(ran.result.ok()) << ran.result.status().ToString();
  const json& r = *ran.result;
  ASSERT_EQ(r["items"].size(), 2u);
  for (const auto& item : r["items"]) {
    EXPECT_TRUE(item["output"].is_string());
    EXPECT_EQ(item["finish_reason"], "length");
    EXPECT_EQ(item["usage"]["completion_tokens"], 8);
    EXPECT_GT(item["usage"]["prompt_tokens"].get<int>(), 3);
  }
  EXPECT_EQ(r["items"][0]["input"], "raw prompt");
  EXPECT_EQ(r["usage"]["completion_tokens"], 16);
  EXPECT_EQ(r["model"], "local:" + testing::TinyModel());
  EXPECT_EQ(cache->LoadedModels(), std::vector<std::string>{"local:" + testing::TinyModel()});
  EXPECT_EQ(cache->FreeSequenceSlots(), 8);
}

TEST(InferenceExecutorTest, GgufLoraAdaptersApplyPerTaskOnOneLoadedModel) {
  auto cache = Cache();
  InferenceExecutor executor(cache);
  std::atomic<bool> cancelled{false};
  json inference = {{"max_tokens", 12}, {"temperature", 0}};
  auto output = [&](const json& spec) {
    auto ran = RunTask(executor, spec, cancelled);
    EXPECT_TRUE(ran.result.ok()) << ran.result.status().ToString();
    return ran.result.ok() ? (*ran.result)["items"][0]["output"].get<std::string>() : "";
  };
  json base = Spec({"what the adapter knows"}, inference);
  json adapted = base;
  adapted["model"]["adapters"] = {{{"type", "lora"}, {"path", testing::TinyLora(11)}}};
  json off = adapted;
  off["model"]["adapters"][0]["kwargs"] = {{"scale", 0}};
  std::string plain = output(base);
  EXPECT_NE(output(adapted), plain);
  EXPECT_EQ(output(off), plain);
  // One engine served all three.
  EXPECT_EQ(cache->LoadedModels(), std::vector<std::string>{"local:" + testing::TinyModel()});

  json folder = base;
  folder["model"]["adapters"] = {{{"type", "lora"}, {"path", "/adapters/final_lora"}}};
  auto refused = RunTask(executor, folder, cancelled);
  EXPECT_EQ(refused.result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.result.status().message().find("model.adapters[0]"), std::string::npos);
  json wrong = base;
  wrong["model"]["adapters"] = {{{"type", "lora"}, {"path", testing::NarrowLora()}}};
  EXPECT_EQ(RunTask(executor, wrong, cancelled).result.status().code(), StatusCode::kInvalidArgument);
}

TEST(InferenceExecutorTest, NChoicesWithSeeds) {
  InferenceExecutor executor(Cache());
  std::atomic<bool> cancelled{false};
  json inference = {{"max_tokens", 10}, {"temperature", 1.2}, {"seed", 3}, {"n", 3}};
  auto a = RunTask(executor, Spec({"once upon"}, inference), cancelled);
  auto b = RunTask(executor, Spec({"once upon"}, inference), cancelled);
  ASSERT_TRUE(a.result.ok()) << a.result.status().ToString();
  const json& choices = (*a.result)["items"][0]["choices"];
  ASSERT_EQ(choices.size(), 3u);
  EXPECT_EQ(choices, (*b.result)["items"][0]["choices"]);
  EXPECT_EQ((*a.result)["items"][0]["usage"]["completion_tokens"], 30);
}

TEST(InferenceExecutorTest, ModelNotFoundIsPermanentAndSaysWhere) {
  InferenceExecutor executor(Cache());
  std::atomic<bool> cancelled{false};
  json spec = Spec({"x"}, json::object());
  spec["model"]["source"]["identifier"] = "/nonexistent/model.gguf";
  auto ran = RunTask(executor, spec, cancelled);
  ASSERT_FALSE(ran.result.ok());
  EXPECT_FALSE(executors::IsRetryable(ran.result.status()));
  EXPECT_NE(ran.result.status().message().find("/nonexistent/model.gguf"), std::string::npos);

  json hf = spec;
  hf["model"]["source"] = {{"type", "huggingface"}, {"identifier", "nobody/nothing-GGUF"}};
  auto ran_hf = RunTask(executor, hf, cancelled);
  ASSERT_FALSE(ran_hf.result.ok());
  EXPECT_FALSE(executors::IsRetryable(ran_hf.result.status()));
  EXPECT_NE(ran_hf.result.status().message().find("models--nobody--nothing-GGUF"), std::string::npos)
      << ran_hf.result.status().message();
}

TEST(InferenceExecutorTest, HuggingFaceCacheLayoutIsSearched) {
  auto hub = std::filesystem::temp_directory_path() / ("fm-hub-" + std::to_string(::getpid()));
  auto snap = hub / "models--org--tiny-GGUF" / "snapshots" / "abc123";
  std::filesystem::create_directories(snap);
  std::filesystem::create_directories(hub / "models--org--tiny-GGUF" / "refs");
  std::filesystem::copy_file(testing::TinyModel(), snap / "tiny-Q8_0.gguf",
                             std::filesystem::copy_options::overwrite_existing);
  std::ofstream(hub / "models--org--tiny-GGUF" / "refs" / "main") << "abc123\n";
  ModelSourceConfig config;
  config.hf_hub_dir = hub.string();
  config.allow_download = false;
  json spec = {{"model", {{"source", {{"type", "huggingface"}, {"identifier", "org/tiny-GGUF"}}}}}};
  auto path = ResolveModelPath(spec, config);
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_EQ(*path, (snap / "tiny-Q8_0.gguf").string());
  spec["model"]["source"]["file"] = "Q4_K_M";
  EXPECT_FALSE(ResolveModelPath(spec, config).ok());
  std::filesystem::remove_all(hub);
}

TEST(InferenceExecutorTest, BadParametersAreRejected) {
  InferenceExecutor executor(Cache());
  std::atomic<bool> cancelled{false};
  for (const json& bad : {json{{"temperature", -1}}, json{{"max_tokens", 0}}, json{{"n", 0}},
                          json{{"stop", 5}}, json{{"max_new_tokens", 0}},
                          json{{"min_tokens", 9}, {"max_tokens", 3}}}) {
    auto ran = RunTask(executor, Spec({"x"}, bad), cancelled);
    ASSERT_FALSE(ran.result.ok()) << bad.dump();
    EXPECT_EQ(ran.result.status().code(), StatusCode::kInvalidArgument) << bad.dump();
  }
}

// Options of the published format's other engines are passed over (the parser warned about
// unknown ones); max_new_tokens, do_sample: false and top_k: -1 have their meaning here.
TEST(InferenceExecutorTest, PublishedOptionsOfOtherEnginesArePassedOver) {
  auto p = SamplingFromSpec(json{{"inference",
                                  {{"max_new_tokens", 7},
                                   {"do_sample", false},
                                   {"temperature", 0.8},
                                   {"top_k", -1},
                                   {"bad_words", {"x"}},
                                   {"skip_special_tokens", true},
                                   {"chat_template_kwargs", {{"enable_thinking", false}}},
                                   {"bogus", 1}}}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->max_tokens, 7);
  EXPECT_EQ(p->temperature, 0.0f);
  EXPECT_EQ(p->top_k, 0);
  auto both = SamplingFromSpec(json{{"inference", {{"max_tokens", 5}, {"max_new_tokens", 9}}}});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->max_tokens, 5);
}

TEST(InferenceExecutorTest, TokensStreamAsLogLines) {
  InferenceExecutor executor(Cache());
  std::atomic<bool> cancelled{false};
  auto ran = RunTask(executor, Spec({"stream me"}, {{"max_tokens", 64}, {"temperature", 0}}), cancelled);
  ASSERT_TRUE(ran.result.ok());
  ASSERT_FALSE(ran.logs.empty());
  // Token lines carry their item index; one summary line says how much KV was reused.
  int summaries = 0;
  for (const auto& l : ran.logs) {
    if (l.rfind("inference: ", 0) == 0) {
      ++summaries;
      continue;
    }
    EXPECT_EQ(l.rfind("[0] ", 0), 0u) << l;
  }
  EXPECT_EQ(summaries, 1);
}

TEST(InferenceExecutorTest, CancellationMidGenerationFreesTheSlot) {
  auto cache = Cache(4);
  InferenceExecutor executor(cache);
  std::atomic<bool> cancelled{false};
  std::thread canceller([&] {
    while (cache->LoadedModels().empty() || cache->FreeSequenceSlots() == 4) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancelled = true;
  });
  auto ran = RunTask(executor, Spec({"go on forever"}, {{"max_tokens", 3000}, {"temperature", 0}}), cancelled);
  canceller.join();
  ASSERT_FALSE(ran.result.ok());
  EXPECT_EQ(ran.result.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(cache->FreeSequenceSlots(), 4);
}

TEST(InferenceExecutorTest, ConcurrentTasksFromManyWorkflowsShareTheEngine) {
  auto cache = Cache(6);
  std::atomic<bool> cancelled{false};
  constexpr int kTasks = 12;
  auto prompt = [](int i) { return "task number " + std::to_string(i) + " says hello"; };
  json inference = {{"max_tokens", 12}, {"temperature", 0}};
  // Expected outputs, one task at a time.
  std::vector<json> expected;
  {
    InferenceExecutor executor(cache);
    for (int i = 0; i < kTasks; ++i) {
      auto ran = RunTask(executor, Spec({prompt(i)}, inference), cancelled);
      ASSERT_TRUE(ran.result.ok());
      expected.push_back((*ran.result)["items"][0]["output"]);
    }
  }
  std::vector<json> got(kTasks);
  std::vector<std::thread> threads;
  for (int i = 0; i < kTasks; ++i) {
    threads.emplace_back([&, i] {
      InferenceExecutor executor(cache);
      auto ran = RunTask(executor, Spec({prompt(i)}, inference), cancelled, "workflow-" + std::to_string(i));
      if (ran.result.ok()) got[i] = (*ran.result)["items"][0]["output"];
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(got[i], expected[i]) << i;
  EXPECT_EQ(cache->FreeSequenceSlots(), 6);
}

TEST(InferenceExecutorTest, LeastRecentlyUsedModelIsEvictedOverBudget) {
  auto make = [](uint64_t budget) {
    ModelCacheConfig config;
    config.default_slots = 2;
    config.default_threads = 1;
    config.memory_budget_bytes = budget;
    config.sources.allow_download = false;
    return std::make_shared<ModelCache>(config);
  };
  auto spec = [](const std::string& path) {
    json s = Spec({"x"}, json::object());
    s["model"]["source"]["identifier"] = path;
    return s;
  };
  std::string a = testing::TinyModel();
  std::string b = testing::TestModel("tiny-b", "--dim 64 --layers 2 --type f32 --seed 8");
  std::string c = testing::TestModel("tiny-c", "--dim 64 --layers 2 --type f32 --seed 9");
  uint64_t one = (*make(0)->Acquire(spec(a)))->memory_bytes();
  auto cache = make(one * 5 / 2);  // room for two
  ASSERT_TRUE(cache->Acquire(spec(a)).ok());
  ASSERT_TRUE(cache->Acquire(spec(b)).ok());
  ASSERT_TRUE(cache->Acquire(spec(a)).ok());  // a is now the most recently used
  ASSERT_TRUE(cache->Acquire(spec(c)).ok());  // b goes
  EXPECT_EQ(cache->LoadedModels(), (std::vector<std::string>{"local:" + c, "local:" + a}));
  {
    auto held = cache->Acquire(spec(a));  // a task holds a: never evicted under it
    ASSERT_TRUE(held.ok());
    ASSERT_TRUE(cache->Acquire(spec(b)).ok());  // c (idle) goes, a stays
    EXPECT_EQ(cache->LoadedModels(), (std::vector<std::string>{"local:" + b, "local:" + a}));
  }
}

TEST(InferenceExecutorTest, Embeddings) {
  EmbeddingExecutor executor(Cache());
  std::atomic<bool> cancelled{false};
  json spec = Spec({"a", "b"}, json::object());
  spec.erase("inference");
  auto ran = RunTask(executor, spec, cancelled);
  ASSERT_TRUE(ran.result.ok()) << ran.result.status().ToString();
  ASSERT_EQ((*ran.result)["items"].size(), 2u);
  EXPECT_EQ((*ran.result)["items"][0]["embedding"].size(), 64u);
}

}  // namespace
}  // namespace flowmesh::inference
