// The verbs against an in-process fake of the REST API (real http::Server on port 0).
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.h"
#include "http/http.h"
#include "support/temp_dir.h"
#include "unit/cli/cli_test_support.h"

namespace flowmesh::cli {
namespace {

using nlohmann::json;

using test_support::Event;

class FakeApi {
 public:
  // drop_after > 0: the first stream connection ends after that many events, without eos.
  explicit FakeApi(std::string final_status, int drop_after = 0)
      : final_status_(std::move(final_status)), drop_after_(drop_after) {
    auto router = std::make_shared<http::Router>();
    router->Add("GET", "/healthz", [](http::Request&) {
      return http::Response::Json(200, R"({"status":"ok"})");
    });
    router->Add("POST", "/api/v1/workflows", [this](http::Request& r) {
      last_format_ = r.Header("Workflow-Format");
      last_auth_ = r.Header("Authorization");
      if (r.body.find("bad") != std::string::npos) {
        return http::Response::Json(422, R"({"detail":"invalid workflow","errors":[
          {"path":"spec.taskType","line":4,"column":13,"message":"unknown task type 'ech'"}]})");
      }
      return http::Response::Json(201, R"({"ok":true,"workflow_id":"wfl-1","count":2,"tasks":[
          {"task_id":"tsk-a","status":"PENDING","depends_on":[]},
          {"task_id":"tsk-b","status":"PENDING","depends_on":["tsk-a"]}]})");
    });
    router->Add("GET", "/api/v1/workflows/{id}", [this](http::Request& r) {
      if (r.params["id"] != "wfl-1") {
        return http::Response::Json(404, R"({"detail":"workflow not found"})");
      }
      json w = {{"workflow_id", "wfl-1"}, {"task_ids", {"tsk-a", "tsk-b"}},
                {"status", streamed_ ? final_status_ : "PENDING"}};
      return http::Response::Json(200, w.dump());
    });
    router->Add("GET", "/api/v1/tasks", [](http::Request& r) {
      json tasks = json::array({{{"task_id", "tsk-a"}, {"graph_node_name", "wf:a"}, {"status", "PENDING"}},
                                {{"task_id", "tsk-b"}, {"graph_node_name", "wf:b"}, {"status", "PENDING"}}});
      return http::Response::Json(200, tasks.dump());
    });
    router->Add("GET", "/api/v1/results/{id}", [](http::Request& r) {
      return http::Response::Json(200, json({{"items", {{{"output", "out-" + r.params["id"]}}}}}).dump());
    });
    router->AddSse("/api/v1/workflows/{id}/logs/stream",
                   [this](http::Request& r, std::shared_ptr<http::SseStream> s) {
      std::vector<json> events = {Event("TASK_DISPATCHED", "tsk-a", {{"worker_id", "wkr-1"}}),
                                  Event("TASK_LOG", "tsk-a", {{"payload", {{"line", "hello"}}}}),
                                  Event("TASK_SUCCEEDED", "tsk-a"),
                                  Event("TASK_SUCCEEDED", "tsk-b")};
      if (final_status_ == "FAILED") events.back() = Event("TASK_FAILED", "tsk-b", {{"error", "boom"}});
      int i = 0;
      std::string resume = r.Header("Last-Event-ID");
      {
        std::lock_guard<std::mutex> lock(mu_);
        resume_ids_.push_back(resume);
      }
      if (!resume.empty()) i = std::stoi(resume);
      bool drop = drop_after_ > 0 && resume.empty();
      for (size_t k = static_cast<size_t>(i); k < events.size(); ++k) {
        s->Send(std::to_string(++i), "log", events[k].dump());
        if (drop && i == drop_after_) {
          s->Close();
          return;
        }
      }
      streamed_ = true;
      s->Send(std::to_string(++i), "eos", "{}");
      s->Close();
    });
    server_ = std::make_unique<http::Server>(http::ServerConfig{}, router);
    EXPECT_TRUE(server_->Start().ok());
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::vector<std::string> resume_ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return resume_ids_;
  }
  std::string last_format_, last_auth_;

 private:
  std::string final_status_;
  int drop_after_;
  std::mutex mu_;
  std::vector<std::string> resume_ids_;
  std::atomic<bool> streamed_{false};
  std::unique_ptr<http::Server> server_;
};

