#include "agent/openai_chat_model.h"

#include <gtest/gtest.h>

#include <deque>
#include <mutex>

#include "agent/agent_loop.h"
#include "agent/builtin_tools.h"
#include "http/http.h"

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;

// A fake OpenAI-compatible endpoint on port 0: answers /v1/chat/completions from a script
// and keeps the requests.
class FakeChatEndpoint {
 public:
  explicit FakeChatEndpoint(std::deque<json> messages) : script_(std::move(messages)) {
    auto router = std::make_shared<http::Router>();
    router->Add("POST", "/v1/chat/completions", [this](http::Request& req) {
      std::lock_guard lock(mu_);
      requests_.push_back(json::parse(req.body));
      if (script_.empty()) return http::Response::Json(500, R"({"error":"script exhausted"})");
      json message = script_.front();
      script_.pop_front();
      return http::Response::Json(
          200, json{{"choices", {{{"message", message}, {"finish_reason", "stop"}}}},
                    {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 7}}}}
                   .dump());
    });
    server_ = std::make_unique<http::Server>(http::ServerConfig{}, router);
    EXPECT_TRUE(server_->Start().ok());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()) + "/v1"; }
  std::vector<json> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  std::deque<json> script_;
  std::vector<json> requests_;
  std::unique_ptr<http::Server> server_;
};

TEST(OpenAiChatModelTest, ContentAndNativeToolCallsDriveTheLoop) {
  FakeChatEndpoint endpoint(
      {json{{"role", "assistant"},
            {"content", nullptr},
            {"tool_calls",
             {{{"type", "function"},
               {"function", {{"name", "calculator"}, {"arguments", R"({"expression":"6*7"})"}}}}}}},
       json{{"role", "assistant"}, {"content", R"({"final":"42"})"}}});
  auto model = OpenAiChatModel::Create({endpoint.url(), "tiny", 0.0f});
  ASSERT_TRUE(model.ok()) << model.status().message();
  ToolSet tools;
  ASSERT_TRUE(tools.Add(MakeCalculatorTool()).ok());
  std::atomic<bool> cancelled{false};
  auto run = RunAgent(**model, tools, "", "6*7?", AgentLimits{}, cancelled, nullptr);
  ASSERT_TRUE(run.ok()) << run.status().message();
  EXPECT_EQ((*run)["output"], "42");
  EXPECT_EQ((*run)["steps"][0]["result"]["value"], 42);
  EXPECT_EQ((*run)["usage"]["completion_tokens"], 14);
  auto requests = endpoint.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0]["model"], "tiny");
  EXPECT_EQ(requests[0]["messages"][0]["role"], "system");
  // The tool result went back as a user turn the endpoint understands.
  EXPECT_EQ(requests[1]["messages"].back()["role"], "user");
  EXPECT_NE(requests[1]["messages"].back()["content"].get<std::string>().find("42"),
            std::string::npos);
}

TEST(OpenAiChatModelTest, EndpointErrorsFailTheTurn) {
  FakeChatEndpoint endpoint({});
  auto model = OpenAiChatModel::Create({endpoint.url(), "tiny", 0.0f});
  ASSERT_TRUE(model.ok());
  std::vector<ChatMessage> messages = {{"user", "hi"}};
  std::vector<ToolInfo> tools;
  std::atomic<bool> cancelled{false};
  TurnRequest request{&messages, &tools,
                      true,      true,
                      16,        std::chrono::steady_clock::now() + std::chrono::seconds(10)};
  auto turn = (*model)->Next(request, cancelled);
  ASSERT_FALSE(turn.ok());
  EXPECT_EQ(turn.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(OpenAiChatModel::Create({"https://api.example.com/v1", "m", 0.0f}).ok());
}

}  // namespace
}  // namespace flowmesh::agent
