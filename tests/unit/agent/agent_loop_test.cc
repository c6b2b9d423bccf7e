#include "agent/agent_loop.h"

#include <gtest/gtest.h>

#include "agent/builtin_tools.h"
#include "unit/agent/scripted_model.h"

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;
using testing::ScriptedModel;

ToolSet Calculator() {
  ToolSet tools;
  EXPECT_TRUE(tools.Add(MakeCalculatorTool()).ok());
  return tools;
}

const char* kCall = R"({"tool":"calculator","arguments":{"expression":"6*7"}})";

TEST(AgentLoopTest, ToolCallThenFinalAnswerMakesAFullTranscript) {
  ScriptedModel model({kCall, R"({"final":"it is 42"})"});
  ToolSet tools = Calculator();
  std::atomic<bool> cancelled{false};
  std::vector<json> observed;
  auto run = RunAgent(model, tools, "", "what is 6*7?", AgentLimits{}, cancelled,
                      [&](const json& step) { observed.push_back(step); });
  ASSERT_TRUE(run.ok()) << run.status().message();
  const json& t = *run;
  EXPECT_EQ(t["finish_reason"], "final");
  EXPECT_EQ(t["output"], "it is 42");
  ASSERT_EQ(t["steps"].size(), 2u);
  EXPECT_EQ(t["steps"][0]["kind"], "tool_call");
  EXPECT_EQ(t["steps"][0]["tool"], "calculator");
  EXPECT_EQ(t["steps"][0]["result"]["value"], 42);
  EXPECT_EQ(t["steps"][1]["kind"], "final");
  for (const char* key :
       {"started_ms", "model_ms", "tool_ms", "duration_ms", "completion_tokens"}) {
    EXPECT_TRUE(t["steps"][0].contains(key)) << key;
  }
  // system, user, assistant call, tool result, assistant final
  ASSERT_EQ(t["messages"].size(), 5u);
  EXPECT_EQ(t["messages"][3]["role"], "tool");
  EXPECT_NE(t["messages"][3]["content"].get<std::string>().find("42"), std::string::npos);
  EXPECT_EQ(model.seen[1].last_message, t["messages"][3]["content"]);  // the model saw the result
  EXPECT_EQ(t["usage"]["tool_calls"], 1);
  EXPECT_EQ(t["usage"]["steps"], 2);
  EXPECT_EQ(t["usage"]["completion_tokens"], 20);
  EXPECT_EQ(observed.size(), 2u);
}

TEST(AgentLoopTest, MaxStepsBoundsTheLoopAndTheLastTurnMustAnswer) {
  ScriptedModel model({kCall, kCall, kCall});
  ToolSet tools = Calculator();
  std::atomic<bool> cancelled{false};
  AgentLimits limits;
  limits.max_steps = 3;
  auto run = RunAgent(model, tools, "", "loop", limits, cancelled, nullptr);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ((*run)["finish_reason"], "max_steps");
  EXPECT_EQ((*run)["steps"].size(), 3u);
  ASSERT_EQ(model.seen.size(), 3u);
  EXPECT_TRUE(model.seen[1].allow_tools);
  EXPECT_FALSE(model.seen[2].allow_tools);  // last turn: final answer only
  EXPECT_TRUE(model.seen[2].allow_final);
  // A call on the last turn is refused, not run.
  EXPECT_EQ((*run)["steps"][2]["kind"], "invalid");
  EXPECT_EQ((*run)["usage"]["tool_calls"], 2);
}

TEST(AgentLoopTest, TokenBudgetEndsTheRunAndCapsEachTurn) {
  ScriptedModel model({kCall, kCall, kCall, kCall}, /*tokens_per_reply=*/40);
  ToolSet tools = Calculator();
  std::atomic<bool> cancelled{false};
  AgentLimits limits;
  limits.max_tokens = 100;
  limits.max_step_tokens = 64;
  auto run = RunAgent(model, tools, "", "t", limits, cancelled, nullptr);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ((*run)["finish_reason"], "max_tokens");
  ASSERT_EQ(model.seen.size(), 3u);  // 40 + 40 + 40 >= 100
  EXPECT_EQ(model.seen[0].max_tokens, 64);
  EXPECT_EQ(model.seen[2].max_tokens, 20);  // what is left of the budget
}

