#include "inference/engine.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include "test_model.h"

namespace flowmesh::inference {
namespace {

using testing::TinyModel;

std::unique_ptr<Engine> Load(int slots = 8) {
  EngineOptions options;
  options.n_seq = slots;
  options.n_ctx = 4096;
  options.threads = 1;  // tests share a busy machine: no OpenMP barrier spinning
  auto engine = Engine::Load(TinyModel(), options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

SamplingParams Greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  return p;
}

Completion Generate(Engine& engine, const std::string& prompt, const SamplingParams& p) {
  auto gen = engine.Submit(prompt, p);
  EXPECT_TRUE(gen.ok()) << gen.status().ToString();
  while (!(*gen)->WaitFor(std::chrono::seconds(60))) {
  }
  return (*gen)->completion();
}

TEST(EngineTest, GreedyIsDeterministic) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  Completion a = Generate(*engine, "hello world", Greedy(24));
  Completion b = Generate(*engine, "hello world", Greedy(24));
  EXPECT_EQ(a.finish_reason, "length");
  EXPECT_EQ(a.completion_tokens, 24);
  EXPECT_GT(a.prompt_tokens, 1);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.text, b.text);
  // A fresh engine gives the same tokens too.
  auto other = Load();
  EXPECT_EQ(Generate(*other, "hello world", Greedy(24)).tokens, a.tokens);
}

TEST(EngineTest, AloneAndInsideABatchGiveTheSameTokens) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  // Random weights make near-ties in the logits common, so any difference in how a
  // sequence's numbers are summed (batch size, a reused KV prefix) would show here.
  std::vector<std::string> prompts = {"the quick brown fox", "jumps over", "a lazy dog sleeps here", "x",
                                      "hello world", "delta omega delta omega delta omega gamma 1066",
                                      "delta omega delta omega delta omega gamma 1068",
                                      "beta gamma alpha delta omega beta gamma alpha delta omega 7"};
  std::vector<std::vector<int32_t>> alone;
  for (const auto& p : prompts) alone.push_back(Generate(*Load(), p, Greedy(64)).tokens);
  auto fresh = Load();
  std::vector<std::shared_ptr<Generation>> gens;
  for (const auto& p : prompts) gens.push_back(*fresh->Submit(p, Greedy(64)));
  for (size_t i = 0; i < gens.size(); ++i) {
    ASSERT_TRUE(gens[i]->WaitFor(std::chrono::seconds(60)));
    EXPECT_EQ(gens[i]->completion().tokens, alone[i]) << prompts[i];
  }
}

TEST(EngineTest, SharedPrefixReusesTheCache) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  std::string system = "you are a helpful assistant who answers briefly and kindly. ";
  Completion first = Generate(*engine, system + "what is rain", Greedy(8));
  Completion second = Generate(*engine, system + "what is snow", Greedy(8));
  EXPECT_EQ(first.cached_prompt_tokens, 0);
  EXPECT_GT(second.cached_prompt_tokens, 10);
  // Reusing the prefix changes nothing in the output.
  auto fresh = Load();
  EXPECT_EQ(Generate(*fresh, system + "what is snow", Greedy(8)).tokens, second.tokens);
}

