#include <gtest/gtest.h>

#include "agent/builtin_tools.h"
#include "agent/python_tool.h"
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

namespace flowmesh::agent {
namespace {

class PythonToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status probe = executors::Sandbox().Probe();
    if (!probe.ok()) GTEST_SKIP() << probe.ToString();
  }
  Deadline Soon() { return std::chrono::steady_clock::now() + std::chrono::seconds(30); }
};

// The model's program runs and what it printed comes back; a failing program is a result
// (exit code and stderr), not a tool error.
TEST_F(PythonToolTest, RunsTheProgramAndReturnsItsOutput) {
  auto tool = MakePythonTool();
  auto ok = tool->Call(nlohmann::json{{"code", "print(sum(range(10)))"}}, Soon());
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ((*ok)["exit_code"], 0);
  EXPECT_EQ((*ok)["stdout"], "45\n");
  auto raised = tool->Call(nlohmann::json{{"code", "raise ValueError('nope')"}}, Soon());
  ASSERT_TRUE(raised.ok()) << raised.status().ToString();
  EXPECT_EQ((*raised)["exit_code"], 1);
  EXPECT_NE((*raised)["stderr"].get<std::string>().find("ValueError: nope"), std::string::npos);
  EXPECT_FALSE(tool->Call(nlohmann::json{{"code", 3}}, Soon()).ok());
}

// The sandbox holds: no network, nothing of the host's private files, an empty home, and
// a runaway program ends at its time limit.
TEST_F(PythonToolTest, TheProgramIsSandboxed) {
  PythonToolConfig config;
  config.timeout = std::chrono::milliseconds(1500);
  auto tool = MakePythonTool(config);
  auto probe = tool->Call(
      nlohmann::json{{"code",
                      "import os, socket\n"
                      "print(os.listdir(os.path.expanduser('~')))\n"
                      "print(os.path.exists('/root'), os.path.exists('/etc/shadow'))\n"
                      "s = socket.socket()\n"
                      "try:\n"
                      "    s.connect(('1.1.1.1', 80)); print('net')\n"
                      "except OSError as e:\n"
                      "    print('no-net')\n"}},
      Soon());
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  EXPECT_EQ((*probe)["stdout"], "[]\nFalse False\nno-net\n") << (*probe)["stderr"];
  auto loop = tool->Call(nlohmann::json{{"code", "while True: pass"}}, Soon());
  ASSERT_FALSE(loop.ok());
  EXPECT_EQ(loop.status().code(), StatusCode::kDeadlineExceeded);
  // Past the run's deadline nothing starts.
  auto late = tool->Call(nlohmann::json{{"code", "print(1)"}}, std::chrono::steady_clock::now());
  EXPECT_EQ(late.status().code(), StatusCode::kDeadlineExceeded);
}

// `python` is a built-in tool an agent may be given by name.
TEST(ToolsFromSpecTest, PythonIsABuiltInTool) {
  auto set = ToolsFromSpec(nlohmann::json::parse(R"({"agent":{"tools":["python","calculator"]}})"));
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_NE(set->Find("python"), nullptr);
  auto bad = ToolsFromSpec(nlohmann::json::parse(R"({"agent":{"tools":["shell"]}})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("python"), std::string::npos);
}

}  // namespace
}  // namespace flowmesh::agent
