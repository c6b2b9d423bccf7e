// Scheduler against a real SQLite store and the in-process bus, with a scripted
// supervisor on the other end of the bus.
#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "support/temp_dir.h"

namespace flowmesh::scheduler {
namespace {

using nlohmann::json;

// Plays the supervisor of one node: answers dispatches with events according to a script.
class ScriptedNode {
 public:
  // outcome per task node name and attempt: "ok", "fail", "fatal", "hang".
  using Script = std::function<std::string(const json& dispatch)>;

  ScriptedNode(std::shared_ptr<bus::Bus> bus, std::string node_id, Script script,
               std::function<void()> on_message = nullptr)
      : bus_(std::move(bus)), node_id_(std::move(node_id)), script_(std::move(script)),
        on_message_(std::move(on_message)) {
    consumer_ = std::make_unique<bus::StreamConsumer>(
        bus_, bus::NodeStream(node_id_), "supervisor", node_id_,
        [this](const std::vector<bus::Message>& batch) {
          for (const auto& m : batch) Handle(json::parse(m.payload));
        });
    consumer_->Start();
  }
  ~ScriptedNode() { consumer_->Stop(); }

  void Handle(const json& m) {
    std::string kind = m["kind"];
    {
      std::lock_guard<std::mutex> lock(mu_);
      received_.push_back(m);
    }
    cv_.notify_all();
    if (on_message_) on_message_();
    if (kind != "dispatch") return;
    std::string outcome = script_(m);
    auto ev = [&](const std::string& type, json extra = json::object()) {
      json e = {{"kind", "task_event"}, {"worker_id", m["worker_id"]}, {"task_id", m["task_id"]},
                {"attempt", m["attempt"]}, {"type", type}, {"ts", 1.0}, {"payload", json::object()}};
      e.update(extra);
      ASSERT_TRUE(bus_->Append(bus::kEventsStream, e.dump()).ok());
    };
    ev("TASK_STARTED");
    if (outcome == "ok") ev("TASK_SUCCEEDED", {{"payload", {{"result_digest", "abc"}}}});
    if (outcome == "ok_tokens") {
      ev("TASK_SUCCEEDED",
         {{"payload", {{"result_digest", "abc"},
                       {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 7}}}}}});
    }
    if (outcome == "fail") ev("TASK_FAILED", {{"error", "boom"}, {"retryable", true}});
    if (outcome == "fatal") ev("TASK_FAILED", {{"error", "bad input"}, {"retryable", false}});
  }

  std::vector<json> received() {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }

  // The first message of a kind (null when none came within 10 s).
  json WaitFor(const std::string& kind) {
    auto all = WaitForCount(kind, 1);
    return all.empty() ? json() : all[0];
  }

  // The messages of a kind, once there are at least n (fewer when 10 s pass first).
  std::vector<json> WaitForCount(const std::string& kind, size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    std::vector<json> found;
    cv_.wait_for(lock, std::chrono::seconds(10), [&] {
      found.clear();
      for (const auto& m : received_) {
        if (m["kind"] == kind) found.push_back(m);
      }
      return found.size() >= n;
    });
    return found;
  }

 private:
  std::shared_ptr<bus::Bus> bus_;
  std::string node_id_;
  Script script_;
  std::function<void()> on_message_;
  std::unique_ptr<bus::StreamConsumer> consumer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json> received_;
};

// Time is a ManualTimeSource: nothing times out (worker grace, retry backoff, the
// unplaceable grace) unless a test advances the clock. Waits are on events (committed
// scheduler events, messages to the scripted node) with a deadline; nothing sleeps.
class SchedulerTest : public ::testing::Test {
 protected:
  static constexpr double kGrace = 10;        // worker grace period (s)
  static constexpr double kRetryMax = 0.05;   // longest retry backoff (s)

  void SetUp() override { Open(); }
  void TearDown() override { Close(); }

  void Open() {
    state::StoreConfig sc;
    sc.path = dir_ / "state.db";
    auto store = state::Store::Open(sc);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    if (!bus_) bus_ = bus::MakeInProcessBus();
    SchedulerConfig cfg;
    cfg.time = &clock_;
    cfg.worker_grace_s = kGrace;
    cfg.watchdog_interval_s = 1;
    cfg.retry_backoff_base_s = 0.01;
    cfg.retry_backoff_max_s = kRetryMax;
    cfg.dedup_scope = dedup_scope_;  // scheduling tests run every task; dedup tests opt in
    cfg.unplaceable_grace_s = unplaceable_grace_s_;
    files_ = std::make_unique<cas::BlobStore>(dir_ / "cas");
    ASSERT_TRUE(files_->Init().ok());
    content_ = std::make_unique<cas::ContentStore>(files_.get(), store_.get());
    sched_ = std::make_unique<Scheduler>(cfg, store_.get(), bus_, &hub_, content_.get());
    ASSERT_TRUE(sched_->Recover().ok());
    sched_->Start();
    events_ = std::make_unique<bus::StreamConsumer>(
        bus_, bus::kEventsStream, "server", "server",
        [this](const std::vector<bus::Message>& b) { sched_->ApplyBusMessages(b); });
    events_->Start();
  }

  void Close() {
    if (events_) events_->Stop();
    events_.reset();
    if (sched_) sched_->Stop();
    sched_.reset();
    store_.reset();
  }

  // Wakes WaitUntil: a committed event of a watched workflow, a message to a scripted node.
  void Bump() {
    {
      std::lock_guard<std::mutex> lock(wait_mu_);
      ++changes_;
    }
    wait_cv_.notify_all();
  }

