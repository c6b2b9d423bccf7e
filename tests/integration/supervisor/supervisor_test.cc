// A Supervisor in-process on an InProcessBus, a fake root server on http::Server, and
// real flowmesh-worker processes started through bus commands.
#include "supervisor/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "bus/bus.h"
#include "common/hash.h"
#include "http/http.h"
#include "support/temp_dir.h"

namespace flowmesh::supervisor {
namespace {

using json = nlohmann::json;
constexpr auto kWait = std::chrono::seconds(30);

// Answers /nodes/register and /results like the server and records what it got.
class FakeRoot {
 public:
  FakeRoot() {
    auto router = std::make_shared<http::Router>();
    router->Add("POST", "/api/v1/nodes/register", [this](http::Request& r) {
      std::lock_guard<std::mutex> lock(mu_);
      registrations_.push_back(json::parse(r.body));
      return http::Response::Json(201, json{{"node_id", "nod-test"}}.dump());
    });
    router->Add("POST", "/api/v1/results", [this](http::Request& r) {
      json body = json::parse(r.body);
      std::string digest = Sha256Hex(body["result"].dump());
      std::lock_guard<std::mutex> lock(mu_);
      results_.push_back(body);
      return http::Response::Json(200, json{{"task_id", body["task_id"]}, {"digest", digest}}.dump());
    });
    server_ = std::make_unique<http::Server>(http::ServerConfig{}, router);
  }
  Status Start() { return server_->Start(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  std::vector<json> results() {
    std::lock_guard<std::mutex> lock(mu_);
    return results_;
  }
  std::vector<json> registrations() {
    std::lock_guard<std::mutex> lock(mu_);
    return registrations_;
  }

 private:
  std::mutex mu_;
  std::vector<json> registrations_;
  std::vector<json> results_;
  std::unique_ptr<http::Server> server_;
};

// Reads fm:events (group "server") on a thread; tests wait for matching messages.
class EventWatcher {
 public:
  explicit EventWatcher(std::shared_ptr<bus::Bus> bus) : bus_(std::move(bus)) {
    EXPECT_TRUE(bus_->EnsureGroup(bus::kEventsStream, "server").ok());
    thread_ = std::thread([this] {
      while (!stop_) {
        auto batch = bus_->ReadGroup(bus::kEventsStream, "server", "server", 100,
                                     std::chrono::milliseconds(100));
        if (!batch.ok()) continue;
        std::vector<std::string> ids;
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& m : *batch) {
          events_.push_back(json::parse(m.payload));
          ids.push_back(m.id);
        }
        if (!ids.empty()) (void)bus_->Ack(bus::kEventsStream, "server", ids);
        cv_.notify_all();
      }
    });
  }
  ~EventWatcher() {
    stop_ = true;
    thread_.join();
  }
  // The first event (in order) satisfying `pred`; fails the test after kWait.
  json WaitFor(const std::function<bool(const json&)>& pred, const std::string& what) {
    std::unique_lock<std::mutex> lock(mu_);
    json found;
    bool ok = cv_.wait_for(lock, kWait, [&] {
      for (const auto& e : events_) {
        if (pred(e)) {
          found = e;
          return true;
        }
      }
      return false;
    });
    EXPECT_TRUE(ok) << "timed out waiting for " << what << "; events: " << Dump();
    return found;
  }
  json TaskEvent(const std::string& task_id, const std::string& type) {
    return WaitFor(
        [&](const json& e) {
          return e["kind"] == "task_event" && e["task_id"] == task_id && e["type"] == type;
        },
        task_id + " " + type);
  }
  json CommandResult(const std::string& command_id) {
    return WaitFor(
        [&](const json& e) { return e["kind"] == "command_result" && e["command_id"] == command_id; },
        "command_result " + command_id);
  }
  json StackWorker(const std::string& name, const std::function<bool(const json&)>& pred,
                   const std::string& what) {
    json snapshot = WaitFor(
        [&](const json& e) {
          if (e["kind"] != "stack_workers") return false;
          for (const auto& w : e["workers"]) {
            if (w["name"] == name && pred(w)) return true;
          }
          return false;
        },
        "stack_workers: " + name + " " + what);
    for (const auto& w : snapshot["workers"]) {
      if (w["name"] == name) return w;
    }
    return json();
  }

 private:
  std::string Dump() {
    std::string out;
    for (const auto& e : events_) out += e.dump() + "\n";
    return out;
  }
  std::shared_ptr<bus::Bus> bus_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json> events_;
  std::thread thread_;
};

bool Alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

class SupervisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(root_.Start().ok());
    config_.root_url = root_.url();
    config_.node_alias = "test-node";
    config_.state_dir = dir_.path();
    config_.worker_binary = std::string(FLOWMESH_BIN_DIR) + "/flowmesh-worker";
    config_.heartbeat_interval = std::chrono::milliseconds(200);
    config_.worker_stop_grace = std::chrono::milliseconds(3000);
    supervisor_ = std::make_unique<Supervisor>(config_, bus_);
    ASSERT_TRUE(supervisor_->Start().ok());
    ASSERT_EQ(supervisor_->node_id(), "nod-test");
  }
  void Send(const json& message) {
    ASSERT_TRUE(bus_->Append(bus::NodeStream("nod-test"), message.dump()).ok());
  }
  // Starts a worker named `name` and returns its worker_up event.
  json StartWorker(const std::string& name) {
    Send({{"kind", "start_worker"},
          {"command_id", "cmd-start-" + name},
          {"name", name},
          {"worker_config", {{"worker_type", "cpu"}, {"worker_alias", name + "-alias"},
                             {"worker_cost_per_hour", 0.5}, {"tags", {"t1"}}, {"slots", 2}}}});
    EXPECT_EQ(events_.CommandResult("cmd-start-" + name)["ok"], true);
    return events_.WaitFor(
        [&](const json& e) { return e["kind"] == "worker_up" && e["info"]["name"] == name; },
        "worker_up " + name);
  }
  void Dispatch(const std::string& worker_id, const std::string& task_id, json spec,
                double timeout_s = 0) {
    Send({{"kind", "dispatch"}, {"worker_id", worker_id}, {"task_id", task_id},
          {"workflow_id", "wfl-1"}, {"attempt", 1}, {"task_type", "echo"},
          {"spec", std::move(spec)}, {"timeout_s", timeout_s}});
  }

