// Trace building and analysis over a real SQLite store: lineage rows, attempts folded from
// events, spans, assets, and the critical path.
#include "api/traces.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "support/temp_dir.h"

namespace flowmesh::api {
namespace {

using json = nlohmann::json;

class TracesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state::StoreConfig sc;
    sc.path = (std::filesystem::path(dir_.path()) / "state.db").string();
    auto store = state::Store::Open(sc);
    ASSERT_TRUE(store.ok());
    store_ = std::move(store).value();
  }

  // A diamond a → (b, c) → d: c is slow, so the critical path is a, c, d. b was reused.
  void Fill() {
    wf_.workflow_id = "wfl-1";
    wf_.name = "diamond";
    wf_.status = "DONE";
    wf_.submitted_at = 100;
    struct T {
      const char* id;
      const char* node;
      std::vector<std::string> deps;
      double dispatched, finished;
      bool reused;
    };
    std::vector<T> ts = {{"tsk-a", "a", {}, 100.5, 101, false},
                         {"tsk-b", "b", {"tsk-a"}, 0, 101.1, true},
                         {"tsk-c", "c", {"tsk-a"}, 101.2, 105, false},
                         {"tsk-d", "d", {"tsk-b", "tsk-c"}, 105.5, 106, false}};
    ASSERT_TRUE(store_->WriteSync([&](state::WriteTxn& txn) -> Status {
      FM_RETURN_IF_ERROR(txn.PutWorkflow(wf_));
      int64_t cursor = 0;
      for (const auto& t : ts) {
        state::TaskRecord r;
        r.task_id = t.id;
        r.workflow_id = "wfl-1";
        r.graph_node_name = t.node;
        r.task_type = "echo";
        r.status = state::TaskState::kDone;
        r.depends_on = t.deps;
        r.submitted_at = 100;
        r.dispatched_ts = t.dispatched;
        r.finished_ts = t.finished;
        r.attempts = t.reused ? 0 : 1;
        r.result_digest = std::string("d-") + t.node;
        r.spec_json = "{}";
        r.latest_update_json = "{}";
        FM_RETURN_IF_ERROR(txn.PutTask(r));
        state::ResultRecord res{t.id, r.result_digest, 10, "", "{}", t.finished};
        FM_RETURN_IF_ERROR(txn.PutResult(res));
        json inputs = json::array();
        for (const auto& d : t.deps) inputs.push_back({{"node", d.substr(4)}, {"task_id", d}, {"digest", "d-" + d.substr(4)}});
        state::LineageRecord l{t.id, "wfl-1", std::string("fp-") + t.node, true, inputs.dump(), t.reused, 0};
        FM_RETURN_IF_ERROR(txn.PutLineage(l));
        if (t.reused) continue;
        for (auto [type, ts_] : {std::pair<const char*, double>{"TASK_DISPATCHED", t.dispatched},
                                 {"TASK_STARTED", t.dispatched + 0.1},
                                 {"TASK_SUCCEEDED", t.finished}}) {
          state::EventRecord e;
          e.cursor = ++cursor + 100 * (t.id[4] - 'a');
          e.workflow_id = "wfl-1";
          e.task_id = t.id;
          e.ts = ts_;
          e.type = type;
          e.json = json{{"type", type}, {"worker_id", "wkr-1"}, {"payload", {{"attempt", 1}}}}.dump();
          FM_RETURN_IF_ERROR(txn.AppendEvent(e));
        }
      }
      return Status::Ok();
    }).ok());
  }

  testing::TempDir dir_;
  std::unique_ptr<state::Store> store_;
  state::WorkflowRecord wf_;
};

