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

OpenAiModelConfig Config(std::string url, std::string model) {
  OpenAiModelConfig config;
  config.url = std::move(url);
  config.model = std::move(model);
  return config;
}

// A fake OpenAI-compatible endpoint on port 0: answers /v1/chat/completions from a script
// and keeps the requests.
class FakeChatEndpoint {
 public:
  explicit FakeChatEndpoint(std::deque<json> messages) : script_(std::move(messages)) {
    auto router = std::make_shared<http::Router>();
    router->Add("POST", "/v1/chat/completions", [this](http::Request& req) {
      std::lock_guard lock(mu_);
      requests_.push_back(json::parse(req.body));
      authorizations_.push_back(req.Header("Authorization"));
      if (script_.empty()) return http::Response::Json(500, R"({"error":"script exhausted"})");
      json message = script_.front();
      script_.pop_front();
      if (message.contains("status")) {  // {status, retry_after}: an error reply
        http::Response busy = http::Response::Json(message["status"].get<int>(), R"({"error":"busy"})");
        busy.headers["Retry-After"] = message.value("retry_after", "0");
        return busy;
      }
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
  std::vector<std::string> authorizations() {
    std::lock_guard lock(mu_);
    return authorizations_;
  }

 private:
  std::mutex mu_;
  std::deque<json> script_;
  std::vector<json> requests_;
  std::vector<std::string> authorizations_;
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
  auto model = OpenAiChatModel::Create(Config(endpoint.url(), "tiny"));
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
  auto model = OpenAiChatModel::Create(Config(endpoint.url(), "tiny"));
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
  EXPECT_FALSE(OpenAiChatModel::Create(Config("ftp://api.example.com/v1", "m")).ok());
}

TurnRequest OneTurn(const std::vector<ChatMessage>* messages, const std::vector<ToolInfo>* tools,
                    std::chrono::milliseconds left) {
  return TurnRequest{messages, tools, true, true, 16, std::chrono::steady_clock::now() + left};
}

// The api executor's client underneath: a busy endpoint (429/503 with Retry-After) is
// retried, and a credential placeholder in a header is resolved from the grant at the
// request (what the endpoint saw), never kept in the config as plain text.
TEST(OpenAiChatModelTest, RetriesBusyEndpointsAndResolvesCredentials) {
  FakeChatEndpoint endpoint({json{{"status", 429}, {"retry_after", "0"}},
                             json{{"status", 503}},
                             json{{"role", "assistant"}, {"content", R"({"final":"ok"})"}}});
  OpenAiModelConfig config = Config(endpoint.url(), "tiny");
  config.http.headers["Authorization"] = "Bearer {{credential:LLM_KEY}}";
  config.http.retries = 3;
  config.http.backoff_s = 0.001;
  config.grant.values["LLM_KEY"] = "sk-test-123";
  auto model = OpenAiChatModel::Create(config);
  ASSERT_TRUE(model.ok()) << model.status().message();
  std::vector<ChatMessage> messages = {{"user", "hi"}};
  std::vector<ToolInfo> tools;
  std::atomic<bool> cancelled{false};
  auto turn = (*model)->Next(OneTurn(&messages, &tools, std::chrono::seconds(10)), cancelled);
  ASSERT_TRUE(turn.ok()) << turn.status().message();
  EXPECT_EQ(turn->text, R"({"final":"ok"})");
  EXPECT_EQ(turn->completion_tokens, 7);
  EXPECT_EQ(endpoint.authorizations(),
            std::vector<std::string>(3, "Bearer sk-test-123"));
}

// Out of retries, a busy endpoint is a retryable failure naming the url as written; a
// client error is permanent; a missing credential is named.
TEST(OpenAiChatModelTest, ErrorsAreClassifiedAndNameTheUrlAsWritten) {
  FakeChatEndpoint endpoint({json{{"status", 503}}, json{{"status", 400}}});
  OpenAiModelConfig config = Config(endpoint.url(), "tiny");
  config.http.retries = 0;
  auto model = OpenAiChatModel::Create(config);
  ASSERT_TRUE(model.ok());
  std::vector<ChatMessage> messages = {{"user", "hi"}};
  std::vector<ToolInfo> tools;
  std::atomic<bool> cancelled{false};
  auto busy = (*model)->Next(OneTurn(&messages, &tools, std::chrono::seconds(10)), cancelled);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(busy.status().message().find(endpoint.url() + "/chat/completions"), std::string::npos);
  auto bad = (*model)->Next(OneTurn(&messages, &tools, std::chrono::seconds(10)), cancelled);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);

  OpenAiModelConfig secret = Config(endpoint.url(), "tiny");
  secret.http.headers["Authorization"] = "Bearer {{credential:MISSING}}";
  auto unresolved = OpenAiChatModel::Create(secret);
  ASSERT_TRUE(unresolved.ok());
  auto missing =
      (*unresolved)->Next(OneTurn(&messages, &tools, std::chrono::seconds(10)), cancelled);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("MISSING"), std::string::npos);
}

}  // namespace
}  // namespace flowmesh::agent
