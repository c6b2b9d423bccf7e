// A serve endpoint over a real engine (tiny generated model) driven over HTTP: the OpenAI
// routes with and without streaming, keys, errors, embeddings, a client that goes away
// mid-stream (its sequence is cancelled), and Stop with a request in flight.
#include "inference/serve_endpoint.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <thread>

#include "http/http.h"
#include "test_model.h"

namespace flowmesh::inference {
namespace {

using json = nlohmann::json;
constexpr int kSlots = 4;

class ServeEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EngineOptions options;
    options.n_seq = kSlots;
    options.n_ctx = 4096;
    options.threads = 1;
    auto engine = Engine::Load(testing::TinyModel(), options);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(engine).value();
    ServeEndpointConfig config;
    config.model = "tiny";
    config.api_keys = {"secret-key"};
    config.max_concurrent = 8;
    auto ep = ServeEndpoint::Start(config, engine_);
    ASSERT_TRUE(ep.ok()) << ep.status().ToString();
    endpoint_ = std::move(ep).value();
    client_ = std::make_unique<http::Client>("http://127.0.0.1:" + std::to_string(endpoint_->port()));
  }

  http::Headers Auth() const { return {{"Authorization", "Bearer secret-key"}}; }

  json Post(const std::string& path, const json& body, int expect = 200) {
    auto r = client_->PostJson(path, body.dump(), Auth());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return json();
    EXPECT_EQ(r->status, expect) << r->body;
    return json::parse(r->body, nullptr, false);
  }

  // Waits (with a deadline) until every sequence slot is free again.
  bool AllSlotsFree() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (engine_->free_slots() == kSlots && endpoint_->in_flight() == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // polling a condition
    }
    return false;
  }

  std::shared_ptr<Engine> engine_;
  std::unique_ptr<ServeEndpoint> endpoint_;
  std::unique_ptr<http::Client> client_;
};

TEST_F(ServeEndpointTest, RefusesCallsWithoutTheKey) {
  auto r = client_->Get("/v1/models");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 401);
  r = client_->Get("/v1/models", {{"Authorization", "Bearer wrong"}});
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["type"], "invalid_request_error");
  r = client_->Get("/v1/models", Auth());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["data"][0]["id"], "tiny");
  EXPECT_EQ(client_->Get("/health")->status, 200);
}

TEST_F(ServeEndpointTest, ChatAndCompletionWithAndWithoutStreaming) {
  json chat = Post("/v1/chat/completions",
                   {{"model", "tiny"}, {"messages", {{{"role", "user"}, {"content", "hello"}}}},
                    {"temperature", 0}, {"max_tokens", 12}});
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["model"], "tiny");
  EXPECT_EQ(chat["usage"]["completion_tokens"], 12);
  EXPECT_EQ(chat["choices"][0]["finish_reason"], "length");

  json body = {{"prompt", "once upon a time"}, {"temperature", 0}, {"max_tokens", 16}};
  json whole = Post("/v1/completions", body);
  std::string text = whole["choices"][0]["text"];
  EXPECT_EQ(whole["usage"]["completion_tokens"], 16);

  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  std::string streamed, finish;
  int chunks = 0;
  bool done = false, usage = false;
  Status s = client_->StreamSse("POST", "/v1/completions", body.dump(), Auth(), [&](const http::SseEvent& e) {
    if (e.data == "[DONE]") {
      done = true;
      return true;
    }
    json chunk = json::parse(e.data);
    EXPECT_EQ(chunk["object"], "text_completion");
    if (chunk.contains("usage")) {
      usage = chunk["usage"]["completion_tokens"] == 16;
      return true;
    }
    ++chunks;
    streamed += chunk["choices"][0]["text"].get<std::string>();
    if (!chunk["choices"][0]["finish_reason"].is_null()) finish = chunk["choices"][0]["finish_reason"];
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(done);
  EXPECT_TRUE(usage);
  EXPECT_EQ(finish, "length");
  EXPECT_GE(chunks, 2);  // the text (in one piece or more), then the finish reason
  EXPECT_EQ(streamed, text);  // greedy: the stream gives the same text
  EXPECT_TRUE(AllSlotsFree());
  EXPECT_GE(endpoint_->requests(), 3u);
}

TEST_F(ServeEndpointTest, BadRequestsGetOpenAiErrors) {
  json err = Post("/v1/chat/completions", {{"messages", json::array()}}, 400);
  EXPECT_NE(err["error"]["message"].get<std::string>().find("messages"), std::string::npos);
  // A stream request with a bad body is refused before any event.
  Status s = client_->StreamSse("POST", "/v1/chat/completions", R"({"stream": true, "messages": 1})", Auth(),
                                [](const http::SseEvent&) { return true; });
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  auto r = client_->PostJson("/v1/completions", "not json", Auth());
  EXPECT_EQ(r->status, 400);
}

TEST_F(ServeEndpointTest, Embeddings) {
  json emb = Post("/v1/embeddings", {{"input", {"hello", "world"}}, {"model", "tiny"}});
  ASSERT_EQ(emb["data"].size(), 2u);
  EXPECT_GT(emb["data"][0]["embedding"].size(), 0u);
  EXPECT_EQ(emb["model"], "tiny");
}

TEST_F(ServeEndpointTest, AClientThatGoesAwayCancelsItsSequence) {
  json body = {{"prompt", "a long story"}, {"max_tokens", 100000}, {"stream", true}};
  int events = 0;
  Status s = client_->StreamSse("POST", "/v1/completions", body.dump(), Auth(), [&](const http::SseEvent&) {
    return ++events < 2;  // leave after two chunks
  });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(AllSlotsFree());
}

TEST_F(ServeEndpointTest, StopEndsRequestsInFlight) {
  std::thread caller([&] {
    http::Client c("http://127.0.0.1:" + std::to_string(endpoint_->port()));
    // min_tokens: the random model's end of text cannot end it before the stop does.
    auto r = c.PostJson("/v1/completions",
                        json{{"prompt", "x"}, {"max_tokens", 3000}, {"min_tokens", 3000}}.dump(),
                        Auth());
    // Either the 503 arrived or the connection was closed by the stop.
    if (r.ok()) {
      EXPECT_EQ(r->status, 503);
    }
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (endpoint_->in_flight() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // polling a condition
  }
  ASSERT_EQ(endpoint_->in_flight(), 1);
  endpoint_->Stop();
  caller.join();
  EXPECT_EQ(endpoint_->in_flight(), 0);
  EXPECT_TRUE(AllSlotsFree());  // its sequence was cancelled
}

}  // namespace
}  // namespace flowmesh::inference