  // Waits until `pred` holds, re-checking it on every change; false at the deadline.
  bool WaitUntil(const std::function<bool()>& pred, double timeout_s = 20) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    for (;;) {
      uint64_t seen;
      {
        std::lock_guard<std::mutex> lock(wait_mu_);
        seen = changes_;
      }
      if (pred()) return true;
      std::unique_lock<std::mutex> lock(wait_mu_);
      if (!wait_cv_.wait_until(lock, deadline, [&] { return changes_ != seen; })) return pred();
    }
  }

  // Moves the clock (after the loop has caught up) and fires what became due.
  void Advance(double seconds) {
    sched_->Tick();
    clock_.Advance(seconds);
    sched_->Tick();
  }

  std::string RegisterNode() {
    std::promise<Result<json>> p;
    sched_->RegisterNode(json{{"alias", "local"}, {"local", true}},
                         [&p](Result<json> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok());
    return (*r)["node_id"];
  }

  // Applies a message of the events stream directly: its effects are durable on return.
  void Apply(const json& m) { sched_->ApplyBusMessages({bus::Message{"", m.dump()}}); }

  void WorkerUp(const std::string& node, const std::string& id, int slots = 2) {
    Apply({{"kind", "worker_up"}, {"node_id", node}, {"worker_id", id},
           {"info", {{"name", id}, {"task_types", {"echo", "data_profiling"}}, {"slots", slots},
                     {"cpu_cores", 2}, {"memory_mb", 1024}}}});
  }

  void Heartbeat(const std::string& node, json worker) {
    sched_->ApplyHeartbeat(json{{"node_id", node}, {"workers", json::array({std::move(worker)})}}.dump());
  }

  // Submits and waits for the workflow to finish (LOG_STREAM_CLOSED committed).
  std::string RunWorkflow(const std::string& yaml, double timeout_s = 10,
                          const std::string& org = state::kDefaultOrg) {
    std::string id = SubmitOnly(yaml, org);
    EXPECT_TRUE(WaitTerminal(id, timeout_s)) << "workflow " << id << " did not finish";
    return id;
  }

  std::string SubmitOnly(const std::string& yaml, const std::string& org = state::kDefaultOrg) {
    std::vector<spec::SpecError> errors;
    auto def = spec::ParseWorkflow(yaml, spec::Format::kNative, &errors);
    EXPECT_TRUE(def.ok()) << (errors.empty() ? "" : errors[0].ToString());
    SubmitRequest req;
    req.def = std::move(def).value();
    req.source_text = yaml;
    req.org_id = org;
    return Submit(std::move(req));
  }

  std::string Submit(SubmitRequest req) {
    std::promise<Result<SubmitReply>> submitted;
    sched_->Submit(std::move(req),
                   [&submitted](Result<SubmitReply> r) { submitted.set_value(std::move(r)); });
    auto reply = submitted.get_future().get();
    EXPECT_TRUE(reply.ok());
    if (!reply.ok()) return "";
    hub_.Subscribe(reply->workflow_id, [this](const state::EventRecord&) { Bump(); });
    return reply->workflow_id;
  }

  std::vector<state::EventRecord> Events(const std::string& workflow_id) {
    auto evs = store_->ReadEvents({workflow_id, "", 0, 0, 10000, false});
    return evs.ok() ? *evs : std::vector<state::EventRecord>{};
  }

  bool Closed(const std::string& id) {
    auto w = store_->GetWorkflow(id);
    if (!w.ok() || (w->status != "DONE" && w->status != "FAILED" && w->status != "CANCELLED")) {
      return false;
    }
    auto evs = Events(id);
    return !evs.empty() && evs.back().type == "LOG_STREAM_CLOSED";
  }

  // Failed attempts that will be retried (TASK_FAILED, retryable).
  size_t RetriesScheduled(const std::string& id) {
    size_t n = 0;
    for (const auto& e : Events(id)) {
      if (e.type == "TASK_FAILED" && json::parse(e.json).value("retryable", false)) ++n;
    }
    return n;
  }

  // Waits for the workflow to close; each retry it schedules meanwhile is let go by
  // advancing the clock past the longest backoff.
  bool WaitTerminal(const std::string& id, double timeout_s = 10) {
    size_t released = 0;
    for (;;) {
      bool closed = false;
      size_t retries = 0;
      bool changed = WaitUntil([&] {
        closed = Closed(id);
        retries = RetriesScheduled(id);
        return closed || retries > released;
      }, timeout_s);
      if (!changed) return false;
      if (closed) return true;
      released = retries;
      Advance(kRetryMax);
    }
  }

  std::map<std::string, state::TaskRecord> Tasks(const std::string& wf) {
    state::TaskFilter f;
    f.workflow_id = wf;
    std::map<std::string, state::TaskRecord> out;
    auto list = store_->ListTasks(f);
    EXPECT_TRUE(list.ok());
    for (auto& t : *list) out[t.graph_node_name] = t;
    return out;
  }

  std::string dedup_scope_ = "off";
  double unplaceable_grace_s_ = 60;
  testing::TempDir dir_;
  ManualTimeSource clock_;
  std::unique_ptr<state::Store> store_;
  std::shared_ptr<bus::Bus> bus_;
  std::unique_ptr<cas::BlobStore> files_;
  std::unique_ptr<cas::ContentStore> content_;
  EventHub hub_;
  std::unique_ptr<Scheduler> sched_;
  std::unique_ptr<bus::StreamConsumer> events_;
  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  uint64_t changes_ = 0;
};

const char* kDiamond = R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: diamond}
spec:
  taskType: echo
  graph:
    nodes:
      - {name: a}
      - {name: b, dependsOn: [a]}
      - {name: c, dependsOn: [a]}
      - {name: d, dependsOn: [b, c]}
)";

