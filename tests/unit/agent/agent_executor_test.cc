#include "agent/agent_executor.h"

#include <gtest/gtest.h>

#include <mutex>

#include "unit/agent/scripted_model.h"

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;
using testing::ScriptedModel;

TEST(AgentSpecTest, TasksFromThePublishedShapes) {
  auto single = TasksFromSpec(json{{"task", "intro to AI"}});
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(*single, std::vector<std::string>{"intro to AI"});
  auto stat =
      TasksFromSpec(json::parse(R"({"data":{"type":"static","task":"s"},"task":"ignored"})"));
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(*stat, std::vector<std::string>{"s"});
  auto list = TasksFromSpec(json::parse(R"({"data":{"type":"list","items":["a","b"]}})"));
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
  auto items = TasksFromSpec(json::parse(R"({"data":{"items":["a",{"q":1}]}})"));
  ASSERT_TRUE(items.ok());
  EXPECT_EQ((*items)[1], R"({"q":1})");
  for (const char* bad : {"{}", R"({"task":""})", R"({"data":{"type":"static"}})",
                          R"({"data":{"type":"dataset","url":"x"}})"}) {
    auto r = TasksFromSpec(json::parse(bad));
    EXPECT_FALSE(r.ok()) << bad;
  }
}

TEST(AgentSpecTest, LimitsFromTheAgentSection) {
  auto d = LimitsFromSpec(json::object());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->timeout, std::chrono::seconds(600));
  EXPECT_EQ(d->max_steps, 8);
  auto s = LimitsFromSpec(json::parse(
      R"({"agent":{"timeout":300,"max_steps":3,"max_tokens":99,"max_step_tokens":50,"tool_choice":"required"}})"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->timeout, std::chrono::seconds(300));
  EXPECT_EQ(s->max_steps, 3);
  EXPECT_EQ(s->max_tokens, 99);
  EXPECT_EQ(s->max_step_tokens, 50);
  EXPECT_TRUE(s->tool_required);
  for (const char* bad : {R"({"agent":{"timeout":0}})", R"({"agent":{"timeout":"5"}})",
                          R"({"agent":{"max_steps":-1}})", R"({"agent":{"tool_choice":"always"}})",
                          R"({"agent":[1]})"}) {
    auto r = LimitsFromSpec(json::parse(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(AgentExecutorTest, RunsEveryItemReportsStepsAndTotals) {
  auto factory = [](executors::TaskContext&) -> Result<std::unique_ptr<ChatModel>> {
    return std::unique_ptr<ChatModel>(std::make_unique<ScriptedModel>(
        std::deque<std::string>{R"({"tool":"calculator","arguments":{"expression":"1+1"}})",
                                R"({"final":"2"})", R"({"final":"direct"})"}));
  };
  AgentExecutor executor(factory);
  std::atomic<bool> cancelled{false};
  std::mutex mu;
  std::vector<json> updates;
  std::vector<std::string> logs;
  executors::TaskContext ctx{
      "tsk-1",
      "wfl-1",
      1,
      "agent",
      json::parse(
          R"({"taskType":"agent","configName":"default","data":{"type":"list","items":["a","b"]}})"),
      [&](std::string line) {
        std::lock_guard l(mu);
        logs.push_back(line);
      },
      [&](json u) {
        std::lock_guard l(mu);
        updates.push_back(u);
      },
      cancelled};
  auto r = executor.Run(ctx);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const json& out = *r;
  ASSERT_EQ(out["items"].size(), 2u);
  EXPECT_EQ(out["items"][0]["output"], "2");
  EXPECT_EQ(out["items"][0]["finish_reason"], "final");
  EXPECT_EQ(out["items"][0]["transcript"]["steps"].size(), 2u);
  EXPECT_EQ(out["items"][1]["output"], "direct");
  EXPECT_EQ(out["model"], "scripted");
  EXPECT_EQ(out["usage"]["steps"], 3);
  EXPECT_EQ(out["usage"]["tool_calls"], 1);
  EXPECT_EQ(out["usage"]["num_requests"], 2);
  EXPECT_EQ(out["usage"]["agent_config"], "default");
  ASSERT_EQ(updates.size(), 3u);
  EXPECT_EQ(updates[0]["span"]["name"], "agent.step");
  EXPECT_EQ(updates[0]["span"]["tool"], "calculator");
  EXPECT_EQ(updates[2]["span"]["item"], 1);
  ASSERT_EQ(logs.size(), 3u);
  EXPECT_NE(logs[0].find("calculator"), std::string::npos);
}

TEST(AgentExecutorTest, BadSpecsArePermanentErrors) {
  int made = 0;
  auto factory = [&made](executors::TaskContext&) -> Result<std::unique_ptr<ChatModel>> {
    ++made;
    return std::unique_ptr<ChatModel>(std::make_unique<ScriptedModel>(std::deque<std::string>{}));
  };
  AgentExecutor executor(factory);
  std::atomic<bool> cancelled{false};
  for (const char* spec :
       {R"({"configName":"default"})", R"({"task":"t","configName":"unknown/cfg"})",
        R"({"task":"t","agent":{"timeout":-3}})"}) {
    executors::TaskContext ctx{"tsk-1",           "wfl-1", 1,       "agent",
                               json::parse(spec), nullptr, nullptr, cancelled};
    auto r = executor.Run(ctx);
    ASSERT_FALSE(r.ok()) << spec;
    EXPECT_FALSE(executors::IsRetryable(r.status())) << spec << ": " << r.status().message();
  }
  EXPECT_EQ(made, 0);  // refused before a model is loaded
}

TEST(AgentExecutorTest, ApiModelsAndMissingModelsNameTheProblem) {
  auto factory = CachedEngineModels(nullptr);  // never reaches the cache
  std::atomic<bool> cancelled{false};
  auto make = [&](const char* spec) {
    executors::TaskContext ctx{"tsk-1",           "wfl-1", 1,       "agent",
                               json::parse(spec), nullptr, nullptr, cancelled};
    return factory(ctx);
  };
  auto api = make(R"({"task":"t","agent":{"model":{"url":"http://x/v1","name":"m"}}})");
  ASSERT_TRUE(api.ok()) << api.status().message();
  EXPECT_EQ((*api)->name(), "api:m");
  EXPECT_TRUE(make(R"({"task":"t","agent":{"model":{"url":"https://x/v1"}}})").ok());
  auto scheme = make(R"({"task":"t","agent":{"model":{"url":"ftp://x/v1"}}})");
  ASSERT_FALSE(scheme.ok());
  EXPECT_EQ(scheme.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(scheme.status().message().find("agent.model.url"), std::string::npos);
  auto retries = make(R"({"task":"t","agent":{"model":{"url":"http://x/v1","retries":-1}}})");
  ASSERT_FALSE(retries.ok());
  EXPECT_NE(retries.status().message().find("agent.model.retries"), std::string::npos)
      << retries.status().message();
  auto named = make(R"({"task":"t","agent":{"model":{"endpoint":"openai"}}})");
  ASSERT_FALSE(named.ok());
  EXPECT_EQ(named.status().code(), StatusCode::kInvalidArgument);
  // The server's default endpoint and named credentials need a server to ask.
  for (const char* spec : {R"({"task":"t","agent":{"model":{"endpoint":"default"}}})",
                           R"({"task":"t","agent":{"model":{"url":"http://x/v1",
                               "headers":{"Authorization":"Bearer {{credential:KEY}}"}}}})"}) {
    auto r = make(spec);
    ASSERT_FALSE(r.ok()) << spec;
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().message();
  }
  auto none = make(R"({"task":"t"})");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kFailedPrecondition);
}

// The server's default endpoint and the credentials a model's headers name come from the
// attempt's grant; the url is the default one with /v1.
TEST(AgentExecutorTest, RemoteModelsTakeTheirGrantFromTheServer) {
  auto factory = CachedEngineModels(nullptr);
  std::atomic<bool> cancelled{false};
  std::vector<std::string> asked;
  bool asked_default = false;
  executors::TaskContext ctx{"tsk-1",
                             "wfl-1",
                             1,
                             "agent",
                             json::parse(R"({"task":"t","agent":{"model":{"endpoint":"default",
                               "name":"gpt","headers":{"X-Org":"{{credential:ORG}}"}}}})"),
                             nullptr,
                             nullptr,
                             cancelled};
  ctx.credentials = [&](const std::vector<std::string>& names, bool default_endpoint)
      -> Result<executors::CredentialGrant> {
    asked = names;
    asked_default = default_endpoint;
    return executors::CredentialGrant{{{"ORG", "acme"}}, "http://127.0.0.1:1/", "Bearer k"};
  };
  auto model = factory(ctx);
  ASSERT_TRUE(model.ok()) << model.status().message();
  EXPECT_EQ((*model)->name(), "api:gpt");
  EXPECT_EQ(asked, std::vector<std::string>{"ORG"});
  EXPECT_TRUE(asked_default);
}

}  // namespace
}  // namespace flowmesh::agent
