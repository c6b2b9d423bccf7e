// The api executor against a real local HTTP server (tests/support/api_stub_server.py,
// started on port 0 per test suite), and its pure request/retry rules.
#include "executors/api.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "common/process.h"
#include "executors/api_request.h"
#include "http/http.h"
#include "support/temp_dir.h"

namespace flowmesh::executors {
namespace {

using nlohmann::json;

class StubServer {
 public:
  StubServer() {
    std::string port_file = dir_ / "port";
    SpawnOptions o;
    // execve takes a path: /usr/bin/env finds python3 on PATH.
    o.argv = {"/usr/bin/env", "python3",
              std::string(FLOWMESH_SOURCE_DIR) + "/tests/support/api_stub_server.py",
              port_file};
    o.log_file = dir_ / "stub.log";
    auto pid = Spawn(o);
    if (!pid.ok()) return;
    pid_ = *pid;
    // Poll for the port file the server writes once it listens (bounded).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline && ProcessAlive(pid_)) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        base_ = "http://127.0.0.1:" + std::to_string(port);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~StubServer() {
    if (pid_ > 0) TerminateProcess(pid_, std::chrono::milliseconds(2000));
  }
  const std::string& base() const { return base_; }
  json Stats() const {
    http::Client c(base_);
    auto r = c.Get("/stats");
    return r.ok() ? json::parse(r->body, nullptr, false) : json();
  }
  int Hits(const std::string& key) const { return Stats()["hits"].value(key, 0); }

 private:
  testing::TempDir dir_;
  pid_t pid_ = -1;
  std::string base_;
};

StubServer* g_stub = nullptr;

class ApiExecutorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { g_stub = new StubServer(); }
  static void TearDownTestSuite() {
    delete g_stub;
    g_stub = nullptr;
  }
  void SetUp() override { ASSERT_FALSE(g_stub->base().empty()) << "the stub server did not start"; }

  std::string Url(const std::string& path) const { return g_stub->base() + path; }

  Result<json> Run(json spec) {
    TaskContext ctx{"tsk-1", "wfl-1", 1, "api", std::move(spec),
                    [this](std::string line) {
                      std::lock_guard<std::mutex> lock(mu_);
                      lines_.push_back(std::move(line));
                    },
                    [](json) {}, cancelled_};
    ctx.credentials = fetcher_;
    return ApiExecutor().Run(ctx);
  }

  std::mutex mu_;
  std::vector<std::string> lines_;
  std::atomic<bool> cancelled_{false};
  CredentialFetcher fetcher_;
};

TEST_F(ApiExecutorTest, ChatPerItemKeepsOrderAndSumsUsage) {
  json spec = {{"api",
                {{"url", Url("/v1/chat/completions")},
                 {"body", {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "{{prompt}}"}}}}}}}},
               {"data", {{"items", {"one", "two words", "three more words"}}}}};
  auto r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ((*r)["items"].size(), 3u);
  EXPECT_EQ((*r)["items"][0]["text"], "echo: one");
  EXPECT_EQ((*r)["items"][2]["text"], "echo: three more words");
  EXPECT_EQ((*r)["items"][1]["index"], 1);
  EXPECT_EQ((*r)["usage"]["prompt_tokens"], 1 + 2 + 3);
  EXPECT_EQ((*r)["usage"]["total_tokens"], 3 + 5 + 7);
  EXPECT_EQ((*r)["executor"], "api");
}

TEST_F(ApiExecutorTest, RetriesServerErrorsThenSucceeds) {
  json spec = {{"api", {{"url", Url("/flaky/k5xx/2")}, {"retries", 3}, {"backoff_sec", 0.01}}}};
  auto r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["status_code"], 200);
  EXPECT_EQ(g_stub->Hits("k5xx"), 3);
}