TEST_F(SchedulerTest, RunsDiamondInDependencyOrder) {
  std::string node = RegisterNode();
  std::vector<std::string> order;
  std::mutex mu;
  ScriptedNode sup(bus_, node, [&](const json& d) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(d["task_id"]);
    return std::string("ok");
  });
  WorkerUp(node, "wkr-1");
  std::string wf = RunWorkflow(kDiamond);
  EXPECT_EQ(store_->GetWorkflow(wf)->status, "DONE");
  auto tasks = Tasks(wf);
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order.front(), tasks["a"].task_id);
  EXPECT_EQ(order.back(), tasks["d"].task_id);
  for (auto& [name, t] : tasks) {
    EXPECT_EQ(t.status, state::TaskState::kDone) << name;
    EXPECT_EQ(t.attempts, 1);
    EXPECT_EQ(t.result_digest, "abc");
  }
}

TEST_F(SchedulerTest, RetriesOnAnotherWorkerThenSucceeds) {
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json& d) { return d["attempt"] == 1 ? "fail" : "ok"; });
  WorkerUp(node, "wkr-1");
  WorkerUp(node, "wkr-2");
  std::string wf = RunWorkflow(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: one}
spec: {taskType: echo}
)");
  auto t = Tasks(wf)["main"];
  EXPECT_EQ(t.status, state::TaskState::kDone);
  EXPECT_EQ(t.attempts, 2);
  ASSERT_EQ(t.failed_workers.size(), 1u);
  EXPECT_NE(t.assigned_worker, t.failed_workers[0]);
}

TEST_F(SchedulerTest, NonRetryableFailureCascades) {
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json&) { return "fatal"; });
  WorkerUp(node, "wkr-1");
  std::string wf = RunWorkflow(kDiamond);
  EXPECT_EQ(store_->GetWorkflow(wf)->status, "FAILED");
  auto tasks = Tasks(wf);
  EXPECT_EQ(tasks["a"].attempts, 1);
  for (const char* n : {"a", "b", "c", "d"}) EXPECT_EQ(tasks[n].status, state::TaskState::kFailed) << n;
  EXPECT_NE(tasks["d"].error.find("dependency failed"), std::string::npos);
}

TEST_F(SchedulerTest, RetriesExhaustedFailTheTask) {
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json&) { return "fail"; });
  WorkerUp(node, "wkr-1");
  std::string wf = RunWorkflow(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: one}
spec: {taskType: echo}
)");
  auto t = Tasks(wf)["main"];
  EXPECT_EQ(t.status, state::TaskState::kFailed);
  EXPECT_EQ(t.attempts, 3);  // the only worker is reused once every worker has failed it
}

TEST_F(SchedulerTest, CancelInterruptsRunningAndCancelsPending) {
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json&) { return "hang"; });
  WorkerUp(node, "wkr-1");
  std::string wf = SubmitOnly(kDiamond);
  json dispatch = sup.WaitFor("dispatch");
  ASSERT_FALSE(dispatch.is_null());
  std::promise<Result<json>> cancelled;
  sched_->CancelWorkflow(wf, [&](Result<json> r) { cancelled.set_value(r); });
  auto reply = cancelled.get_future().get();
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ((*reply)["cancelling"], 1);
  EXPECT_EQ((*reply)["cancelled"], 3);
  json interrupt = sup.WaitFor("interrupt");
  ASSERT_FALSE(interrupt.is_null());
  EXPECT_EQ(interrupt["task_id"], dispatch["task_id"]);
  Apply({{"kind", "task_event"}, {"worker_id", dispatch["worker_id"]}, {"task_id", dispatch["task_id"]},
         {"attempt", dispatch["attempt"]}, {"type", "TASK_CANCELLED"}});
  ASSERT_TRUE(WaitTerminal(wf));
  EXPECT_EQ(store_->GetWorkflow(wf)->status, "CANCELLED");
}

TEST_F(SchedulerTest, SilentWorkerIsDeclaredDeadAndItsTaskMoves) {
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json& d) {
    return d["worker_id"] == "wkr-silent" ? "hang" : "ok";
  });
  WorkerUp(node, "wkr-silent", 1);
  // Only the silent worker exists when the task is dispatched.
  std::string wf_id = SubmitOnly(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: one}
spec: {taskType: echo}
)");
  ASSERT_FALSE(sup.WaitFor("dispatch").is_null());
  WorkerUp(node, "wkr-ok", 1);
  // A heartbeat keeps wkr-ok alive; wkr-silent never sends one and is declared dead once
  // the grace period has passed.
  Advance(kGrace * 0.6);
  EXPECT_EQ(Tasks(wf_id)["main"].attempts, 1);
  Heartbeat(node, {{"worker_id", "wkr-ok"}});
  Advance(kGrace * 0.6);
  ASSERT_TRUE(WaitTerminal(wf_id));
  auto t = Tasks(wf_id)["main"];
  EXPECT_EQ(t.status, state::TaskState::kDone);
  EXPECT_EQ(t.assigned_worker, "wkr-ok");
  EXPECT_EQ(t.attempts, 2);
}