TEST_F(TracesTest, LineageSpansAssetsAndCriticalPath) {
  Fill();
  auto trace = BuildTrace(*store_, wf_);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  ASSERT_EQ(trace->lineage.size(), 4u);
  const json& b = trace->lineage[1];
  EXPECT_EQ(b["node"], "b");
  EXPECT_TRUE(b["reused"].get<bool>());
  EXPECT_EQ(b["attempts"].size(), 0u);
  EXPECT_EQ(b["inputs"][0]["digest"], "d-a");
  const json& c = trace->lineage[2];
  ASSERT_EQ(c["attempts"].size(), 1u);
  EXPECT_EQ(c["attempts"][0]["worker_id"], "wkr-1");
  EXPECT_DOUBLE_EQ(c["attempts"][0]["ended_at"].get<double>(), 105);
  EXPECT_DOUBLE_EQ(c["ready_at"].get<double>(), 101);  // when a finished

  int attempts = 0, reused = 0;
  for (const auto& s : trace->spans) {
    attempts += s["kind"] == "attempt";
    reused += s["kind"] == "reused";
  }
  EXPECT_EQ(attempts, 3);
  EXPECT_EQ(reused, 1);
  json asset_a;
  for (const auto& a : trace->assets) {
    if (a["digest"] == "d-a") asset_a = a;
  }
  EXPECT_EQ(asset_a["produced_by"], json({"tsk-a"}));
  EXPECT_EQ(asset_a["consumed_by"], json({"tsk-b", "tsk-c"}));

  json analysis = AnalyzeTrace(*trace);
  std::vector<std::string> path;
  for (const auto& t : analysis["critical_path"]["tasks"]) path.push_back(t["node"]);
  EXPECT_EQ(path, (std::vector<std::string>{"a", "c", "d"}));
  EXPECT_DOUBLE_EQ(analysis["makespan_s"].get<double>(), 6);
  EXPECT_EQ(analysis["breakdown"]["executed"], 3);
  EXPECT_EQ(analysis["breakdown"]["reused"], 1);
  EXPECT_EQ(analysis["lineage_edges"].size(), 4u);
  EXPECT_EQ(ToNdjson(trace->lineage).find('\n'), ToNdjson({trace->lineage[0]}).size() - 1);
}


// Spans an executor reports in its progress updates (the agent's steps) become children of
// the attempt that ran them, ending at the update's time; updates without a span do not.
TEST_F(TracesTest, ExecutorSpansNestUnderTheirAttempt) {
  Fill();
  ASSERT_TRUE(store_->WriteSync([&](state::WriteTxn& txn) -> Status {
    int64_t cursor = 1000;
    auto update = [&](double ts, json payload) {
      state::EventRecord e;
      e.cursor = ++cursor;
      e.workflow_id = "wfl-1";
      e.task_id = "tsk-c";
      e.ts = ts;
      e.type = "TASK_UPDATE";
      e.json = json{{"type", "TASK_UPDATE"}, {"payload", std::move(payload)}}.dump();
      return txn.AppendEvent(e);
    };
    FM_RETURN_IF_ERROR(update(102.5, {{"attempt", 1},
                                      {"span", {{"name", "agent.step"}, {"step", 0},
                                                {"tool", "calculator"}, {"duration_ms", 500},
                                                {"kind", "tool_call"}}}}));
    FM_RETURN_IF_ERROR(update(103, {{"attempt", 1}, {"progress", 0.5}}));
    return update(104, {{"attempt", 1},
                        {"span", {{"name", "agent.step"}, {"step", 1}, {"duration_ms", 250}}}});
  }).ok());
  auto trace = BuildTrace(*store_, wf_);
  ASSERT_TRUE(trace.ok()) << trace.status().ToString();
  std::vector<json> steps;
  for (const auto& s : trace->spans) {
    if (s["kind"] == "step") steps.push_back(s);
  }
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[0]["parent"], "tsk-c:attempt:1");
  EXPECT_EQ(steps[0]["span_id"], "tsk-c:attempt:1:step:0");
  EXPECT_DOUBLE_EQ(steps[0]["start"].get<double>(), 102);
  EXPECT_DOUBLE_EQ(steps[0]["end"].get<double>(), 102.5);
  EXPECT_DOUBLE_EQ(steps[0]["duration_s"].get<double>(), 0.5);
  EXPECT_EQ(steps[0]["name"], "agent.step");
  EXPECT_EQ(steps[0]["tool"], "calculator");
  EXPECT_EQ(steps[1]["step"], 1);
  EXPECT_DOUBLE_EQ(steps[1]["start"].get<double>(), 103.75);
}

}  // namespace
}  // namespace flowmesh::api