TEST_F(ApiExecutorTest, GivesUpAfterRetriesAsRetryable) {
  json spec = {{"api", {{"url", Url("/flaky/kgiveup/5")}, {"retries", 1}, {"backoff_sec", 0.01}}}};
  auto r = Run(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(IsRetryable(r.status())) << r.status().ToString();
  EXPECT_EQ(g_stub->Hits("kgiveup"), 2);
}

TEST_F(ApiExecutorTest, HonoursRetryAfter) {
  json spec = {{"api", {{"url", Url("/ratelimit/k429/1/1")}, {"retries", 2}, {"backoff_sec", 0}}}};
  auto start = std::chrono::steady_clock::now();
  auto r = Run(spec);
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(g_stub->Hits("k429"), 2);
  EXPECT_GE(elapsed, 0.95);  // Retry-After: 1 although backoff_sec is 0
  bool logged = false;
  for (const auto& l : lines_) logged = logged || l.find("HTTP 429, retry 1/2") != std::string::npos;
  EXPECT_TRUE(logged);
}

TEST_F(ApiExecutorTest, ClientErrorIsPermanentAndNotRetried) {
  int before = g_stub->Hits("status");
  json spec = {{"api", {{"url", Url("/status/400")}, {"retries", 3}, {"backoff_sec", 0.01}}}};
  auto r = Run(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_FALSE(IsRetryable(r.status()));
  EXPECT_EQ(g_stub->Hits("status") - before, 1);
}

TEST_F(ApiExecutorTest, RaiseForStatusOffReturnsTheErrorReply) {
  json spec = {{"api", {{"url", Url("/status/404")}, {"response", {{"raise_for_status", false}}}}}};
  auto r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["items"][0]["status_code"], 404);
}

TEST_F(ApiExecutorTest, TimeoutFailsTheRequest) {
  json spec = {{"api", {{"url", Url("/slow?ms=3000")}, {"timeout_sec", 0.3}, {"retries", 0}}}};
  auto start = std::chrono::steady_clock::now();
  auto r = Run(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_F(ApiExecutorTest, StreamsTokensIntoTheLog) {
  json spec = {{"api",
                {{"url", Url("/v1/chat/completions")},
                 {"stream", true},
                 {"body", {{"messages", {{{"role", "user"}, {"content", "{{prompt}}"}}}}}}}},
               {"data", {{"items", {"alpha beta gamma"}}}}};
  auto r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["items"][0]["text"], "echo: alpha beta gamma");
  EXPECT_EQ((*r)["usage"]["prompt_tokens"], 3);
  std::string logged;
  for (const auto& l : lines_) logged += l;
  EXPECT_NE(logged.find("[0] echo: alpha beta gamma"), std::string::npos) << logged;
}

TEST_F(ApiExecutorTest, BoundsConcurrencyPerEndpoint) {
  json items = json::array();
  for (int i = 0; i < 8; ++i) items.push_back("x" + std::to_string(i));
  // Its own server: slow requests other tests abandoned may still be in flight on the shared one.
  StubServer own;
  ASSERT_FALSE(own.base().empty());
  json spec = {{"api", {{"url", own.base() + "/slow?ms=150"}, {"concurrency", 2}}},
               {"data", {{"items", items}}}};
  auto start = std::chrono::steady_clock::now();
  auto r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Never more than the bound (fewer may overlap on a loaded machine).
  int max_in_flight = own.Stats()["max_in_flight"].get<int>();
  EXPECT_GE(max_in_flight, 1);
  EXPECT_LE(max_in_flight, 2);
  // 8 requests, 2 at a time, 150 ms each: at least 4 rounds.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(590));
}

TEST_F(ApiExecutorTest, ResolvesCredentialsAndNeverReturnsThem) {
  std::vector<std::string> asked;
  fetcher_ = [&asked](const std::vector<std::string>& names, bool) -> Result<CredentialGrant> {
    asked = names;
    CredentialGrant g;
    g.values["OpenAi account"] = "sk-very-secret";
    return g;
  };
  json spec = {{"api",
                {{"url", Url("/echo")},
                 {"headers", {{"Authorization", "Bearer {{credential:OpenAi account}}"}}},
                 {"response", {{"parse_json", true}}}}}};
  auto r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(asked, std::vector<std::string>{"OpenAi account"});
  // The server saw the value; the result only holds what the server echoed in its body.
  EXPECT_EQ((*r)["items"][0]["response_json"]["headers"]["authorization"], "Bearer sk-very-secret");
  json without_echo = *r;
  without_echo["items"][0].erase("response_json");
  without_echo["items"][0].erase("text");
  EXPECT_EQ(without_echo.dump().find("sk-very-secret"), std::string::npos);
  for (const auto& l : lines_) EXPECT_EQ(l.find("sk-very-secret"), std::string::npos);
}

TEST_F(ApiExecutorTest, CredentialWithoutServerFails) {
  json spec = {{"api", {{"url", Url("/echo")}, {"headers", {{"X-Api-Key", "{{credential:K}}"}}}}}};
  auto r = Run(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(ApiExecutorTest, DefaultEndpointWhenUrlOmitted) {
  bool asked_default = false;
  std::string base = g_stub->base() + "/";
  fetcher_ = [&](const std::vector<std::string>&, bool def) -> Result<CredentialGrant> {
    asked_default = def;
    CredentialGrant g;
    g.default_url = base;
    g.default_authorization = "Bearer default-token";
    return g;
  };
  json spec = {{"api", {{"body", {{"messages", {{{"role", "user"}, {"content", "hi"}}}}}}}}};
  auto r = Run(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(asked_default);
  EXPECT_EQ((*r)["items"][0]["text"], "echo: hi");
  EXPECT_EQ((*r)["items"][0]["response_json"]["auth_seen"], true);
  EXPECT_EQ((*r)["url"], g_stub->base() + "/v1/chat/completions");
}

TEST_F(ApiExecutorTest, CancelStopsAWaitingRequest) {
  json spec = {{"api", {{"url", Url("/slow?ms=5000")}, {"timeout_sec", 30}}}};
  std::thread canceller([this] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the request start
    cancelled_ = true;
  });
  auto start = std::chrono::steady_clock::now();
  auto r = Run(spec);
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(ApiRequestTest, RetryDelayHonoursRetryAfterAndJitters) {
  api::ApiOptions o;
  o.backoff_s = 1;
  o.max_backoff_s = 10;
  EXPECT_EQ(api::RetryDelay(o, 1, "3", 0.0, 0).count(), 3000);
  EXPECT_EQ(api::RetryDelay(o, 1, "99", 0.0, 0).count(), 10000);  // capped
  // HTTP date 2 s ahead of "now".
  EXPECT_EQ(api::RetryDelay(o, 1, "Thu, 01 Jan 1970 00:00:12 GMT", 0.0, 10).count(), 2000);
  EXPECT_EQ(api::RetryDelay(o, 3, "", 0.0, 0).count(), 2000);   // 4 s halved by jitter 0
  EXPECT_EQ(api::RetryDelay(o, 3, "", 1.0, 0).count(), 4000);   // full
  EXPECT_EQ(api::RetryDelay(o, 9, "", 1.0, 0).count(), 10000);  // capped
  EXPECT_TRUE(api::IsRetryableStatus(429));
  EXPECT_TRUE(api::IsRetryableStatus(502));
  EXPECT_FALSE(api::IsRetryableStatus(404));
}

TEST(ApiRequestTest, PlaceholdersAndOptions) {
  json spec = {{"api",
                {{"url", "https://x/{{credential:A}}"},
                 {"headers", {{"Authorization", "Bearer {{ credential:B }}"}}},
                 {"json", {{"messages", "{{prompt}}"}, {"q", "say {{prompt}}"}}},
                 {"timeout_sec", 5}}}};
  EXPECT_EQ(api::CredentialNames(spec["api"]), (std::set<std::string>{"A", "B"}));
  auto o = api::ParseApiOptions(spec);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->timeout_s, 5);
  json chat = json::array({{{"role", "user"}, {"content", "hi"}}});
  auto p = api::PrepareRequest(*o, o->url, chat);
  json body = json::parse(p.body);
  EXPECT_EQ(body["messages"], chat);  // a whole-string placeholder takes the item itself
  EXPECT_EQ(body["q"], "say " + chat.dump());
  auto resolved = api::ResolveCredentials(p.headers["Authorization"], {{"B", "v"}});
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(*resolved, "Bearer v");
  EXPECT_FALSE(api::ResolveCredentials("{{credential:C}}", {}).ok());
  EXPECT_FALSE(api::ParseApiOptions({{"api", {{"json", 1}, {"body", 2}}}}).ok());
  EXPECT_FALSE(api::ParseApiOptions({{"api", {{"retries", -1}}}}).ok());
}

}  // namespace
}  // namespace flowmesh::executors