TEST_F(SchedulerTest, RecoversDispatchedWorkAfterRestart) {
  std::string node = RegisterNode();
  std::string wf;
  json first;
  {
    ScriptedNode sup(bus_, node, [](const json&) { return "hang"; });
    WorkerUp(node, "wkr-1");
    wf = SubmitOnly(kDiamond);
    first = sup.WaitFor("dispatch");
    ASSERT_FALSE(first.is_null());
    Close();
  }
  // A new scheduler on the same database: the worker heartbeats, finishes the attempt it
  // was running when the server went away, and completes the rest.
  Open();
  ScriptedNode sup(bus_, node, [](const json&) { return "ok"; });
  hub_.Subscribe(wf, [this](const state::EventRecord&) { Bump(); });
  Heartbeat(node, {{"worker_id", "wkr-1"}});
  Apply({{"kind", "task_event"}, {"worker_id", first["worker_id"]}, {"task_id", first["task_id"]},
         {"attempt", first["attempt"]}, {"type", "TASK_SUCCEEDED"}, {"payload", {{"result_digest", "abc"}}}});
  ASSERT_TRUE(WaitTerminal(wf));
  EXPECT_EQ(store_->GetWorkflow(wf)->status, "DONE");
  EXPECT_EQ(Tasks(wf)["a"].attempts, 1);  // the in-flight attempt was kept, not re-run
}

TEST_F(SchedulerTest, InlineResultIsStoredWithTheDoneTransition) {
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [this](const json& d) {
    json e = {{"kind", "task_event"}, {"worker_id", d["worker_id"]}, {"task_id", d["task_id"]},
              {"attempt", d["attempt"]}, {"type", "TASK_SUCCEEDED"},
              {"payload", {{"result", {{"items", {{{"input", "x"}, {"output", "x"}}}}}},
                           {"metadata", {{"executor", "echo"}}}}}};
    EXPECT_TRUE(bus_->Append(bus::kEventsStream, e.dump()).ok());
    return std::string("hang");
  });
  WorkerUp(node, "wkr-1");
  std::string wf = RunWorkflow(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: one}
spec: {taskType: echo}
)");
  auto t = Tasks(wf)["main"];
  ASSERT_EQ(t.status, state::TaskState::kDone);
  auto rec = store_->GetResult(t.task_id);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->digest, t.result_digest);
  auto blob = content_->Get(rec->digest);
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(json::parse(*blob)["items"][0]["output"], "x");
  // The event log carries the digest, not the result itself.
  auto events = store_->ReadEvents({"", t.task_id, 0, 0, 100, false});
  ASSERT_TRUE(events.ok());
  bool found = false;
  for (const auto& e : *events) {
    if (e.type != "TASK_SUCCEEDED") continue;
    json j = json::parse(e.json);
    EXPECT_FALSE(j["payload"].contains("result"));
    EXPECT_EQ(j["payload"]["result_digest"], t.result_digest);
    found = true;
  }
  EXPECT_TRUE(found);
}

TEST_F(SchedulerTest, AttemptUnknownToItsWorkerIsDispatchedAgain) {
  std::string node = RegisterNode();
  // Attempt 1 is "lost": the node never answers it. Attempt 2 succeeds.
  ScriptedNode sup(bus_, node, [](const json& d) { return d["attempt"] == 1 ? "hang" : "ok"; });
  WorkerUp(node, "wkr-1");
  std::string wf_id = SubmitOnly(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: one}
spec: {taskType: echo}
)");
  ASSERT_FALSE(sup.WaitFor("dispatch").is_null());
  // The worker's heartbeats list no running attempt: past the grace period, the third
  // such heartbeat in a row reclaims the attempt.
  // (The retry counter moves on the loop, before Advance returns.)
  auto retried = [&] { return sched_->Metrics()["tasks_retried_total"].get<uint64_t>(); };
  int beats = 0;
  while (beats < 20 && retried() == 0) {
    Heartbeat(node, {{"worker_id", "wkr-1"}, {"running", json::array()}});
    ++beats;
    Advance(kGrace * 0.4);
  }
  // Heartbeats at 0, 0.4, 0.8 grace periods do not count; those at 1.2, 1.6 and 2.0 do.
  EXPECT_EQ(beats, 6);
  ASSERT_TRUE(WaitTerminal(wf_id));
  auto t = Tasks(wf_id)["main"];
  EXPECT_EQ(t.status, state::TaskState::kDone);
  EXPECT_EQ(t.attempts, 2);
  EXPECT_NE(t.last_error.find("does not know attempt 1"), std::string::npos) << t.last_error;
}

TEST_F(SchedulerTest, WorkerDeclaredDeadComesBackWhenItHeartbeatsAgain) {
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json&) { return "ok"; });
  WorkerUp(node, "wkr-1");
  Advance(kGrace * 0.9);
  ASSERT_EQ(sched_->WorkersSnapshot()[0]["status"], "IDLE");
  // Silence past the grace period: the watchdog declares it dead.
  Advance(kGrace * 0.2);
  ASSERT_EQ(sched_->WorkersSnapshot()[0]["status"], "DOWN");
  Heartbeat(node, {{"worker_id", "wkr-1"}});
  std::string wf = RunWorkflow(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: one}
spec: {taskType: echo}
)");
  EXPECT_EQ(store_->GetWorkflow(wf)->status, "DONE");
  EXPECT_EQ(sched_->WorkersSnapshot()[0]["status"], "IDLE");
}