  testing::TempDir dir_;
  FakeRoot root_;
  std::shared_ptr<bus::Bus> bus_ = bus::MakeInProcessBus();
  EventWatcher events_{bus_};
  SupervisorConfig config_;
  std::unique_ptr<Supervisor> supervisor_;
};

TEST_F(SupervisorTest, RunsEchoTasksAndRelaysEvents) {
  json up = StartWorker("cpu-1");
  std::string worker_id = up["worker_id"];
  EXPECT_EQ(up["node_id"], "nod-test");
  EXPECT_EQ(up["info"]["alias"], "cpu-1-alias");
  EXPECT_EQ(up["info"]["slots"], 2);
  EXPECT_EQ(up["info"]["tags"], json({"t1"}));
  EXPECT_NE(std::find(up["info"]["task_types"].begin(), up["info"]["task_types"].end(), "echo"),
            up["info"]["task_types"].end());
  json running = events_.StackWorker(
      "cpu-1", [](const json& w) { return w["status"] == "RUNNING"; }, "RUNNING");
  EXPECT_EQ(running["worker_id"], worker_id);
  EXPECT_TRUE(Alive(running["pid"].get<int>()));

  Dispatch(worker_id, "tsk-echo", {{"data", {{"type", "list"}, {"items", {"a", "b"}}}}});
  events_.TaskEvent("tsk-echo", "TASK_STARTED");
  json log = events_.TaskEvent("tsk-echo", "TASK_LOG");
  EXPECT_EQ(log["payload"]["stream"], "stdout");
  json done = events_.TaskEvent("tsk-echo", "TASK_SUCCEEDED");
  json expected_result = json::parse(
      R"({"items":[{"input":"a","output":"a"},{"input":"b","output":"b"}]})");
  // A small result travels inside the event; the server stores it with the DONE transition.
  EXPECT_EQ(done["payload"]["result"], expected_result);
  EXPECT_EQ(done["payload"]["metadata"]["executor"], "echo");
  EXPECT_EQ(done["worker_id"], worker_id);
  EXPECT_TRUE(root_.results().empty());

  // A sleeping echo is cancelled by an interrupt.
  Dispatch(worker_id, "tsk-sleep", {{"echo", {{"sleep_seconds", 120}}}});
  events_.TaskEvent("tsk-sleep", "TASK_STARTED");
  Send({{"kind", "interrupt"}, {"worker_id", worker_id}, {"task_id", "tsk-sleep"}, {"attempt", 1}});
  events_.TaskEvent("tsk-sleep", "TASK_CANCELLED");

  // A timeout fails the attempt, retryably.
  Dispatch(worker_id, "tsk-slow", {{"echo", {{"sleep_seconds", 120}}}}, 0.3);
  json timed_out = events_.TaskEvent("tsk-slow", "TASK_FAILED");
  EXPECT_EQ(timed_out["retryable"], true);
  EXPECT_EQ(timed_out["error"], "timed out after 0.3s");

  // A dispatch to a worker that is not here fails retryably.
  Dispatch("wkr-gone", "tsk-lost", json::object());
  json lost = events_.TaskEvent("tsk-lost", "TASK_FAILED");
  EXPECT_EQ(lost["retryable"], true);
  EXPECT_EQ(lost["error"], "worker wkr-gone is not connected on node test-node");

  // Heartbeats name the connected worker.
  std::mutex hb_mu;
  std::condition_variable hb_cv;
  bool named = false;
  auto sub = bus::SubscribeInProcess(bus_, {bus::kHeartbeatChannel},
                                     [&](const std::string&, const std::string& payload) {
                                       json hb = json::parse(payload);
                                       std::lock_guard<std::mutex> lock(hb_mu);
                                       for (const auto& w : hb["workers"]) {
                                         if (w["worker_id"] == worker_id && hb["node_id"] == "nod-test") named = true;
                                       }
                                       hb_cv.notify_all();
                                     });
  {
    std::unique_lock<std::mutex> lock(hb_mu);
    EXPECT_TRUE(hb_cv.wait_for(lock, kWait, [&] { return named; }));
  }
  sub->Stop();
}

TEST_F(SupervisorTest, RestartsKilledWorkerAndShutdownLeavesNoProcess) {
  json up = StartWorker("cpu-1");
  std::string first_id = up["worker_id"];
  pid_t first_pid = up["info"]["pid"].get<int>();
  ASSERT_TRUE(Alive(first_pid));
  ASSERT_EQ(::kill(first_pid, SIGKILL), 0);

  json down = events_.WaitFor(
      [&](const json& e) { return e["kind"] == "worker_down" && e["worker_id"] == first_id; },
      "worker_down");
  EXPECT_EQ(down["node_id"], "nod-test");
  json again = events_.WaitFor(
      [&](const json& e) {
        return e["kind"] == "worker_up" && e["info"]["name"] == "cpu-1" && e["worker_id"] != first_id;
      },
      "second worker_up");
  pid_t second_pid = again["info"]["pid"].get<int>();
  EXPECT_NE(second_pid, first_pid);
  json restarted = events_.StackWorker(
      "cpu-1", [](const json& w) { return w["status"] == "RUNNING" && w["restarts"] == 1; },
      "restarted");
  EXPECT_EQ(restarted["pid"], second_pid);

  Send({{"kind", "shutdown"}, {"command_id", "cmd-shutdown"}});
  EXPECT_EQ(events_.CommandResult("cmd-shutdown")["ok"], true);
  EXPECT_TRUE(supervisor_->shutdown_requested());
  EXPECT_FALSE(Alive(second_pid));
  supervisor_->Stop();
  EXPECT_FALSE(Alive(second_pid));
}

TEST_F(SupervisorTest, StopWorkerThenStopSupervisor) {
  json up = StartWorker("cpu-a");
  pid_t pid_a = up["info"]["pid"].get<int>();
  Send({{"kind", "stop_worker"}, {"command_id", "cmd-stop"}, {"name", "cpu-a"}});
  EXPECT_EQ(events_.CommandResult("cmd-stop")["ok"], true);
  json stopped = events_.StackWorker(
      "cpu-a", [](const json& w) { return w["status"] == "STOPPED"; }, "STOPPED");
  EXPECT_EQ(stopped["exit_code"], 0);  // graceful: the worker exits 0 on Stop
  EXPECT_FALSE(Alive(pid_a));
  events_.WaitFor([&](const json& e) { return e["kind"] == "worker_down" && e["worker_id"] == up["worker_id"]; },
                  "worker_down after stop");

  Send({{"kind", "stop_worker"}, {"command_id", "cmd-stop-unknown"}, {"name", "nope"}});
  EXPECT_EQ(events_.CommandResult("cmd-stop-unknown")["ok"], false);

  json up_b = StartWorker("cpu-b");
  pid_t pid_b = up_b["info"]["pid"].get<int>();
  ASSERT_TRUE(Alive(pid_b));
  supervisor_->Stop();
  EXPECT_FALSE(Alive(pid_b));
}

TEST_F(SupervisorTest, NodeIdPersistsAcrossRestarts) {
  std::ifstream in(dir_ / "node_id");
  std::string saved;
  std::getline(in, saved);
  EXPECT_EQ(saved, "nod-test");
  supervisor_->Stop();
  Supervisor second(config_, bus_);
  ASSERT_TRUE(second.Start().ok());
  auto regs = root_.registrations();
  ASSERT_EQ(regs.size(), 2u);
  EXPECT_FALSE(regs[0].contains("node_id"));
  EXPECT_EQ(regs[1]["node_id"], "nod-test");
  EXPECT_EQ(regs[1]["alias"], "test-node");
  EXPECT_GT(regs[1]["cpu_cores"].get<int>(), 0);
  second.Stop();
}

}  // namespace
}  // namespace flowmesh::supervisor