TEST(EngineTest, ANewSequenceCopiesTheKvOfARunningOneWithTheSamePrefix) {
  for (bool unified : {false, true}) {
    EngineOptions options;
    options.n_seq = 4;
    options.n_ctx = 4096;
    options.threads = 1;
    options.kv_unified = unified;
    auto engine = std::move(Engine::Load(TinyModel(), options)).value();
    std::string prefix;
    for (int i = 0; i < 90; ++i) prefix += std::string(1, static_cast<char>('a' + (i * 7) % 26)) + " ";
    auto running = *engine->Submit(prefix + "one", Greedy(400));
    while (running->TakeDelta().empty() && !running->done()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    Completion joined = Generate(*engine, prefix + "two", Greedy(10));
    EXPECT_GE(joined.cached_prompt_tokens, 64) << "unified " << unified;
    engine->Cancel(running);
    auto fresh = Load();
    EXPECT_EQ(Generate(*fresh, prefix + "two", Greedy(10)).tokens, joined.tokens) << "unified " << unified;
  }
}

TEST(EngineTest, MaxAndMinTokens) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  SamplingParams p = Greedy(5);
  EXPECT_EQ(Generate(*engine, "count", p).completion_tokens, 5);
  // A stop token ends the sequence (and counts); min_tokens holds it off.
  std::vector<int32_t> plain = Generate(*engine, "count", Greedy(12)).tokens;
  ASSERT_EQ(plain.size(), 12u);
  int32_t stop_token = plain[2];
  size_t first = std::find(plain.begin(), plain.end(), stop_token) - plain.begin();
  SamplingParams q = Greedy(12);
  q.stop_token_ids = {stop_token};
  Completion stopped = Generate(*engine, "count", q);
  EXPECT_EQ(stopped.finish_reason, "stop");
  EXPECT_EQ(stopped.completion_tokens, static_cast<int>(first) + 1);
  q.min_tokens = 6;
  Completion held = Generate(*engine, "count", q);
  EXPECT_GE(held.completion_tokens, 6);
  for (int i = 0; i < 6; ++i) EXPECT_NE(held.tokens[i], stop_token) << i;
}

TEST(EngineTest, StopStringsCutTheOutput) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  Completion full = Generate(*engine, "some words", Greedy(40));
  size_t at = 2;
  auto plain = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  while (at + 1 < full.text.size() && !(plain(full.text[at]) && plain(full.text[at + 1]))) ++at;
  ASSERT_LT(at + 1, full.text.size()) << full.text;
  std::string stop = full.text.substr(at, 2);
  SamplingParams p = Greedy(40);
  p.stop = {stop};
  Completion cut = Generate(*engine, "some words", p);
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));
}

TEST(EngineTest, SeedsMakeSamplingReproducible) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  SamplingParams p;
  p.temperature = 1.5f;
  p.top_k = 50;
  p.max_tokens = 24;
  p.seed = 42;
  Completion a = Generate(*engine, "tell me", p);
  Completion b = Generate(*engine, "tell me", p);
  EXPECT_EQ(a.tokens, b.tokens);
  p.seed = 43;
  Completion c = Generate(*engine, "tell me", p);
  EXPECT_NE(a.tokens, c.tokens);
}

TEST(EngineTest, LogprobsAreReported) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  SamplingParams p = Greedy(6);
  p.logprobs = true;
  Completion c = Generate(*engine, "abc", p);
  ASSERT_EQ(c.logprobs.size(), 6u);
  for (float lp : c.logprobs) EXPECT_LE(lp, 0.0f);
}

TEST(EngineTest, OutputIsAlwaysValidJsonText) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  // Random weights emit byte tokens freely, so partial UTF-8 sequences are common.
  SamplingParams p;
  p.temperature = 2.0f;
  p.seed = 5;
  p.max_tokens = 200;
  for (int i = 0; i < 3; ++i) {
    p.seed = 5 + i;
    auto gen = *engine->Submit("\xC3\xA9t\xC3\xA9 \xE2\x82\xAC", p);
    std::string streamed;
    while (!gen->WaitFor(std::chrono::milliseconds(5))) streamed += gen->TakeDelta();
    streamed += gen->TakeDelta();
    Completion c = gen->completion();
    EXPECT_NO_THROW(nlohmann::json::parse(nlohmann::json(c.text).dump()));
    EXPECT_NO_THROW(nlohmann::json(streamed).dump());
  }
}