// The registry: terminal transitions by type and status, the placement latency histogram,
// tokens from usage, the loop's gauges and the fleet's collectors.
TEST_F(SchedulerTest, MetricsFollowTasksTokensAndTheFleet) {
  std::string node = RegisterNode();
  std::atomic<int> dispatches{0};
  ScriptedNode sup(bus_, node, [&dispatches](const json&) {
    return ++dispatches == 1 ? "fatal" : "ok_tokens";  // one fails, the other reports tokens
  });
  WorkerUp(node, "wkr-1", 4);
  std::string wf = RunWorkflow(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: two}
spec:
  taskType: echo
  graph:
    nodes:
      - {name: good}
      - {name: bad}
)");
  ASSERT_EQ(store_->GetWorkflow(wf)->status, "FAILED");
  metrics::Registry* r = sched_->metrics_registry();
  json m = r->ToJson();
  auto value = [&m](const std::string& name, const json& labels) -> double {
    for (const auto& s : m[name]) {
      bool match = true;
      for (const auto& [k, v] : labels.items()) match = match && s.value(k, "") == v;
      if (match) return s["value"].get<double>();
    }
    return -1;
  };
  EXPECT_EQ(value("flowmesh_tasks_total", {{"task_type", "echo"}, {"status", "DONE"}}), 1);
  EXPECT_EQ(value("flowmesh_tasks_total", {{"task_type", "echo"}, {"status", "FAILED"}}), 1);
  EXPECT_EQ(m["flowmesh_placement_latency_seconds"]["count"], 2);
  EXPECT_GE(m["flowmesh_placement_pass_seconds"]["count"].get<int>(), 1);
  EXPECT_EQ(value("flowmesh_inference_tokens_total", {{"task_type", "echo"}, {"kind", "prompt"}}), 5);
  EXPECT_EQ(
      value("flowmesh_inference_tokens_total", {{"task_type", "echo"}, {"kind", "completion"}}), 7);
  EXPECT_EQ(m["flowmesh_queue_depth"], 0);
  EXPECT_EQ(m["flowmesh_tasks_in_flight"], 0);
  EXPECT_EQ(m["flowmesh_workflows_active"], 0);
  EXPECT_EQ(value("flowmesh_worker_slots", {{"node_id", node}, {"node", "local"}}), 4);
  EXPECT_EQ(value("flowmesh_worker_slots_busy", {{"node_id", node}}), 0);
  EXPECT_EQ(value("flowmesh_workers", {{"node_id", node}, {"status", "IDLE"}}), 1);
  EXPECT_EQ(value("flowmesh_node_up", {{"node_id", node}}), 1);
  std::string text = r->RenderText();
  EXPECT_NE(text.find("# TYPE flowmesh_placement_latency_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("flowmesh_placement_latency_seconds_count 2\n"), std::string::npos) << text;
}

// A task waiting for a worker counts in the queue depth; once placed, in flight.
TEST_F(SchedulerTest, QueueDepthAndInFlightGauges) {
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json&) { return "hang"; });
  std::string wf = SubmitOnly(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: one}
spec: {taskType: echo}
)");
  json m;
  ASSERT_TRUE(WaitUntil([&] {
    sched_->Tick();
    m = sched_->metrics_registry()->ToJson();
    return m["flowmesh_queue_depth"] == 1;
  }, 10)) << m.dump();
  EXPECT_EQ(m["flowmesh_tasks_pending"], 1);
  EXPECT_EQ(m["flowmesh_workflows_active"], 1);
  WorkerUp(node, "wkr-1", 1);
  ASSERT_FALSE(sup.WaitFor("dispatch").is_null());
  sched_->Tick();
  m = sched_->metrics_registry()->ToJson();
  EXPECT_EQ(m["flowmesh_queue_depth"], 0);
  EXPECT_EQ(m["flowmesh_tasks_in_flight"], 1);
  std::string text = sched_->metrics_registry()->RenderText();
  EXPECT_NE(text.find("flowmesh_worker_utilization{node_id=\"" + node + "\",node=\"local\"} 1\n"),
            std::string::npos) << text;
}

// Nodes are UP while they heartbeat and DOWN once silent past the grace period; commands go
// to nodes a supervisor heartbeats for, and not to a DOWN one.
TEST_F(SchedulerTest, NodeLivenessAndWorkerCommandsOnAnyNode) {
  std::string node = RegisterNode();
  auto status = [&] { return sched_->NodesSnapshot()[node].value("status", ""); };
  auto command = [&](const std::string& kind) {
    std::promise<Result<json>> p;
    sched_->NodeWorkerCommand(node, kind, "cpu-9", [&p](Result<json> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  EXPECT_EQ(status(), "UP");
  EXPECT_EQ(command("start_worker").status().code(), StatusCode::kNotFound);  // no grpc_address, no heartbeat yet
  ScriptedNode sup(bus_, node, [](const json&) { return "ok"; });
  sched_->ApplyHeartbeat(json{{"node_id", node}, {"workers", json::array()}}.dump());
  std::thread answer([&] {
    json start = sup.WaitFor("start_worker");
    ASSERT_FALSE(start.is_null());
    EXPECT_EQ(start["name"], "cpu-9");
    ASSERT_TRUE(bus_->Append(bus::kEventsStream,
                             json{{"kind", "command_result"},
                                  {"command_id", start["command_id"]},
                                  {"ok", true}}
                                 .dump())
                    .ok());
  });
  EXPECT_TRUE(command("start_worker").ok());
  answer.join();
  Advance(kGrace * 1.2);
  EXPECT_EQ(status(), "DOWN");
  EXPECT_EQ(command("stop_worker").status().code(), StatusCode::kUnavailable);
  sched_->ApplyHeartbeat(json{{"node_id", node}, {"workers", json::array()}}.dump());
  sched_->Tick();
  EXPECT_EQ(status(), "UP");
}

TEST_F(SchedulerTest, MalformedBusMessagesAndHeartbeatsAreDropped) {
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json&) { return "ok"; });
  for (const char* bad : {"not json", "[1]", R"({"kind":1})", R"({"kind":"worker_up","worker_id":"wkr-b","info":{"slots":"x","task_types":"echo"}})",
                          R"({"kind":"task_event","task_id":5,"attempt":"1"})", R"({"kind":"stack_workers","node_id":7})"}) {
    ASSERT_TRUE(bus_->Append(bus::kEventsStream, bad).ok());
  }
  for (const char* bad : {R"({"workers":[{"worker_id":7}]})", R"({"workers":[{"worker_id":"wkr-1","running":[1,{"task_id":2}]}]})", "[]"}) {
    sched_->ApplyHeartbeat(bad);
  }
  WorkerUp(node, "wkr-1");
  std::string wf = RunWorkflow(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: one}
spec: {taskType: echo}
)");
  EXPECT_EQ(store_->GetWorkflow(wf)->status, "DONE");
}

