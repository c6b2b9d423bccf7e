#include "cli/output.h"

#include <gtest/gtest.h>

namespace flowmesh::cli {
namespace {

using nlohmann::json;

TEST(TableTest, AlignsColumnsAndPadsShortRows) {
  std::string t = FormatTable({"NAME", "STATUS", "PID"},
                              {{"cpu-1", "running", "4242"}, {"cpu-10", "stopped"}});
  EXPECT_EQ(t,
            "NAME    STATUS   PID\n"
            "cpu-1   running  4242\n"
            "cpu-10  stopped\n");
}

TEST(TableTest, RecordsTableTakesFieldsAndJoinsLists) {
  json recs = json::parse(R"([{"task_id":"tsk-1","status":"DONE","depends_on":[]},
                              {"task_id":"tsk-2","status":null,"depends_on":["tsk-1","tsk-0"]}])");
  EXPECT_EQ(FormatRecords(recs, {"task_id", "status", "depends_on"}),
            "task_id  status  depends_on\n"
            "tsk-1    DONE\n"
            "tsk-2            tsk-1,tsk-0\n");
}

TEST(ErrorFormatTest, ValidationErrorsAreFileLineColumnPathMessage) {
  std::string body = R"({"detail":"invalid workflow","errors":[
      {"path":"spec.stages[1].dependsOn","line":12,"column":7,"message":"unknown stage 'x'"},
      {"path":"spec.taskType","line":3,"column":0,"message":"unknown task type"},
      {"message":"root key 'foo' is not allowed"}]})";
  auto lines = FormatValidationErrors("wf.yaml", body);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "wf.yaml:12:7: spec.stages[1].dependsOn: unknown stage 'x'");
  EXPECT_EQ(lines[1], "wf.yaml:3: spec.taskType: unknown task type");
  EXPECT_EQ(lines[2], "wf.yaml: root key 'foo' is not allowed");
}

TEST(ErrorFormatTest, ValidationWithoutErrorsFallsBackToDetail) {
  auto lines = FormatValidationErrors("wf.yaml", R"({"detail":"not YAML"})");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "wf.yaml: not YAML");
}

TEST(ErrorFormatTest, HttpErrorUsesDetailOrBodyOrReason) {
  EXPECT_EQ(FormatHttpError(404, R"({"detail":"workflow wfl-x not found"})"),
            "error: workflow wfl-x not found (HTTP 404)");
  EXPECT_EQ(FormatHttpError(502, "Bad Gateway\n"), "error: Bad Gateway (HTTP 502)");
  EXPECT_EQ(FormatHttpError(409, ""), "error: conflict (HTTP 409)");
  EXPECT_NE(FormatHttpError(401, "").find("--api-key"), std::string::npos);
}

TEST(ErrorFormatTest, ConnectionMessageNamesUrlAndRemedy) {
  std::string m = ConnectionErrorMessage("http://127.0.0.1:1", "connection refused");
  EXPECT_NE(m.find("cannot reach the FlowMesh server at http://127.0.0.1:1 (connection refused)"),
            std::string::npos);
  EXPECT_NE(m.find("flowmesh stack up"), std::string::npos);
  EXPECT_NE(m.find("FLOWMESH_URL"), std::string::npos);
}

json Ev(const std::string& type, const std::string& task, json extra = json::object()) {
  json e = {{"type", type}, {"ts", 1.0}, {"workflow_id", "wfl-1"}, {"task_id", task}};
  for (auto& [k, v] : extra.items()) e[k] = v;
  return e;
}

TEST(WatchProgressTest, FollowsTasksThroughTheirStates) {
  WatchProgress p;
  p.AddTask("tsk-a", "wf:a", "PENDING");
  p.AddTask("tsk-b", "wf:b", "PENDING");
  EXPECT_EQ(p.total(), 2u);
  EXPECT_EQ(p.finished(), 0u);

  EXPECT_TRUE(p.Apply(Ev("TASK_DISPATCHED", "tsk-a", {{"worker_id", "wkr-1"}})));
  EXPECT_EQ(p.Find("tsk-a")->status, "DISPATCHED");
  EXPECT_EQ(p.last_change(), "wf:a (tsk-a) DISPATCHED on wkr-1");
  EXPECT_TRUE(p.Apply(Ev("TASK_STARTED", "tsk-a")));
  EXPECT_FALSE(p.Apply(Ev("TASK_LOG", "tsk-a", {{"payload", {{"line", "hi"}}}})));
  EXPECT_TRUE(p.Apply(Ev("TASK_SUCCEEDED", "tsk-a")));
  EXPECT_EQ(p.finished(), 1u);
  EXPECT_EQ(p.ChangeLine(2.5), "[2.5s] 1/2 done  wf:a (tsk-a) DONE");

  // A retryable failure is not final; the retry's dispatch moves the task on.
  EXPECT_TRUE(p.Apply(Ev("TASK_FAILED", "tsk-b", {{"error", "oom"}, {"retryable", true}})));
  EXPECT_EQ(p.Find("tsk-b")->status, "RETRYING");
  EXPECT_EQ(p.finished(), 1u);
  EXPECT_TRUE(p.Apply(Ev("TASK_DISPATCHED", "tsk-b", {{"worker_id", "wkr-2"}})));
  EXPECT_TRUE(p.Apply(Ev("TASK_FAILED", "tsk-b", {{"error", "boom"}, {"retryable", false}})));
  EXPECT_EQ(p.Find("tsk-b")->status, "FAILED");
  EXPECT_EQ(p.last_change(), "wf:b (tsk-b) FAILED: boom");
  EXPECT_EQ(p.finished(), 2u);
  EXPECT_EQ(p.Count("FAILED"), 1u);

  // Replayed events after a reconnect do not move a finished task back.
  EXPECT_FALSE(p.Apply(Ev("TASK_DISPATCHED", "tsk-a")));
  EXPECT_EQ(p.Find("tsk-a")->status, "DONE");
  // Duplicates are not changes.
  EXPECT_FALSE(p.Apply(Ev("TASK_SUCCEEDED", "tsk-a")));
}