TEST(EngineTest, CancellationFreesTheSlot) {
  auto engine = Load(2);
  ASSERT_TRUE(engine);
  EXPECT_EQ(engine->free_slots(), 2);
  auto gen = *engine->Submit("a long story", Greedy(100000 / 100));
  EXPECT_EQ(engine->free_slots(), 1);
  while (gen->TakeDelta().empty() && !gen->done()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  engine->Cancel(gen);
  ASSERT_TRUE(gen->WaitFor(std::chrono::seconds(30)));
  EXPECT_EQ(gen->completion().finish_reason, "cancelled");
  EXPECT_EQ(engine->free_slots(), 2);
  // The engine still serves.
  EXPECT_EQ(Generate(*engine, "again", Greedy(4)).completion_tokens, 4);
}

TEST(EngineTest, MoreSequencesThanSlotsAllComplete) {
  auto engine = Load(3);
  ASSERT_TRUE(engine);
  std::vector<std::shared_ptr<Generation>> gens;
  for (int i = 0; i < 10; ++i) gens.push_back(*engine->Submit("prompt " + std::to_string(i), Greedy(10)));
  for (auto& g : gens) {
    ASSERT_TRUE(g->WaitFor(std::chrono::seconds(60)));
    EXPECT_EQ(g->completion().completion_tokens, 10);
  }
  EXPECT_EQ(engine->free_slots(), 3);
}

TEST(EngineTest, IdenticalDeterministicRequestsAreComputedOnce) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  Completion alone = Generate(*engine, "the same question", Greedy(32));
  // Three identical greedy requests while the first runs: one sequence, three results.
  std::vector<std::shared_ptr<Generation>> gens;
  for (int i = 0; i < 3; ++i) gens.push_back(*engine->Submit("the same question", Greedy(32)));
  EXPECT_EQ(engine->shared_hits(), 2u);
  for (auto& g : gens) {
    ASSERT_TRUE(g->WaitFor(std::chrono::seconds(60)));
    EXPECT_EQ(g->completion().tokens, alone.tokens);
    EXPECT_EQ(g->completion().text, alone.text);
  }
  // Not when sharing is off (cache: never), nor for sampling without a seed.
  SamplingParams unshared = Greedy(8);
  unshared.share = false;
  auto u1 = *engine->Submit("the same question", unshared);
  auto u2 = *engine->Submit("the same question", unshared);
  EXPECT_EQ(engine->shared_hits(), 2u);
  ASSERT_TRUE(u1->WaitFor(std::chrono::seconds(60)));
  ASSERT_TRUE(u2->WaitFor(std::chrono::seconds(60)));
  SamplingParams sampled = Greedy(8);
  sampled.temperature = 0.8f;
  auto s1 = *engine->Submit("the same question", sampled);
  auto s2 = *engine->Submit("the same question", sampled);
  EXPECT_EQ(engine->shared_hits(), 2u);
  ASSERT_TRUE(s1->WaitFor(std::chrono::seconds(60)));
  ASSERT_TRUE(s2->WaitFor(std::chrono::seconds(60)));
}

TEST(EngineTest, CancellingOneSharerLeavesTheOthersRunning) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  Completion alone = Generate(*engine, "keep going please", Greedy(48));
  auto a = *engine->Submit("keep going please", Greedy(48));
  auto b = *engine->Submit("keep going please", Greedy(48));
  ASSERT_EQ(engine->shared_hits(), 1u);
  engine->Cancel(a);
  ASSERT_TRUE(a->WaitFor(std::chrono::seconds(10)));
  EXPECT_EQ(a->completion().finish_reason, "cancelled");
  ASSERT_TRUE(b->WaitFor(std::chrono::seconds(60)));
  EXPECT_EQ(b->completion().finish_reason, "length");
  EXPECT_EQ(b->completion().tokens, alone.tokens);
  // When every sharer cancels, the sequence stops and its slot is free again.
  auto c = *engine->Submit("keep going please", Greedy(48));
  auto d = *engine->Submit("keep going please", Greedy(48));
  engine->Cancel(c);
  engine->Cancel(d);
  for (int i = 0; i < 500 && engine->free_slots() != engine->slots(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(engine->free_slots(), engine->slots());
}

TEST(EngineTest, ChatTemplateFromTheModel) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  auto text = engine->ApplyChatTemplate({{"system", "be brief"}, {"user", "hi"}});
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(*text, "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(EngineTest, EmbeddingsAreNormalised) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  auto v = engine->Embed({"hello", "world"});
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 2u);
  double norm = 0;
  for (float x : (*v)[0]) norm += x * x;
  EXPECT_NEAR(norm, 1.0, 1e-3);
  EXPECT_NE((*v)[0], (*v)[1]);
}

SamplingParams WithLora(SamplingParams p, const std::string& path, float scale = 1.0f) {
  p.adapters.push_back({path, scale});
  return p;
}