TEST_F(SchedulerTest, EpochsAndInEpochOrderGateDispatch) {
  std::string node = RegisterNode();
  std::vector<std::string> order;
  std::mutex mu;
  ScriptedNode sup(bus_, node, [&](const json& d) {
    std::lock_guard<std::mutex> lock(mu);
    order.push_back(d["task_id"]);
    return std::string("ok");
  });
  WorkerUp(node, "wkr-1", 8);
  std::string wf = RunWorkflow(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata:
  name: epochs
  annotations:
    schedule_hint:
      node_execution_order: [[z], [c, b, a]]
      node_schedule_in_epoch_order: true
spec:
  taskType: echo
  graph:
    nodes:
      - {name: a}
      - {name: b}
      - {name: c}
      - {name: z}
)");
  EXPECT_EQ(store_->GetWorkflow(wf)->status, "DONE");
  auto tasks = Tasks(wf);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order, (std::vector<std::string>{tasks["z"].task_id, tasks["c"].task_id,
                                             tasks["b"].task_id, tasks["a"].task_id}));
  // The hints are kept beside the spec, not inside it.
  json hints = json::parse(tasks["b"].schedule_json);
  EXPECT_EQ(hints["epoch"], 1);
  EXPECT_EQ(hints["pos"], 1);
  EXPECT_EQ(hints["in_order"], true);
  EXPECT_EQ(tasks["b"].spec_json.find("_schedule"), std::string::npos);
}

TEST_F(SchedulerTest, PlacesOnTheCheaperWorkerInBatchesUpToItsFreeSlots) {
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json&) { return std::string("hang"); });
  auto up = [&](const std::string& id, double cost) {
    Apply({{"kind", "worker_up"}, {"node_id", node}, {"worker_id", id},
           {"info", {{"name", id}, {"task_types", {"echo"}}, {"slots", 2}, {"cost_per_hour", cost}}}});
  };
  up("wkr-dear", 5.0);
  up("wkr-cheap", 1.0);
  // Both are known before the submission (applied directly, durable on return).
  ASSERT_EQ(sched_->WorkersSnapshot().size(), 2u);
  SubmitOnly(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: burst}
spec:
  taskType: echo
  graph:
    nodes:
      - {name: a}
      - {name: b}
      - {name: c}
)");
  // All three are dispatched in one pass: first the two that fill the cheap worker's free
  // slots (one batch), then the third to the other worker.
  std::vector<std::string> placed;
  for (const auto& m : sup.WaitForCount("dispatch", 3)) placed.push_back(m["worker_id"]);
  ASSERT_GE(placed.size(), 3u);
  EXPECT_EQ(std::vector<std::string>(placed.begin(), placed.begin() + 3),
            (std::vector<std::string>{"wkr-cheap", "wkr-cheap", "wkr-dear"}));
}

TEST_F(SchedulerTest, TaskNoWorkerCanRunFailsWithWhatItAskedAndWhatTheFleetOffers) {
  Close();
  unplaceable_grace_s_ = 0.2;
  Open();
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json&) { return std::string("ok"); });
  WorkerUp(node, "wkr-1");
  std::string wf = SubmitOnly(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: gpus}
spec:
  taskType: echo
  resources: {hardware: {gpu: {count: 4, type: H100}}}
)");
  Advance(0.1);  // within the grace period: still queued
  EXPECT_EQ(Tasks(wf).begin()->second.status, state::TaskState::kPending);
  Advance(1.5);  // past it, and the watchdog ran
  ASSERT_TRUE(WaitTerminal(wf));
  EXPECT_EQ(store_->GetWorkflow(wf)->status, "FAILED");
  auto tasks = Tasks(wf);
  ASSERT_EQ(tasks.size(), 1u);
  const auto& t = tasks.begin()->second;
  EXPECT_NE(t.error.find("no worker can run this task"), std::string::npos) << t.error;
  EXPECT_NE(t.error.find("gpus=4"), std::string::npos) << t.error;
  EXPECT_NE(t.error.find("H100"), std::string::npos) << t.error;
  EXPECT_NE(t.error.find("gpus=0"), std::string::npos) << t.error;
  EXPECT_EQ(t.attempts, 0);
}

// A task type the language knows but no worker of the fleet offers is accepted, then fails
// after the grace period naming the type and what the fleet offers (not a resource story).
TEST_F(SchedulerTest, TaskTypeNoWorkerOffersFailsNamingTheTypesOnOffer) {
  Close();
  unplaceable_grace_s_ = 0.2;
  Open();
  std::string node = RegisterNode();
  ScriptedNode sup(bus_, node, [](const json&) { return std::string("ok"); });
  WorkerUp(node, "wkr-1");
  std::string wf = SubmitOnly(R"(apiVersion: flowmesh/v1
kind: SFTTask
metadata: {name: train}
spec:
  taskType: sft
  model: {source: {type: huggingface, identifier: org/model}}
  data: {dataset_name: org/data}
)");
  Advance(1.5);
  ASSERT_TRUE(WaitTerminal(wf));
  EXPECT_EQ(store_->GetWorkflow(wf)->status, "FAILED");
  auto tasks = Tasks(wf);
  ASSERT_EQ(tasks.size(), 1u);
  const auto& t = tasks.begin()->second;
  EXPECT_EQ(t.error, "no worker offers taskType sft; workers offer: data_profiling, echo");
  EXPECT_EQ(t.attempts, 0);
}