TEST(AgentLoopTest, WallTimeEndsTheRunWithThePartialTranscript) {
  ScriptedModel model({kCall, kCall, kCall});
  ToolSet tools = Calculator();
  std::atomic<bool> cancelled{false};
  AgentLimits limits;
  limits.timeout = std::chrono::milliseconds(0);
  auto run = RunAgent(model, tools, "", "t", limits, cancelled, nullptr);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ((*run)["finish_reason"], "timeout");
  EXPECT_TRUE(model.seen.empty());
}

TEST(AgentLoopTest, AModelPastTheDeadlineEndsTheRun) {
  ScriptedModel model({kCall});
  ToolSet tools = Calculator();
  std::atomic<bool> cancelled{false};
  AgentLimits limits;
  limits.timeout = std::chrono::seconds(60);
  model.late = true;
  auto run = RunAgent(model, tools, "", "t", limits, cancelled, nullptr);
  ASSERT_TRUE(run.ok());
  EXPECT_EQ((*run)["finish_reason"], "timeout");
  EXPECT_EQ((*run)["steps"].size(), 0u);
}

TEST(AgentLoopTest, CancellationIsAnError) {
  ScriptedModel model({kCall, kCall});
  ToolSet tools = Calculator();
  std::atomic<bool> cancelled{false};
  model.on_turn = [&] { cancelled = true; };
  auto run = RunAgent(model, tools, "", "t", AgentLimits{}, cancelled, nullptr);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), StatusCode::kCancelled);
}

TEST(AgentLoopTest, RequiredToolForbidsAnEarlyAnswer) {
  ScriptedModel model({R"({"final":"too early"})", kCall, R"({"final":"42"})"});
  ToolSet tools = Calculator();
  std::atomic<bool> cancelled{false};
  AgentLimits limits;
  limits.tool_required = true;
  auto run = RunAgent(model, tools, "", "t", limits, cancelled, nullptr);
  ASSERT_TRUE(run.ok());
  EXPECT_FALSE(model.seen[0].allow_final);
  EXPECT_TRUE(model.seen[0].allow_tools);
  EXPECT_FALSE(model.seen[1].allow_final);
  EXPECT_TRUE(model.seen[2].allow_final);
  EXPECT_EQ((*run)["steps"][0]["kind"], "invalid");
  EXPECT_EQ((*run)["output"], "42");
}

TEST(AgentLoopTest, BadRepliesAndToolErrorsGoBackToTheModel) {
  ScriptedModel model({"not json", R"({"tool":"nope","arguments":{}})",
                       R"({"tool":"calculator","arguments":{"expression":"1/0"}})",
                       R"({"tool":"calculator","arguments":{}})", R"({"final":"gave up"})"});
  ToolSet tools = Calculator();
  std::atomic<bool> cancelled{false};
  auto run = RunAgent(model, tools, "", "t", AgentLimits{}, cancelled, nullptr);
  ASSERT_TRUE(run.ok());
  const json& steps = (*run)["steps"];
  ASSERT_EQ(steps.size(), 5u);
  EXPECT_EQ(steps[0]["kind"], "invalid");
  EXPECT_NE(steps[1]["error"].get<std::string>().find("no tool named"), std::string::npos);
  EXPECT_NE(steps[2]["error"].get<std::string>().find("division by zero"), std::string::npos);
  EXPECT_NE(steps[3]["error"].get<std::string>().find("missing argument"), std::string::npos);
  EXPECT_NE(model.seen[3].last_message.find("division by zero"), std::string::npos);
  EXPECT_EQ((*run)["finish_reason"], "final");
}

TEST(AgentLoopTest, AFailingModelFailsTheRun) {
  ScriptedModel model({});
  ToolSet tools = Calculator();
  std::atomic<bool> cancelled{false};
  auto run = RunAgent(model, tools, "", "t", AgentLimits{}, cancelled, nullptr);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace flowmesh::agent