TEST(EngineTest, ALoraAdapterChangesOnlyTheRequestsThatNameIt) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  const std::string prompt = "the adapter question";
  Completion base = Generate(*engine, prompt, Greedy(24));
  Completion lora_alone = Generate(*engine, prompt, WithLora(Greedy(24), testing::TinyLora(11)));
  EXPECT_EQ(lora_alone.finish_reason, "length");
  EXPECT_NE(lora_alone.tokens, base.tokens);
  // The base request after it does not reuse KV computed with the adapter's weights.
  Completion base_again = Generate(*engine, prompt, Greedy(24));
  EXPECT_EQ(base_again.tokens, base.tokens);

  // Running together (base, two adapters, one at scale 0) on one engine: each gets the
  // tokens it gets alone, and scale 0 is the base model.
  std::vector<SamplingParams> mix = {Greedy(24), WithLora(Greedy(24), testing::TinyLora(11)),
                                     WithLora(Greedy(24), testing::TinyLora(12)),
                                     WithLora(Greedy(24), testing::TinyLora(12), 0.0f)};
  std::vector<std::shared_ptr<Generation>> gens;
  for (const auto& p : mix) {
    auto gen = engine->Submit(prompt, p);
    ASSERT_TRUE(gen.ok()) << gen.status().ToString();
    gens.push_back(*gen);
  }
  for (auto& g : gens) {
    while (!g->WaitFor(std::chrono::seconds(60))) {
    }
  }
  EXPECT_EQ(gens[0]->completion().tokens, base.tokens);
  EXPECT_EQ(gens[1]->completion().tokens, lora_alone.tokens);
  EXPECT_NE(gens[2]->completion().tokens, base.tokens);
  EXPECT_NE(gens[2]->completion().tokens, lora_alone.tokens);
  EXPECT_EQ(gens[3]->completion().tokens, base.tokens);
  auto other = Load();
  ASSERT_TRUE(other);
  EXPECT_EQ(Generate(*other, prompt, WithLora(Greedy(24), testing::TinyLora(12))).tokens,
            gens[2]->completion().tokens);
}

TEST(EngineTest, AFileThatIsNotAnAdapterForTheModelIsRefused) {
  auto engine = Load();
  ASSERT_TRUE(engine);
  for (const std::string& bad : {testing::NarrowLora(), testing::TinyModel(), std::string("/nonexistent.gguf")}) {
    auto gen = engine->Submit("hello", WithLora(Greedy(4), bad));
    ASSERT_FALSE(gen.ok()) << bad;
    EXPECT_EQ(gen.status().code(), StatusCode::kInvalidArgument) << gen.status().ToString();
    EXPECT_NE(gen.status().message().find(bad), std::string::npos) << gen.status().ToString();
  }
  // The engine goes on serving.
  EXPECT_EQ(Generate(*engine, "hello", Greedy(4)).completion_tokens, 4);
}

TEST(EngineTest, CorruptAndTruncatedFilesAreErrors) {
  auto dir = std::filesystem::temp_directory_path() / ("fm-corrupt-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string model = TinyModel();
  std::string data;
  {
    std::ifstream in(model, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::ofstream((dir / name).string(), std::ios::binary) << bytes;
    return (dir / name).string();
  };
  EngineOptions options;
  options.n_seq = 1;
  auto missing = Engine::Load((dir / "missing.gguf").string(), options);
  EXPECT_FALSE(missing.ok());
  auto not_gguf = Engine::Load(write("text.gguf", "hello, I am not a model"), options);
  ASSERT_FALSE(not_gguf.ok());
  EXPECT_EQ(not_gguf.status().code(), StatusCode::kInvalidArgument);
  for (size_t cut : {size_t{12}, size_t{200}, data.size() / 2, data.size() - 10}) {
    auto truncated = Engine::Load(write("cut.gguf", data.substr(0, cut)), options);
    ASSERT_FALSE(truncated.ok()) << "cut at " << cut;
    EXPECT_EQ(truncated.status().code(), StatusCode::kInvalidArgument);
  }
  std::string garbled = data;
  for (size_t i = 24; i < 400 && i < garbled.size(); i += 7) garbled[i] = static_cast<char>(0xFF);
  EXPECT_FALSE(Engine::Load(write("garbled.gguf", garbled), options).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace flowmesh::inference
