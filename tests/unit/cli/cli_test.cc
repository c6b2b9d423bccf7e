#include "cli/cli.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/temp_dir.h"
#include "unit/cli/cli_test_support.h"

namespace flowmesh::cli {
namespace {

using test_support::Parse;
using test_support::Parsed;

TEST(ParseTest, StackVerbs) {
  auto p = Parse({"stack", "up", "--port", "9001", "--redis-port", "7001"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "stack up");
  EXPECT_EQ(p.inv.port, 9001);
  EXPECT_EQ(p.inv.redis_port, 7001);
  EXPECT_EQ(Parse({"stack", "down"}).command, "stack down");
  EXPECT_EQ(Parse({"stack", "status", "--json"}).inv.json, true);
  p = Parse({"stack", "logs", "redis", "-n", "5", "-f"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "stack logs");
  EXPECT_EQ(p.inv.log_name, "redis");
  EXPECT_EQ(p.inv.lines, 5);
  EXPECT_TRUE(p.inv.follow);
  EXPECT_EQ(Parse({"stack", "logs"}).inv.log_name, "server");
  EXPECT_FALSE(Parse({"stack", "logs", "kernel"}).ok);
  EXPECT_FALSE(Parse({"stack"}).ok);
}

TEST(ParseTest, StackWorkerVerbs) {
  auto p = Parse({"stack", "worker", "up", "cpu", "3", "--cost", "0.5", "--tags", "a,b"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "stack worker up cpu");
  EXPECT_EQ(p.inv.count, 3);
  EXPECT_DOUBLE_EQ(p.inv.cost_per_hour, 0.5);
  EXPECT_EQ(p.inv.tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(Parse({"stack", "worker", "up", "cpu"}).ok);
  EXPECT_FALSE(Parse({"stack", "worker", "up", "cpu", "0"}).ok);
  p = Parse({"stack", "worker", "up", "gpu", "--targets", "0,1"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "stack worker up gpu");
  EXPECT_EQ(p.inv.targets, "0,1");
  EXPECT_FALSE(Parse({"stack", "worker", "up", "gpu"}).ok);
  EXPECT_EQ(Parse({"stack", "worker", "list"}).command, "stack worker list");
  for (std::string verb : {"start", "stop", "down"}) {
    p = Parse({"stack", "worker", verb, "cpu-1", "cpu-2"});
    ASSERT_TRUE(p.ok) << verb;
    EXPECT_EQ(p.command, "stack worker " + verb);
    EXPECT_EQ(p.inv.names, (std::vector<std::string>{"cpu-1", "cpu-2"}));
    EXPECT_FALSE(Parse({"stack", "worker", verb}).ok);
  }
  EXPECT_EQ(Parse({"stack", "worker", "down", "all"}).inv.names,
            (std::vector<std::string>{"all"}));
}

TEST(ParseTest, WorkflowVerbs) {
  auto p = Parse({"workflow", "submit", "wf.json", "--format", "n8n"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "workflow submit");
  EXPECT_EQ(p.inv.names, (std::vector<std::string>{"wf.json"}));
  EXPECT_EQ(p.inv.format, "n8n");
  EXPECT_EQ(Parse({"workflow", "submit", "wf.yaml"}).inv.format, "native");
  EXPECT_FALSE(Parse({"workflow", "submit", "wf.yaml", "--format", "xml"}).ok);
  EXPECT_FALSE(Parse({"workflow", "submit"}).ok);
  EXPECT_EQ(Parse({"workflow", "validate", "wf.yaml"}).command, "workflow validate");
  EXPECT_EQ(Parse({"workflow", "list", "--status", "DONE"}).inv.statuses,
            (std::vector<std::string>{"DONE"}));
  for (std::string verb : {"info", "watch", "cancel"}) {
    p = Parse({"workflow", verb, "wfl-1"});
    ASSERT_TRUE(p.ok) << verb;
    EXPECT_EQ(p.command, "workflow " + verb);
    EXPECT_EQ(p.inv.names.at(0), "wfl-1");
  }
  EXPECT_TRUE(Parse({"workflow", "watch", "wfl-1", "--results"}).inv.results);
  p = Parse({"workflow", "logs", "show", "wfl-1", "--limit", "10", "--after", "c5"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "workflow logs show");
  EXPECT_EQ(p.inv.limit, 10);
  EXPECT_EQ(p.inv.after, "c5");
  EXPECT_FALSE(Parse({"workflow", "logs", "show", "wfl-1", "--limit", "0"}).ok);
  EXPECT_EQ(Parse({"workflow", "logs", "stream", "wfl-1"}).command, "workflow logs stream");
}

TEST(ParseTest, TaskResultWorkerAndLocalVerbs) {
  auto p = Parse({"task", "list", "--workflow", "wfl-1", "--status", "FAILED"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "task list");
  EXPECT_EQ(p.inv.workflow_filter, "wfl-1");
  EXPECT_EQ(p.inv.statuses, (std::vector<std::string>{"FAILED"}));
  EXPECT_EQ(Parse({"task", "info", "tsk-1"}).command, "task info");
  EXPECT_EQ(Parse({"task", "logs", "tsk-1"}).command, "task logs");
  EXPECT_EQ(Parse({"result", "fetch", "tsk-1"}).command, "result fetch");
  p = Parse({"result", "download", "tsk-1", "--include", "all", "-o", "out.tgz"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.inv.include, "all");
  EXPECT_EQ(p.inv.output, "out.tgz");
  EXPECT_EQ(Parse({"worker", "list"}).command, "worker list");
  for (std::string verb : {"info", "cordon", "uncordon"}) {
    EXPECT_EQ(Parse({"worker", verb, "wkr-1"}).command, "worker " + verb);
  }
  p = Parse({"init", "http://h:8000", "--api-key", "k1"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.command, "init");
  EXPECT_EQ(p.inv.api_key, "k1");
  EXPECT_EQ(Parse({"config"}).command, "config");
  EXPECT_EQ(Parse({"health"}).command, "health");
  EXPECT_FALSE(Parse({"bogus"}).ok);
}

TEST(ParseTest, GlobalOptionsBeforeOrAfterTheVerb) {
  auto p = Parse({"--url", "http://a:1", "--json", "workflow", "list"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.inv.url, "http://a:1");
  EXPECT_TRUE(p.inv.json);
  p = Parse({"workflow", "info", "wfl-1", "--url", "http://b:2", "--api-key", "k", "--json"});
  ASSERT_TRUE(p.ok);
  EXPECT_EQ(p.inv.url, "http://b:2");
  EXPECT_EQ(p.inv.api_key, "k");
  EXPECT_TRUE(p.inv.json);
}

// A port with a bound but non-listening socket: connections are refused, and no other
// test can take the port while we hold it.
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
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

struct RunOutput {
  int code;
  std::string out;
  std::string err;
};

RunOutput RunCli(std::vector<std::string> args, const Environment& env) {
  std::ostringstream out, err;
  args.insert(args.begin(), "flowmesh");
  int code = Run(args, env, Streams{out, err, false});
  return {code, out.str(), err.str()};
}

TEST(RunTest, ConnectionRefusedNamesTheUrlAndExits2) {
  testing::TempDir home;
  ClosedPort closed;
  std::string url = "http://127.0.0.1:" + std::to_string(closed.port());
  Environment env;
  env.vars["FLOWMESH_HOME"] = home.path();
  for (auto args : std::vector<std::vector<std::string>>{
           {"--url", url, "workflow", "list"},
           {"--url", url, "health"},
           {"--url", url, "workflow", "watch", "wfl-1"}}) {
    auto r = RunCli(args, env);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("cannot reach the FlowMesh server at " + url), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("flowmesh stack up"), std::string::npos);
  }
  // The environment variable is used when no flag is given.
  env.vars["FLOWMESH_URL"] = url;
  auto r = RunCli({"task", "list"}, env);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(url), std::string::npos);
}

TEST(RunTest, InitWritesConfigAndConfigShowsItMasked) {
  testing::TempDir home;
  Environment env;
  env.vars["FLOWMESH_HOME"] = home.path();
  auto r = RunCli({"init", "remote.example:8000", "--api-key", "fm_supersecretvalue"}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  struct stat st {};
  ASSERT_EQ(::stat((home / "config.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  r = RunCli({"config", "--json"}, env);
  ASSERT_EQ(r.code, 0) << r.err;
  auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["url"], "http://remote.example:8000");
  EXPECT_EQ(doc["url_source"], "config");
  EXPECT_EQ(r.out.find("supersecret"), std::string::npos);
  // Re-running init without a key keeps the stored key.
  ASSERT_EQ(RunCli({"init", "http://other:1"}, env).code, 0);
  std::ifstream in(home / "config.json");
  auto saved = nlohmann::json::parse(in);
  EXPECT_EQ(saved["url"], "http://other:1");
  EXPECT_EQ(saved["api_key"], "fm_supersecretvalue");
}

TEST(RunTest, UsageErrorsExit2AndHelpExits0) {
  Environment env;
  testing::TempDir home;
  env.vars["FLOWMESH_HOME"] = home.path();
  EXPECT_EQ(RunCli({"workflow"}, env).code, 2);
  EXPECT_EQ(RunCli({"--help"}, env).code, 0);
}

TEST(RunTest, StackLogsPrintsTheTailAndStatusReportsStopped) {
  testing::TempDir home;
  Environment env;
  env.vars["FLOWMESH_HOME"] = home.path();
  auto missing = RunCli({"stack", "logs"}, env);
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("server.log"), std::string::npos);
  ::mkdir((home / "logs").c_str(), 0755);
  {
    std::ofstream out(home / "logs/redis.log");
    out << "one\ntwo\nthree\n";
  }
  auto r = RunCli({"stack", "logs", "redis", "-n", "2"}, env);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "two\nthree\n");
  auto st = RunCli({"stack", "status", "--json"}, env);
  EXPECT_EQ(st.code, 1);
  auto doc = nlohmann::json::parse(st.out);
  EXPECT_FALSE(doc["server"]["running"].get<bool>());
  EXPECT_FALSE(doc["healthy"].get<bool>());
  // Nothing runs: down succeeds and says so.
  auto down = RunCli({"stack", "down"}, env);
  EXPECT_EQ(down.code, 0) << down.err;
  EXPECT_NE(down.out.find("not running"), std::string::npos);
}

}  // namespace
}  // namespace flowmesh::cli