struct RunOutput {
  int code;
  std::string out, err;
};

RunOutput RunCli(std::vector<std::string> args, const std::string& home) {
  Environment env;
  env.vars["FLOWMESH_HOME"] = home;
  std::ostringstream out, err;
  args.insert(args.begin(), "flowmesh");
  int code = Run(args, env, Streams{out, err, false});
  return {code, out.str(), err.str()};
}

TEST(ApiTest, SubmitPrintsIdAndSendsFormatAndKey) {
  FakeApi api("DONE");
  testing::TempDir home;
  { std::ofstream(home / "wf.yaml") << "apiVersion: flowmesh/v1\n"; }
  auto r = RunCli({"--url", api.url(), "--api-key", "k1", "workflow", "submit", home / "wf.yaml"},
                  home.path());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("workflow_id: wfl-1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tsk-b"), std::string::npos);
  EXPECT_EQ(api.last_format_, "native");
  EXPECT_EQ(api.last_auth_, "Bearer k1");
}

TEST(ApiTest, SubmitOf422PrintsLocatedErrorsAndExits1) {
  FakeApi api("DONE");
  testing::TempDir home;
  std::string file = home / "bad.yaml";
  { std::ofstream(file) << "bad\n"; }
  auto r = RunCli({"--url", api.url(), "workflow", "submit", file}, home.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(file + ":4:13: spec.taskType: unknown task type 'ech'"), std::string::npos)
      << r.err;
}

TEST(ApiTest, HttpErrorsPrintDetailAndCode) {
  FakeApi api("DONE");
  testing::TempDir home;
  auto r = RunCli({"--url", api.url(), "workflow", "info", "wfl-nope"}, home.path());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("error: workflow not found (HTTP 404)"), std::string::npos) << r.err;
}

TEST(ApiTest, WatchFollowsToDoneAndPrintsResults) {
  FakeApi api("DONE");
  testing::TempDir home;
  auto r = RunCli({"--url", api.url(), "workflow", "watch", "wfl-1", "--results"}, home.path());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("1/2 done  wf:a (tsk-a) DONE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2/2 done  wf:b (tsk-b) DONE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("out-tsk-b"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("workflow wfl-1 DONE"), std::string::npos) << r.out;
}

TEST(ApiTest, WatchExits1OnFailureAndJsonPrintsEventLines) {
  FakeApi api("FAILED");
  testing::TempDir home;
  auto r = RunCli({"--url", api.url(), "--json", "workflow", "watch", "wfl-1"}, home.path());
  EXPECT_EQ(r.code, 1) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  int events = 0;
  json last;
  while (std::getline(lines, line)) {
    last = json::parse(line);  // every line is JSON
    ++events;
  }
  EXPECT_EQ(events, 5);  // four events and the final status
  EXPECT_EQ(last["status"], "FAILED");
}

TEST(ApiTest, WatchResumesADroppedStreamFromTheLastEventId) {
  FakeApi api("DONE", /*drop_after=*/2);
  testing::TempDir home;
  auto r = RunCli({"--url", api.url(), "workflow", "watch", "wfl-1"}, home.path());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(api.resume_ids(), (std::vector<std::string>{"", "2"}));
  EXPECT_NE(r.out.find("2/2 done"), std::string::npos) << r.out;
}

TEST(ApiTest, LogsStreamShowsLogLines) {
  FakeApi api("DONE");
  testing::TempDir home;
  auto r = RunCli({"--url", api.url(), "workflow", "logs", "stream", "wfl-1"}, home.path());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("tsk-a | hello"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TASK_SUCCEEDED tsk-b"), std::string::npos) << r.out;
}

TEST(ApiTest, HealthUsesTheServer) {
  FakeApi api("DONE");
  testing::TempDir home;
  auto r = RunCli({"--url", api.url(), "health"}, home.path());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("healthy"), std::string::npos);
}

}  // namespace
}  // namespace flowmesh::cli