// ---- de-duplication ----

// Answers each dispatch with an inline result derived from the spec (so equal work gives
// equal results), or holds it until Release() when `hold` is set.
class DedupTest : public SchedulerTest {
 protected:
  void Reopen(const std::string& scope) {
    Close();
    dedup_scope_ = scope;
    Open();
  }

  void Succeed(const json& d) {
    json result = {{"items", {{{"input", d["spec"].value("echo", json::object()).value("message", "")},
                               {"output", "done"}}}}};
    json e = {{"kind", "task_event"}, {"worker_id", d["worker_id"]}, {"task_id", d["task_id"]},
              {"attempt", d["attempt"]}, {"type", "TASK_SUCCEEDED"},
              {"payload", {{"result", result}}}};
    EXPECT_TRUE(bus_->Append(bus::kEventsStream, e.dump()).ok());
  }
  void FailFatal(const json& d) {
    json e = {{"kind", "task_event"}, {"worker_id", d["worker_id"]}, {"task_id", d["task_id"]},
              {"attempt", d["attempt"]}, {"type", "TASK_FAILED"}, {"error", "bad input"},
              {"retryable", false}};
    EXPECT_TRUE(bus_->Append(bus::kEventsStream, e.dump()).ok());
  }

  std::unique_ptr<ScriptedNode> Node(const std::string& node, bool hold) {
    return std::make_unique<ScriptedNode>(bus_, node, [this, hold](const json& d) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        dispatches_.push_back(d);
      }
      Bump();
      if (!hold) Succeed(d);
      return std::string("hang");
    });
  }

  size_t Dispatches() {
    std::lock_guard<std::mutex> lock(mu_);
    return dispatches_.size();
  }
  json Dispatch(size_t i) {
    std::lock_guard<std::mutex> lock(mu_);
    return dispatches_.at(i);
  }

  std::mutex mu_;
  std::vector<json> dispatches_;
};

const char* kEchoX = R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: x}
spec: {taskType: echo, echo: {message: "x"}, resources: {hardware: {cpu: 1}}}
)";

TEST_F(DedupTest, TenantScopeReusesWithinAnOrganisationOnly) {
  Reopen("tenant");
  std::string node = RegisterNode();
  auto sup = Node(node, false);
  WorkerUp(node, "wkr-1");
  std::string first = RunWorkflow(kEchoX, 10, "org-a");
  ASSERT_EQ(store_->GetWorkflow(first)->status, "DONE");
  ASSERT_EQ(Dispatches(), 1u);
  // Different resources and timeout do not change what is computed.
  std::string again = RunWorkflow(R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: same-work}
spec: {taskType: echo, timeoutSeconds: 30, echo: {message: "x"}}
)", 10, "org-a");
  EXPECT_EQ(store_->GetWorkflow(again)->status, "DONE");
  EXPECT_EQ(Dispatches(), 1u);  // reused, not run
  auto a = Tasks(first)["main"];
  auto b = Tasks(again)["main"];
  EXPECT_EQ(b.result_digest, a.result_digest);
  EXPECT_EQ(b.attempts, 0);
  EXPECT_EQ(b.merge_key, a.merge_key);
  auto lineage = store_->ListLineage(again);
  ASSERT_TRUE(lineage.ok());
  ASSERT_EQ(lineage->size(), 1u);
  EXPECT_TRUE((*lineage)[0].reused);
  auto result = store_->GetResult(b.task_id);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->digest, a.result_digest);
  EXPECT_EQ(json::parse(result->metadata_json)["reused"], true);
  EXPECT_EQ(json::parse(*content_->Get(result->digest))["items"][0]["input"], "x");

  // Another organisation computes its own.
  std::string other = RunWorkflow(kEchoX, 10, "org-b");
  EXPECT_EQ(store_->GetWorkflow(other)->status, "DONE");
  EXPECT_EQ(Dispatches(), 2u);
  EXPECT_EQ(Tasks(other)["main"].attempts, 1);
}

TEST_F(DedupTest, GlobalScopeReusesAcrossOrganisationsWithoutNamingTheSource) {
  Reopen("global");
  std::string node = RegisterNode();
  auto sup = Node(node, false);
  WorkerUp(node, "wkr-1");
  std::string first = RunWorkflow(kEchoX, 10, "org-a");
  std::string other = RunWorkflow(kEchoX, 10, "org-b");
  EXPECT_EQ(Dispatches(), 1u);
  auto b = Tasks(other)["main"];
  EXPECT_EQ(b.status, state::TaskState::kDone);
  EXPECT_EQ(b.result_digest, Tasks(first)["main"].result_digest);
  EXPECT_TRUE(b.merged_parent_id.empty());
  auto result = store_->GetResult(b.task_id);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->metadata_json.find(Tasks(first)["main"].task_id), std::string::npos);
}

TEST_F(DedupTest, NonDeterministicAndCacheNeverTasksAlwaysRun) {
  Reopen("global");
  std::string node = RegisterNode();
  auto sup = Node(node, false);
  json m = {{"kind", "worker_up"}, {"node_id", node}, {"worker_id", "wkr-1"},
            {"info", {{"name", "wkr-1"}, {"task_types", {"echo", "inference"}}, {"slots", 2}}}};
  Apply(m);
  const char* sampled = R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: sampled}
spec:
  taskType: inference
  model: {source: {type: local, identifier: /m.gguf}}
  data: {type: list, items: ["hi"]}
  inference: {temperature: 0.8}
)";
  const char* never = R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: never}
spec: {taskType: echo, cache: never, echo: {message: "x"}}
)";
  for (int i = 0; i < 2; ++i) {
    RunWorkflow(sampled);
    RunWorkflow(never);
  }
  EXPECT_EQ(Dispatches(), 4u);
}

