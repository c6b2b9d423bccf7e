#include <gtest/gtest.h>

#include "agent/builtin_tools.h"
#include "http/http.h"

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;

Deadline Soon() { return std::chrono::steady_clock::now() + std::chrono::seconds(10); }

// A real HTTP server on port 0: GET /hello, GET /big, POST /echo (returns the body).
class ToolsHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto router = std::make_shared<http::Router>();
    router->Add("GET", "/hello",
                [](http::Request&) { return http::Response::Json(200, R"({"greeting":"hi"})"); });
    router->Add("GET", "/big", [](http::Request&) {
      http::Response r;
      r.content_type = "text/plain";
      r.body = std::string(kMaxFetchBytes + 100, 'x');
      return r;
    });
    router->Add("POST", "/echo", [](http::Request& req) {
      posted = req.body;
      return http::Response::Json(200, json{{"got", json::parse(req.body)}}.dump());
    });
    server_ = std::make_unique<http::Server>(http::ServerConfig{}, router);
    ASSERT_TRUE(server_->Start().ok());
    host_port_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  static inline std::string posted;
  std::unique_ptr<http::Server> server_;
  std::string host_port_;
};

TEST_F(ToolsHttpTest, FetchAllowedHostReturnsStatusAndJson) {
  auto fetch = MakeHttpFetchTool({host_port_});
  auto r = fetch->Call({{"url", "http://" + host_port_ + "/hello"}}, Soon());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["status"], 200);
  EXPECT_EQ((*r)["json"]["greeting"], "hi");
  // Host without the port matches too.
  auto by_host = MakeHttpFetchTool({"127.0.0.1"});
  EXPECT_TRUE(by_host->Call({{"url", "http://" + host_port_ + "/hello"}}, Soon()).ok());
}

TEST_F(ToolsHttpTest, FetchRefusesHostsOffTheAllowList) {
  auto fetch = MakeHttpFetchTool({"example.org"});
  auto r = fetch->Call({{"url", "http://" + host_port_ + "/hello"}}, Soon());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  auto none = MakeHttpFetchTool({});
  EXPECT_FALSE(none->Call({{"url", "http://" + host_port_ + "/hello"}}, Soon()).ok());
  for (const char* bad : {"https://example.org/", "ftp://x/", "http://user@127.0.0.1/",
                          "http://:80/", "http://127.0.0.1:99999/", "not a url"}) {
    EXPECT_FALSE(MakeHttpFetchTool({"127.0.0.1"})->Call({{"url", bad}}, Soon()).ok()) << bad;
  }
  EXPECT_FALSE(fetch->Call({{"url", 3}}, Soon()).ok());
}

TEST_F(ToolsHttpTest, FetchTruncatesLargeBodies) {
  auto r =
      MakeHttpFetchTool({host_port_})->Call({{"url", "http://" + host_port_ + "/big"}}, Soon());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)["truncated"].get<bool>());
  EXPECT_EQ((*r)["body"].get<std::string>().size(), kMaxFetchBytes);
}

TEST_F(ToolsHttpTest, FetchPastTheDeadlineDoesNotStart) {
  auto r =
      MakeHttpFetchTool({host_port_})
          ->Call({{"url", "http://" + host_port_ + "/hello"}}, std::chrono::steady_clock::now());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
}

TEST_F(ToolsHttpTest, DeclaredEndpointPostsTheArguments) {
  auto tool = MakeEndpointTool({{"name", "echo_api"}, {"url", "http://" + host_port_ + "/echo"}});
  ASSERT_TRUE(tool.ok()) << tool.status().message();
  EXPECT_EQ((*tool)->info().name, "echo_api");
  auto r = (*tool)->Call({{"input", "ping"}}, Soon());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["json"]["got"]["input"], "ping");
  EXPECT_EQ(json::parse(posted), json({{"input", "ping"}}));
  EXPECT_FALSE((*tool)->Call({{"other", 1}}, Soon()).ok());  // schema: input required
}

TEST(ToolsFromSpecTest, ConfigNamesMapToToolSets) {
  auto d = ToolsFromSpec(json{{"configName", "default"}});
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->infos().size(), 1u);
  EXPECT_EQ(d->infos()[0].name, "calculator");
  auto none = ToolsFromSpec(json::object());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->Find("calculator"));
  for (const char* name : {"simple_search", "examples/search_agent", "examples/paper_collector"}) {
    auto s = ToolsFromSpec(json{{"configName", name}});
    ASSERT_TRUE(s.ok()) << name;
    EXPECT_TRUE(s->Find("http_fetch")) << name;
    EXPECT_TRUE(s->Find("calculator")) << name;
  }
  auto unknown = ToolsFromSpec(json{{"configName", "examples/nope"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
}

TEST(ToolsFromSpecTest, ExplicitToolsAndEndpointsAndBadDeclarations) {
  auto s = ToolsFromSpec(json::parse(R"({"configName":"default","agent":{"tools":["http_fetch"],
      "http":{"allow":["Example.org"]},"endpoints":[{"name":"weather","url":"http://127.0.0.1:1/w"}]}})"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_FALSE(s->Find("calculator"));
  EXPECT_TRUE(s->Find("http_fetch"));
  EXPECT_TRUE(s->Find("weather"));
  for (const char* bad : {R"({"agent":{"tools":["shell"]}})", R"({"agent":{"tools":[1]}})",
                          R"({"agent":{"http":{"allow":"x"}}})",
                          R"({"agent":{"endpoints":[{"name":"A b","url":"http://x/"}]}})",
                          R"({"agent":{"endpoints":[{"name":"a"}]}})",
                          R"({"agent":{"endpoints":[{"name":"calculator","url":"http://x/"}]}})"}) {
    auto r = ToolsFromSpec(json::parse(bad));
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

TEST(ParseHttpUrlTest, SplitsBaseHostAndPath) {
  auto u = ParseHttpUrl("http://Example.ORG:8080/a/b?q=1#frag");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->base, "http://example.org:8080");
  EXPECT_EQ(u->host, "example.org");
  EXPECT_EQ(u->host_port, "example.org:8080");
  EXPECT_EQ(u->path, "/a/b?q=1");
  auto bare = ParseHttpUrl("http://example.org");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->host_port, "example.org:80");
  EXPECT_EQ(bare->path, "/");
}

}  // namespace
}  // namespace flowmesh::agent
