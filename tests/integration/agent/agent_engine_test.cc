#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "agent/agent_executor.h"
#include "agent/builtin_tools.h"
#include "agent/engine_chat_model.h"
#include "agent/grammar.h"
#include "integration/inference/test_model.h"

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;
using inference::testing::TinyModel;

std::shared_ptr<inference::Engine> LoadTiny() {
  inference::EngineOptions options;
  options.n_seq = 4;
  options.threads = 1;  // tests share a busy machine
  auto engine = inference::Engine::Load(TinyModel(), options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  return engine.ok() ? std::shared_ptr<inference::Engine>(std::move(engine).value()) : nullptr;
}

inference::SamplingParams Seeded(uint32_t seed) {
  inference::SamplingParams p;
  p.temperature = 1.0f;  // random weights, full distribution: the grammar alone shapes it
  p.seed = seed;
  return p;
}

ToolInfo EveryShape() {
  return {"lookup", "A tool with arguments of every shape.",
          json::parse(R"({"type":"object","properties":{
            "q":{"type":"string","maxLength":8},"n":{"type":"integer"},"x":{"type":"number"},
            "b":{"type":"boolean"},"mode":{"enum":["fast","slow"]},
            "tags":{"type":"array","items":{"type":"string","maxLength":4}},
            "opts":{"type":"object","properties":{"k":{"type":"string","maxLength":4}}}},
            "required":["q","n","x","b","mode","tags","opts"]})")};
}

TEST(AgentGrammarOnEngineTest, RandomModelRepliesAreAlwaysValidCalls) {
  auto engine = LoadTiny();
  ASSERT_TRUE(engine);
  ToolSet tools;
  ASSERT_TRUE(tools.Add(MakeCalculatorTool()).ok());
  ASSERT_TRUE(tools.Add(MakeHttpFetchTool({})).ok());
  std::vector<ToolInfo> infos = tools.infos();
  infos.push_back(EveryShape());
  std::vector<ChatMessage> messages = {{"system", ToolInstructions(infos, "")},
                                       {"user", "what is 6*7?"}};
  std::atomic<bool> cancelled{false};
  std::set<std::string> seen_tools;
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    EngineChatModel model(engine, Seeded(seed), "tiny");
    TurnRequest request{&messages,
                        &infos,
                        /*allow_tools=*/true,
                        /*allow_final=*/false,
                        MaxReplyChars(infos) + 8,
                        std::chrono::steady_clock::now() + std::chrono::minutes(2)};
    auto turn = model.Next(request, cancelled);
    ASSERT_TRUE(turn.ok()) << turn.status().message();
    EXPECT_EQ(turn->finish_reason, "stop") << turn->text;
    ParsedReply reply = ParseReply(turn->text);
    ASSERT_TRUE(reply.call.has_value())
        << "seed " << seed << ": " << turn->text << " (" << reply.error << ")";
    auto info = std::find_if(infos.begin(), infos.end(),
                             [&](const ToolInfo& i) { return i.name == reply.call->tool; });
    ASSERT_NE(info, infos.end()) << turn->text;
    EXPECT_TRUE(CheckArguments(*info, reply.call->arguments).ok()) << turn->text;
    seen_tools.insert(reply.call->tool);
  }
  EXPECT_GE(seen_tools.size(), 2u);  // the grammar offers every tool, not just the first

  for (uint32_t seed = 1; seed <= 4; ++seed) {
    EngineChatModel model(engine, Seeded(seed), "tiny");
    TurnRequest request{&messages,
                        &infos,
                        /*allow_tools=*/false,
                        /*allow_final=*/true,
                        MaxReplyChars(infos) + 8,
                        std::chrono::steady_clock::now() + std::chrono::minutes(2)};
    auto turn = model.Next(request, cancelled);
    ASSERT_TRUE(turn.ok()) << turn.status().message();
    ParsedReply reply = ParseReply(turn->text);
    EXPECT_TRUE(reply.final_answer.has_value()) << turn->text;
  }
}

TEST(AgentGrammarOnEngineTest, AnInvalidGrammarIsRefusedAtSubmit) {
  auto engine = LoadTiny();
  ASSERT_TRUE(engine);
  inference::SamplingParams p = Seeded(1);
  p.grammar = "root ::= (";
  auto gen = engine->Submit("hello", p);
  ASSERT_FALSE(gen.ok());
  EXPECT_EQ(gen.status().code(), StatusCode::kInvalidArgument);
}

TEST(AgentExecutorOnEngineTest, RequiredToolIsCalledAndTheLoopEnds) {
  inference::ModelCacheConfig config;
  config.default_slots = 2;
  config.default_threads = 1;
  config.sources.allow_download = false;
  auto models = std::make_shared<inference::ModelCache>(config);
  executors::ExecutorRegistry registry;
  RegisterAgentExecutor(registry, models);
  auto executor = registry.Create("agent");
  ASSERT_TRUE(executor.ok());
  json spec = {{"taskType", "agent"},
               {"configName", "default"},
               {"task", "What is 6*7? Use the calculator."},
               {"model", {{"source", {{"type", "local"}, {"identifier", TinyModel()}}}}},
               {"inference", {{"temperature", 0.8}, {"seed", 3}}},
               {"agent", {{"timeout", 120}, {"max_steps", 3}, {"tool_choice", "required"}}}};
  std::atomic<bool> cancelled{false};
  std::vector<json> updates;
  executors::TaskContext ctx{"tsk-1",
                             "wfl-1",
                             1,
                             "agent",
                             spec,
                             [](std::string) {},
                             [&](json u) { updates.push_back(u); },
                             cancelled};
  auto r = (*executor)->Run(ctx);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const json& t = (*r)["items"][0]["transcript"];
  ASSERT_GE(t["steps"].size(), 1u) << t.dump(2);
  EXPECT_EQ(t["steps"][0]["kind"], "tool_call") << t.dump(2);
  EXPECT_EQ(t["steps"][0]["tool"], "calculator");
  EXPECT_GE(t["usage"]["tool_calls"].get<int>(), 1);
  // The last turn may only answer: the run ends with a final answer within max_steps.
  EXPECT_EQ(t["finish_reason"], "final") << t.dump(2);
  EXPECT_LE(t["steps"].size(), 3u);
  EXPECT_EQ(updates.size(), t["steps"].size());
  EXPECT_EQ((*r)["model"], "local:" + TinyModel());
}

}  // namespace
}  // namespace flowmesh::agent