TEST_F(DedupTest, TwinJoinsTheRunningLeaderAndCompletesWithIt) {
  Reopen("tenant");
  std::string node = RegisterNode();
  auto sup = Node(node, /*hold=*/true);
  WorkerUp(node, "wkr-1");
  std::string w1 = SubmitOnly(kEchoX);
  ASSERT_TRUE(WaitUntil([&] { return Dispatches() == 1; }));
  std::string w2 = SubmitOnly(kEchoX);
  std::string joiner = Tasks(w2)["main"].task_id;
  ASSERT_TRUE(WaitUntil([&] {
    auto evs = store_->ReadEvents({"", joiner, 0, 0, 100, false});
    if (!evs.ok()) return false;
    for (const auto& e : *evs) {
      if (e.type == "TASK_UPDATE" && e.json.find("waiting_for_twin") != std::string::npos) return true;
    }
    return false;
  }));
  EXPECT_EQ(Tasks(w2)["main"].merged_parent_id, Tasks(w1)["main"].task_id);
  Succeed(Dispatch(0));
  ASSERT_TRUE(WaitTerminal(w1));
  ASSERT_TRUE(WaitTerminal(w2));
  EXPECT_EQ(store_->GetWorkflow(w2)->status, "DONE");
  EXPECT_EQ(Dispatches(), 1u);
  EXPECT_EQ(Tasks(w2)["main"].result_digest, Tasks(w1)["main"].result_digest);
}

TEST_F(DedupTest, JoinersRunOnTheirOwnWhenTheLeaderFails) {
  Reopen("tenant");
  std::string node = RegisterNode();
  auto sup = Node(node, /*hold=*/true);
  WorkerUp(node, "wkr-1");
  std::string w1 = SubmitOnly(kEchoX);
  ASSERT_TRUE(WaitUntil([&] { return Dispatches() == 1; }));
  std::string w2 = SubmitOnly(kEchoX);
  std::string w3 = SubmitOnly(kEchoX);
  ASSERT_TRUE(WaitUntil([&] { return !Tasks(w3)["main"].merged_parent_id.empty(); }));
  FailFatal(Dispatch(0));
  ASSERT_TRUE(WaitTerminal(w1));
  EXPECT_EQ(store_->GetWorkflow(w1)->status, "FAILED");
  // Both joiners are dispatched now, each on its own.
  ASSERT_TRUE(WaitUntil([&] { return Dispatches() == 3; }));
  Succeed(Dispatch(1));
  Succeed(Dispatch(2));
  ASSERT_TRUE(WaitTerminal(w2));
  ASSERT_TRUE(WaitTerminal(w3));
  EXPECT_EQ(store_->GetWorkflow(w2)->status, "DONE");
  EXPECT_EQ(store_->GetWorkflow(w3)->status, "DONE");
}

TEST_F(DedupTest, ARunningLeaderStillLeadsAfterARestart) {
  Reopen("tenant");
  std::string node = RegisterNode();
  {
    auto sup = Node(node, /*hold=*/true);
    WorkerUp(node, "wkr-1");
    std::string w1 = SubmitOnly(kEchoX);
    ASSERT_TRUE(WaitUntil([&] { return Dispatches() == 1; }));
    // Let the DISPATCHED transition commit before the restart.
    ASSERT_TRUE(WaitUntil([&] { return Tasks(w1)["main"].status == state::TaskState::kDispatched; }));
  }
  Close();
  Open();
  auto sup = Node(node, /*hold=*/true);
  // (The clock does not move: the worker keeps its grace period however slow the machine.)
  std::string w2 = SubmitOnly(kEchoX);
  std::string joiner = Tasks(w2)["main"].task_id;
  ASSERT_TRUE(WaitUntil([&] { return !Tasks(w2)["main"].merged_parent_id.empty(); }));
  EXPECT_EQ(Dispatches(), 1u);  // the twin joined; nothing new was dispatched
  Succeed(Dispatch(0));
  ASSERT_TRUE(WaitTerminal(w2));
  EXPECT_EQ(store_->GetWorkflow(w2)->status, "DONE");
  EXPECT_EQ(Dispatches(), 1u);
}

TEST_F(DedupTest, DownstreamOfAReusedTaskSeesItsResultAndFingerprintsChain) {
  Reopen("tenant");
  std::string node = RegisterNode();
  auto sup = Node(node, false);
  WorkerUp(node, "wkr-1");
  const char* chain = R"(apiVersion: flowmesh/v1
kind: Workflow
metadata: {name: chain}
spec:
  taskType: echo
  graph:
    nodes:
      - {name: a, spec: {echo: {message: "x"}}}
      - {name: b, dependsOn: [a], spec: {echo: {message: "${a.items.0.input}!"}}}
)";
  std::string w1 = RunWorkflow(chain);
  ASSERT_EQ(store_->GetWorkflow(w1)->status, "DONE");
  ASSERT_EQ(Dispatches(), 2u);
  EXPECT_EQ(Dispatch(1)["spec"]["echo"]["message"], "x!");
  std::string w2 = RunWorkflow(chain);
  EXPECT_EQ(store_->GetWorkflow(w2)->status, "DONE");
  EXPECT_EQ(Dispatches(), 2u);
  auto lineage = store_->ListLineage(w2);
  ASSERT_TRUE(lineage.ok());
  ASSERT_EQ(lineage->size(), 2u);
  json inputs = json::parse((*lineage)[1].inputs_json);
  ASSERT_EQ(inputs.size(), 1u);
  EXPECT_EQ(inputs[0]["digest"], Tasks(w2)["a"].result_digest);
}

}  // namespace
}  // namespace flowmesh::scheduler