TEST(WatchProgressTest, UnknownTasksAreAddedAndUpdateStatusIsUsed) {
  WatchProgress p;
  EXPECT_TRUE(p.Apply(Ev("TASK_SUBMITTED", "tsk-x")));
  EXPECT_EQ(p.total(), 1u);
  EXPECT_TRUE(p.Apply(Ev("TASK_UPDATE", "tsk-x", {{"status", "DISPATCHED"}})));
  EXPECT_EQ(p.Find("tsk-x")->status, "DISPATCHED");
  EXPECT_TRUE(p.Apply(Ev("TASK_CANCELLED", "tsk-x")));
  EXPECT_EQ(p.Count("CANCELLED"), 1u);
  EXPECT_FALSE(p.Apply(json::parse(R"({"type":"LOG_STREAM_CLOSED"})")));
  EXPECT_FALSE(p.Apply(json("not an object")));
}

TEST(WatchProgressTest, RenderShowsSummaryAndOneLinePerTask) {
  WatchProgress p;
  p.AddTask("tsk-a", "wf:a", "DONE");
  p.AddTask("tsk-b", "wf:b", "PENDING");
  ASSERT_TRUE(p.Apply(Ev("TASK_STARTED", "tsk-b", {{"worker_id", "wkr-9"}})));
  auto lines = p.Render("wfl-1", 75);
  ASSERT_EQ(lines.size(), 4u);  // summary, header, two tasks
  EXPECT_EQ(lines[0], "workflow wfl-1  1/2 done, 1 running  1m15s");
  EXPECT_NE(lines[2].find("wf:a"), std::string::npos);
  EXPECT_NE(lines[2].find("DONE"), std::string::npos);
  EXPECT_NE(lines[3].find("RUNNING"), std::string::npos);
  EXPECT_NE(lines[3].find("wkr-9"), std::string::npos);
}

TEST(EventLineTest, LogEventsShowTheLine) {
  json e = Ev("TASK_LOG", "tsk-a", {{"payload", {{"line", "loading model\n"}}}});
  std::string line = FormatEventLine(e);
  EXPECT_NE(line.find("tsk-a | loading model"), std::string::npos);
  EXPECT_EQ(line.back(), 'l');
  std::string failed = FormatEventLine(Ev("TASK_FAILED", "tsk-b", {{"error", "boom"}}));
  EXPECT_NE(failed.find("TASK_FAILED tsk-b"), std::string::npos);
  EXPECT_NE(failed.find("error=boom"), std::string::npos);
}

TEST(FormatTest, ElapsedAndValues) {
  EXPECT_EQ(FormatElapsed(1.25), "1.2s");
  EXPECT_EQ(FormatElapsed(42), "42s");
  EXPECT_EQ(FormatElapsed(185), "3m05s");
  EXPECT_EQ(FormatElapsed(3720), "1h02m");
  EXPECT_EQ(DisplayValue(json(3.0)), "3");
  EXPECT_EQ(DisplayValue(json(true)), "true");
  EXPECT_EQ(DisplayValue(json::parse(R"({"a":1})")), R"({"a":1})");
}


TEST(TraceViewTest, DrawsTheCriticalPathAndATable) {
  nlohmann::json a = {
      {"workflow", {{"workflow_id", "wfl-1"}, {"name", "w"}, {"status", "DONE"}, {"submitted_at", 100.0}}},
      {"makespan_s", 10.0},
      {"breakdown", {{"tasks", 2}, {"executed", 1}, {"reused", 1}, {"attempts", 1},
                     {"queue_s_total", 1.0}, {"run_s_total", 8.0}}},
      {"critical_path", {{"duration_s", 10.0}, {"queue_s", 1.0}, {"run_s", 8.0}, {"other_s", 1.0},
                         {"tasks", {{{"node", "first"}, {"ready_at", 100.0}, {"finished_at", 109.0},
                                     {"queue_s", 1.0}, {"run_s", 8.0}, {"reused", false}},
                                    {{"node", "second"}, {"ready_at", 109.0}, {"finished_at", 110.0},
                                     {"queue_s", 0.0}, {"run_s", 0.0}, {"reused", true}}}}}},
      {"tasks", {{{"node", "first"}, {"task_type", "echo"}, {"status", "DONE"}, {"attempts", 1},
                  {"queue_s", 1.0}, {"run_s", 8.0}, {"reused", false}},
                 {{"node", "second"}, {"task_type", "echo"}, {"status", "DONE"}, {"attempts", 0},
                  {"queue_s", 0.0}, {"run_s", 0.0}, {"reused", true}}}}};
  std::string out = FormatTraceAnalysis(a, 20);
  EXPECT_NE(out.find("critical path: 2 task(s)"), std::string::npos) << out;
  // first: 1 s waiting ('..'), 8 s running ('#' x 16) on a 20-column, 10 s timeline.
  EXPECT_NE(out.find("|..################  |"), std::string::npos) << out;
  EXPECT_NE(out.find("reused"), std::string::npos);
  EXPECT_NE(out.find("NODE"), std::string::npos);
  // Missing fields never throw.
  EXPECT_NO_THROW(FormatTraceAnalysis(nlohmann::json::object()));
  EXPECT_NO_THROW(FormatTraceAnalysis(nlohmann::json::array()));
}

}  // namespace
}  // namespace flowmesh::cli
