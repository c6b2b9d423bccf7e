// The published CLI's verbs and flags (flowmesh-cli 0.1.0 / 0.1.13): parsing, and the new
// verbs against an in-process fake of the REST API that answers in the old and the new
// (published SDK) response shapes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "cli/cli.h"
#include "http/http.h"
#include "support/temp_dir.h"
#include "unit/cli/cli_test_support.h"

namespace flowmesh::cli {
namespace {

using nlohmann::json;

using test_support::Parse;
using test_support::Parsed;

TEST(CompatParseTest, TaskVerbs) {
  auto p = Parse({"task",
                  "list",
                  "--id",
                  "t1",
                  "--workflow-id",
                  "w1",
                  "-s",
                  "DONE",
                  "--status",
                  "FAILED",
                  "--category",
                  "inference",
                  "--type",
                  "echo",
                  "--assigned-worker",
                  "k",
                  "--graph-node",
                  "a",
                  "--not-completed",
                  "--failed",
                  "--limit",
                  "5",
                  "-q",
                  "x=1"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "task list");
  EXPECT_EQ(p.inv.workflow_filter, "w1");
  EXPECT_EQ(p.inv.statuses, (std::vector<std::string>{"DONE", "FAILED"}));
  EXPECT_EQ(p.inv.completed, 0);
  EXPECT_EQ(p.inv.failed, 1);
  EXPECT_EQ(p.inv.limit, 5);
  EXPECT_EQ(p.inv.query, (std::vector<std::string>{"x=1"}));
  EXPECT_EQ(Parse({"task", "list"}).inv.completed, -1);
  p = Parse({"task", "stop", "t1", "--no-wait", "--interval", "0.5"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "task stop");
  EXPECT_TRUE(p.inv.no_wait);
  EXPECT_DOUBLE_EQ(p.inv.interval, 0.5);
  EXPECT_EQ(Parse({"task", "watch", "t1"}).command, "task watch");
  // Ours (`task logs ID`) and the published group (`task logs show|stream|download ID`).
  p = Parse({"task", "logs", "t1"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "task logs");
  EXPECT_EQ(p.inv.names, (std::vector<std::string>{"t1"}));
  p = Parse({"task", "logs", "show", "t1", "--limit", "20", "--before", "9"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "task logs show");
  EXPECT_EQ(p.inv.names, (std::vector<std::string>{"t1"}));
  EXPECT_EQ(p.inv.before, "9");
  EXPECT_EQ(Parse({"task", "logs", "stream", "t1", "--cursor", "3"}).inv.cursor, "3");
  p = Parse({"task", "logs", "download", "t1", "-o", "x.jsonl"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "task logs download");
  EXPECT_EQ(p.inv.output, "x.jsonl");
  EXPECT_FALSE(Parse({"task", "logs", "download", "t1"}).ok);
}

TEST(CompatParseTest, WorkflowVerbs) {
  auto p = Parse({"workflow", "list", "--id", "w", "-s", "DONE", "--task-id", "t1", "--task-id",
                  "t2", "--limit", "3", "--query", "a=b"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.inv.task_ids, (std::vector<std::string>{"t1", "t2"}));
  EXPECT_FALSE(Parse({"workflow", "list", "--limit", "0"}).ok);
  p = Parse({"workflow", "validate", "wf.yaml", "--strict", "--local", "--format", "n8n"});
  ASSERT_TRUE(p.ok);
  EXPECT_TRUE(p.inv.strict);
  EXPECT_TRUE(p.inv.local_only);
  EXPECT_EQ(Parse({"workflow", "watch", "w", "--interval", "1"}).command, "workflow watch");
  p = Parse({"workflow", "logs", "download", "w", "--output", "dir"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "workflow logs download");
  EXPECT_EQ(p.inv.output, "dir");
  EXPECT_FALSE(Parse({"workflow", "logs", "download", "w"}).ok);
  EXPECT_EQ(Parse({"workflow", "logs", "stream", "w", "--cursor", "5"}).inv.cursor, "5");
}

TEST(CompatParseTest, FleetSystemSshTraceAndLocalVerbs) {
  auto p = Parse({"worker", "list", "--alias", "a", "--node-alias", "n", "--tag", "gpu",
                  "--not-stale", "--namespace", "ns", "--cluster", "c", "--node-id", "nid"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.inv.stale, 0);
  EXPECT_EQ(p.inv.tag_filter, (std::vector<std::string>{"gpu"}));
  p = Parse({"worker", "cordon", "--node-alias", "n", "--alias", "a"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "worker cordon");
  EXPECT_TRUE(p.inv.names.empty());
  EXPECT_EQ(Parse({"worker", "cordons"}).command, "worker cordons");
  EXPECT_EQ(Parse({"node", "list", "--alias", "x", "--tag", "t"}).command, "node list");
  EXPECT_EQ(Parse({"node", "info", "n1"}).command, "node info");
  p = Parse({"node", "worker", "list"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "node worker list");
  EXPECT_TRUE(p.inv.names.empty());
  EXPECT_EQ(Parse({"node", "worker", "list", "n1", "--name", "w"}).inv.alias, "w");
  EXPECT_EQ(Parse({"node", "worker", "list", "n1", "--alias", "w", "--provider", "native"})
                .inv.provider_filter,
            "native");
  p = Parse({"node", "worker", "start", "n1", "cpu-1"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.inv.names, (std::vector<std::string>{"n1", "cpu-1"}));
  EXPECT_FALSE(Parse({"node", "worker", "stop", "n1"}).ok);
  EXPECT_EQ(Parse({"system", "metrics"}).command, "system metrics");
  EXPECT_EQ(Parse({"system", "version"}).command, "system version");
  p = Parse({"ssh",
             "run",
             "-k",
             "k.pub",
             "-g",
             "1",
             "--gpu-memory",
             "16GB",
             "-m",
             "8Gi",
             "--cpu",
             "2",
             "--ttl",
             "60",
             "--idle-timeout",
             "30",
             "--image",
             "img",
             "-u",
             "me",
             "--mode",
             "direct",
             "-w",
             "wkr",
             "-n",
             "s",
             "-e",
             "A=1",
             "-e",
             "B=2",
             "-c",
             "python x.py",
             "--non-interactive",
             "--logs",
             "--tail",
             "--interval",
             "1",
             "--direct",
             "--ssh-args",
             "-v"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "ssh run");
  EXPECT_EQ(p.inv.ssh_env, (std::vector<std::string>{"A=1", "B=2"}));
  EXPECT_EQ(p.inv.ssh_interactive, 0);
  EXPECT_TRUE(p.inv.ssh_logs);
  EXPECT_EQ(p.inv.ssh_command, "python x.py");
  EXPECT_EQ(Parse({"ssh", "connect", "t1", "--direct"}).command, "ssh connect");
  EXPECT_EQ(Parse({"ssh", "proxy", "t1"}).command, "ssh proxy");
  EXPECT_EQ(Parse({"ssh", "connections", "--mode", "proxy", "--source-port", "22"}).command,
            "ssh connections");
  p = Parse({"trace", "fetch", "spans", "w1", "-o", "out.jsonl"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.inv.names, (std::vector<std::string>{"spans", "w1"}));
  EXPECT_EQ(p.inv.output, "out.jsonl");
  EXPECT_EQ(Parse({"trace", "fetch", "w1", "--kind", "assets"}).inv.trace_kind, "assets");
  EXPECT_EQ(Parse({"trace", "analyze", "w1", "-f", "cp"}).inv.analyze_view, "cp");
  EXPECT_FALSE(Parse({"trace", "analyze", "w1", "-f", "pie"}).ok);
  p = Parse({"init", "--force", "--config", "/tmp/x.toml"});
  ASSERT_TRUE(p.ok);
  EXPECT_TRUE(p.inv.names.empty());
  EXPECT_TRUE(p.inv.force);
  EXPECT_EQ(p.inv.config_path, "/tmp/x.toml");
  EXPECT_EQ(Parse({"deinit", "--config", "c.json"}).command, "deinit");
  p = Parse({"config", "--source", "env", "--show-api-key"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.inv.config_source, "env");
  EXPECT_TRUE(p.inv.show_api_key);
  EXPECT_FALSE(Parse({"config", "--source", "cloud"}).ok);
  EXPECT_EQ(Parse({"info"}).command, "info");
  EXPECT_EQ(Parse({"result", "fetch", "t1", "-o", "d"}).inv.output, "d");
  p = Parse({"result", "download", "t1", "a.txt", "b/c.png", "-o", "d"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.inv.names.size(), 3u);
}

// A port with a bound but non-listening socket: connections are refused.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~ClosedPort() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

using test_support::Event;

// Answers in the published SDK's shapes when `published` (ISO timestamps, id lists, `id`,
// capabilities, {ok:true}); in ours otherwise.
class FakeApi {
 public:
  explicit FakeApi(bool published) : published_(published) {
    auto r = std::make_shared<http::Router>();
    r->Add("GET", "/healthz", [this](http::Request&) {
      return http::Response::Json(200, published_ ? R"({"ok":true})" : R"({"status":"ok"})");
    });
    r->Add("GET", "/api/v1/system/version",
           [](http::Request&) { return http::Response::Json(200, R"({"version":"9.9.9"})"); });
    r->Add("GET", "/api/v1/system/metrics", [](http::Request&) {
      return http::Response::Json(200, R"({"tasks":{"running":2},"workers":1})");
    });
    r->Add("POST", "/api/v1/workflows/validate", [](http::Request& req) {
      return http::Response::Json(200, R"({"ok":true,"count":1,"tasks":[{"task_id":null,
        "graph_node_name":"main","depends_on":[]}]})");
    });
    r->Add("GET", "/api/v1/workers", [this](http::Request&) {
      json w =
          published_
              ? json{{"id", "wkr-1"},
                     {"status", "IDLE"},
                     {"capabilities", {{"supported_task_types", {"inference"}}}}}
              : json{{"worker_id", "wkr-1"}, {"status", "IDLE"}, {"task_types", {"inference"}}};
      return http::Response::Json(200, json::array({w}).dump());
    });
    r->Add("GET", "/api/v1/nodes", [](http::Request&) {
      return http::Response::Json(200,
                                  R"([{"node_id":"nod-1","alias":"local","workers":["wkr-1"]}])");
    });
    r->Add("GET", "/api/v1/nodes/workers", [this](http::Request&) {
      json w = {{"worker_id", "wkr-1"}, {"alias", "cpu-1"}, {"status", "IDLE"}};
      return http::Response::Json(
          200, published_ ? json::array({w}).dump() : json{{"nod-1", {w}}}.dump());
    });
    r->Add("GET", "/api/v1/workflows", [this](http::Request&) {
      json w = {{"workflow_id", "wfl-1"}, {"status", "DONE"}, {"task_ids", {"tsk-a", "tsk-b"}}};
      if (published_) {
        w["completed_tasks"] = {"tsk-a", "tsk-b"};
        w["failed_tasks"] = json::array();
        w["submitted_at"] = "2023-11-14T22:13:20Z";
      } else {
        w["completed_tasks"] = 2;
        w["failed_tasks"] = 0;
        w["submitted_at"] = 1700000000;
      }
      return http::Response::Json(200, json::array({w}).dump());
    });
    r->Add("GET", "/api/v1/workflows/{id}", [](http::Request&) {
      return http::Response::Json(200, R"({"workflow_id":"wfl-1","task_ids":["tsk-a","tsk-b"],
        "status":"DONE"})");
    });
    r->Add("GET", "/api/v1/results/{id}/logs", [](http::Request& req) {
      return http::Response::Json(200, "{\"line\":\"" + req.params["id"] + "\"}\n");
    });
    r->Add("GET", "/api/v1/tasks/{id}", [this](http::Request& req) {
      std::string id = req.params["id"];
      std::string status = "DISPATCHED";
      if (streamed_)
        status = id == "tsk-fail" ? "FAILED" : id == "tsk-cancel" ? "CANCELLED" : "DONE";
      return http::Response::Json(
          200, json{{"task_id", id}, {"status", status}, {"error", id == "tsk-fail" ? "boom" : ""}}
                   .dump());
    });
    r->Add("POST", "/api/v1/tasks/{id}/stop", [](http::Request& req) {
      return http::Response::Error(501, "only ssh and serve tasks can be stopped; task " +
                                            req.params["id"] + " is of type echo");
    });
    r->AddSse("/api/v1/tasks/{id}/logs/stream", [this](http::Request& req,
                                                       std::shared_ptr<http::SseStream> s) {
      std::string id = req.params["id"];
      std::string end = id == "tsk-fail"     ? "TASK_FAILED"
                        : id == "tsk-cancel" ? "TASK_CANCELLED"
                                             : "TASK_SUCCEEDED";
      s->Send("1", "log", Event("TASK_STARTED", id).dump());
      s->Send("2", "log", Event("TASK_LOG", id, {{"payload", {{"line", "working"}}}}).dump());
      streamed_ = true;
      s->Send("3", "log", Event(end, id).dump());
      s->Send("3", "eos", "{}");
      s->Close();
    });
    server_ = std::make_unique<http::Server>(http::ServerConfig{}, r);
    EXPECT_TRUE(server_->Start().ok());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

 private:
  bool published_;
  std::atomic<bool> streamed_{false};
  std::unique_ptr<http::Server> server_;
};

struct RunOutput {
  int code;
  std::string out, err;
};

RunOutput RunCli(std::vector<std::string> args, Environment env) {
  std::ostringstream out, err;
  args.insert(args.begin(), "flowmesh");
  int code = Run(args, env, Streams{out, err, false});
  return {code, out.str(), err.str()};
}

Environment HomeEnv(const testing::TempDir& home) {
  Environment env;
  env.vars["FLOWMESH_HOME"] = home.path();
  return env;
}

const char* kEchoWorkflow = R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: one}
spec:
  taskType: echo
  data: {type: list, items: ["hi"]}
)";

TEST(CompatRunTest, ValidateLocallyWithoutAServer) {
  testing::TempDir home;
  ClosedPort closed;
  std::string good = home / "good.yaml";
  std::string bad = home / "bad.yaml";
  { std::ofstream(good) << kEchoWorkflow; }
  {
    std::ofstream(bad)
        << "apiVersion: flowmesh/v1\nkind: Workflow\nmetadata: {name: x}\nspec:\n  taskType: ech\n";
  }
  auto env = HomeEnv(home);
  auto r = RunCli({"--url", closed.url(), "workflow", "validate", good}, env);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("valid, 1 task(s)"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("checked locally only"), std::string::npos) << r.err;
  r = RunCli({"--url", closed.url(), "workflow", "validate", bad}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(bad + ":5:13: spec.taskType: "), std::string::npos) << r.err;
  r = RunCli({"--url", closed.url(), "--json", "workflow", "validate", "--local", bad}, env);
  EXPECT_EQ(r.code, 1);
  auto doc = json::parse(r.out);
  EXPECT_FALSE(doc["ok"].get<bool>());
  EXPECT_EQ(doc["checked"], "local");
  EXPECT_EQ(doc["errors"][0]["line"], 5);
  // --strict needs the server.
  r = RunCli({"--url", closed.url(), "workflow", "validate", "--strict", good}, env);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("cannot reach"), std::string::npos) << r.err;
}

TEST(CompatRunTest, ValidateStrictRequiresAWorkerForEachTaskType) {
  for (bool published : {false, true}) {
    FakeApi api(published);
    testing::TempDir home;
    std::string good = home / "good.yaml";
    { std::ofstream(good) << kEchoWorkflow; }
    auto env = HomeEnv(home);
    auto r = RunCli({"--url", api.url(), "workflow", "validate", good}, env);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("warning: no registered worker offers task type 'echo'"),
              std::string::npos)
        << r.err;
    r = RunCli({"--url", api.url(), "workflow", "validate", "--strict", good}, env);
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_NE(r.err.find(good + ": no registered worker offers task type 'echo'"),
              std::string::npos)
        << r.err;
    r = RunCli({"--url", api.url(), "--json", "workflow", "validate", good}, env);
    auto doc = json::parse(r.out);
    EXPECT_EQ(doc["checked"], "local+server");
    EXPECT_EQ(doc["warnings"].size(), 1u);
  }
}

TEST(CompatRunTest, TaskWatchExitCodesAndStopReportsTheServer) {
  FakeApi api(false);
  testing::TempDir home;
  auto env = HomeEnv(home);
  auto r = RunCli({"--url", api.url(), "task", "watch", "tsk-ok"}, env);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("[tsk-ok] status: RUNNING"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("working"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("task tsk-ok DONE"), std::string::npos) << r.out;
  r = RunCli({"--url", api.url(), "task", "watch", "tsk-fail"}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("FAILED: boom"), std::string::npos) << r.out;
  r = RunCli({"--url", api.url(), "--json", "task", "watch", "tsk-cancel"}, env);
  EXPECT_EQ(r.code, 130);
  std::string last = r.out.substr(r.out.rfind('{'));
  EXPECT_EQ(json::parse(last)["status"], "CANCELLED");
  r = RunCli({"--url", api.url(), "task", "stop", "tsk-ok"}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("only ssh and serve tasks can be stopped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("HTTP 501"), std::string::npos) << r.err;
}

TEST(CompatRunTest, WorkflowLogsDownloadWritesOneFilePerTask) {
  FakeApi api(true);
  testing::TempDir home;
  std::string dir = home / "logs";
  auto r = RunCli({"--url", api.url(), "workflow", "logs", "download", "wfl-1", "-o", dir},
                  HomeEnv(home));
  ASSERT_EQ(r.code, 0) << r.err;
  for (std::string t : {"tsk-a", "tsk-b"}) {
    std::ifstream in(dir + "/" + t + "-logs.jsonl");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text, "{\"line\":\"" + t + "\"}\n");
    EXPECT_NE(r.out.find("Downloaded logs to " + dir + "/" + t + "-logs.jsonl"), std::string::npos);
  }
  std::string file = home / "one.jsonl";
  r = RunCli({"--url", api.url(), "task", "logs", "download", "tsk-a", "-o", file}, HomeEnv(home));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(file));
}

TEST(CompatRunTest, ReadersAcceptOldAndNewShapes) {
  for (bool published : {false, true}) {
    FakeApi api(published);
    testing::TempDir home;
    auto env = HomeEnv(home);
    auto r = RunCli({"--url", api.url(), "workflow", "list"}, env);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(wfl-1\s+DONE\s+2\s+2\s+0\s+2023-11-1)")))
        << r.out;
    r = RunCli({"--url", api.url(), "--json", "info"}, env);
    ASSERT_EQ(r.code, 0) << r.err;
    auto doc = json::parse(r.out);
    EXPECT_TRUE(doc["server_healthy"].get<bool>());
    EXPECT_EQ(doc["server_version"], "9.9.9");
    EXPECT_EQ(doc["client_version"], CliVersion());
    r = RunCli({"--url", api.url(), "node", "worker", "list"}, env);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("cpu-1"), std::string::npos) << r.out;
    r = RunCli({"--url", api.url(), "worker", "list"}, env);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("wkr-1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("inference"), std::string::npos) << r.out;
  }
}

TEST(CompatRunTest, NodeListAndSystemMetrics) {
  FakeApi api(true);
  testing::TempDir home;
  auto env = HomeEnv(home);
  auto r = RunCli({"--url", api.url(), "node", "list"}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("nod-1"), std::string::npos) << r.out;
  r = RunCli({"--url", api.url(), "system", "metrics"}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("tasks.running"), std::string::npos) << r.out;
  r = RunCli({"--url", api.url(), "--json", "system", "metrics"}, env);
  EXPECT_EQ(json::parse(r.out)["workers"], 1);
  r = RunCli({"--url", api.url(), "system", "version"}, env);
  EXPECT_NE(r.out.find("9.9.9"), std::string::npos);
}

TEST(CompatRunTest, ConfigSourcesShowApiKeyAndPublishedTomlFile) {
  testing::TempDir home;
  auto env = HomeEnv(home);
  // The published CLI's file is read when config.json is absent.
  {
    std::ofstream(home / "config.toml")
        << "base_url = \"http://toml:1\"\napi_key = \"abcdefghijkl\"\n";
  }
  auto r = RunCli({"--json", "config"}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  auto doc = json::parse(r.out);
  EXPECT_EQ(doc["base_url"], "http://toml:1");
  EXPECT_EQ(doc["api_key"], "abcd****ijkl");
  EXPECT_EQ(doc["url_source"], "config");
  EXPECT_EQ(doc["config_file"], home / "config.toml");
  r = RunCli({"--json", "config", "--show-api-key"}, env);
  EXPECT_EQ(json::parse(r.out)["api_key"], "abcdefghijkl");
  r = RunCli({"config", "--source", "env"}, env);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("FLOWMESH_BASE_URL"), std::string::npos);
  env.vars["FLOWMESH_BASE_URL"] = "http://env:2";
  env.vars["FLOWMESH_API_KEY"] = "envkey-123456";
  r = RunCli({"--json", "config", "--source", "env", "--show-api-key"}, env);
  doc = json::parse(r.out);
  EXPECT_EQ(doc["base_url"], "http://env:2");
  EXPECT_EQ(doc["api_key"], "envkey-123456");
  r = RunCli({"--json", "config"}, env);
  doc = json::parse(r.out);
  EXPECT_EQ(doc["url"], "http://env:2");
  EXPECT_EQ(doc["url_source"], "env");
  EXPECT_EQ(doc["api_key_source"], "env");
  r = RunCli({"--json", "config", "--source", "file"}, env);
  EXPECT_EQ(json::parse(r.out)["base_url"], "http://toml:1");
  // init writes config.json, which then wins; deinit removes both files.
  ASSERT_EQ(RunCli({"init", "http://json:3"}, HomeEnv(home)).code, 0);
  r = RunCli({"--json", "config", "--source", "file"}, HomeEnv(home));
  EXPECT_EQ(json::parse(r.out)["base_url"], "http://json:3");
  r = RunCli({"deinit"}, HomeEnv(home));
  EXPECT_EQ(r.code, 0);
  EXPECT_FALSE(std::filesystem::exists(home / "config.json"));
  EXPECT_FALSE(std::filesystem::exists(home / "config.toml"));
  r = RunCli({"config", "--source", "file"}, HomeEnv(home));
  EXPECT_EQ(r.code, 1);
}

TEST(CompatRunTest, InitForceAndTomlPathAndVersion) {
  testing::TempDir home;
  auto env = HomeEnv(home);
  ASSERT_EQ(RunCli({"--api-key", "k-123456789", "init", "http://a:1"}, env).code, 0);
  ASSERT_EQ(RunCli({"init", "http://b:2", "--force"}, env).code, 0);
  std::ifstream in(home / "config.json");
  auto saved = json::parse(in);
  EXPECT_EQ(saved["url"], "http://b:2");
  EXPECT_EQ(saved["api_key"], "");
  std::string toml = home / "elsewhere/config.toml";
  ASSERT_EQ(RunCli({"--api-key", "tk-1", "init", "--config", toml}, env).code, 0);
  std::ifstream tin(toml);
  std::string text((std::istreambuf_iterator<char>(tin)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "base_url = \"http://localhost:8000\"\napi_key = \"tk-1\"\n");
  auto r = RunCli({"--version"}, env);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, std::string("flowmesh ") + CliVersion() + "\n");
}

}  // namespace
}  // namespace flowmesh::cli
