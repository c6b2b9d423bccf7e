// The shared list helper (filters with the published semantics, limit keeps the newest),
// ISO timestamps, and the published shapes of records and log events.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/routes/common.h"
#include "api/routes/records.h"

namespace flowmesh::api {
namespace {

using nlohmann::json;

ListQuery QueryOf(const std::string& query) {
  http::Request req;
  req.target = "/api/v1/x?" + query;
  auto q = ListQuery::Parse(req);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  return *q;
}

std::vector<std::string> Ids(const json& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r["id"].get<std::string>());
  return out;
}

const std::vector<json> kRecords = {
    {{"id", "a"},
     {"status", "DONE"},
     {"ok", true},
     {"tags", {"x", "y"}},
     {"env", {{"zone", "eu"}}},
     {"err", nullptr}},
    {{"id", "b"},
     {"status", "FAILED"},
     {"ok", false},
     {"tags", "y, z"},
     {"env", {{"zone", "us"}}},
     {"err", "boom"}},
    {{"id", "c"},
     {"status", "PENDING"},
     {"ok", true},
     {"tags", json::array()},
     {"env", json::object()},
     {"err", nullptr}},
};

TEST(ListQueryTest, RepeatedKeysMatchAnyValue) {
  EXPECT_EQ(Ids(QueryOf("status=DONE&status=FAILED").Apply(kRecords)),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Ids(QueryOf("status=DONE").Apply(kRecords)), (std::vector<std::string>{"a"}));
  EXPECT_EQ(Ids(QueryOf("status=DONE&id=b").Apply(kRecords)), (std::vector<std::string>{}));
}

TEST(ListQueryTest, BooleansNullsListsTagsAndDotPaths) {
  EXPECT_EQ(Ids(QueryOf("ok=yes").Apply(kRecords)), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(Ids(QueryOf("ok=0").Apply(kRecords)), (std::vector<std::string>{"b"}));
  EXPECT_EQ(Ids(QueryOf("err=null").Apply(kRecords)), (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(Ids(QueryOf("tags=y").Apply(kRecords)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(Ids(QueryOf("tags=z").Apply(kRecords)), (std::vector<std::string>{"b"}));
  // c has no env.zone: as published, a path a record lacks is no filter for that record.
  EXPECT_EQ(Ids(QueryOf("env.zone=us").Apply(kRecords)), (std::vector<std::string>{"b", "c"}));
  // A key naming no field of a record is no filter for it.
  EXPECT_EQ(Ids(QueryOf("nonsense=1&env.nothing=2").Apply(kRecords)),
            (std::vector<std::string>{"a", "b", "c"}));
}

TEST(ListQueryTest, LimitKeepsTheNewestAndViewIsTheCallers) {
  EXPECT_EQ(Ids(QueryOf("limit=2").Apply(kRecords)), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(Ids(QueryOf("limit=1&ok=true").Apply(kRecords)), (std::vector<std::string>{"c"}));
  EXPECT_EQ(QueryOf("view=status&status=DONE").view(), "status");
  EXPECT_EQ(QueryOf("workflow_id=w1").Single("workflow_id"), "w1");
  EXPECT_EQ(QueryOf("workflow_id=w1&workflow_id=w2").Single("workflow_id"), "");
  EXPECT_EQ(QueryOf("assigned_worker=null").Stored("assigned_worker"), "");
  EXPECT_EQ(QueryOf("status=DONE").Stored("status"), "DONE");
  for (const char* bad : {"limit=0", "limit=x", "view=everything"}) {
    http::Request req;
    req.target = std::string("/x?") + bad;
    EXPECT_FALSE(ListQuery::Parse(req).ok()) << bad;
  }
}

TEST(QueryValuesTest, RepeatedAndDecoded) {
  http::Request req;
  req.target = "/x?include=results&include=a%2Cb&other=1";
  EXPECT_EQ(QueryValues(req, "include"), (std::vector<std::string>{"results", "a,b"}));
}

TEST(IsoTimeTest, UtcWithMicroseconds) {
  EXPECT_EQ(IsoTime(0), json(nullptr));
  EXPECT_EQ(IsoTime(1767225600.5), json("2026-01-01T00:00:00.500000+00:00"));
  EXPECT_EQ(IsoTime(1767225600.9999999), json("2026-01-01T00:00:01.000000+00:00"));
}

TEST(RecordsTest, TaskHasThePublishedFields) {
  state::TaskRecord t;
  t.task_id = "tsk-1";
  t.workflow_id = "wfl-1";
  t.task_type = "echo";
  t.submitted_at = 1767225600;
  t.depends_on = {"tsk-0"};
  t.spec_json = R"({"taskType":"echo","resources":{"estimatedLoad":3}})";
  t.usages_json =
      R"([{"started_at":1767225601,"finished_at":1767225602,"runtime_sec":1,"hardware":"cpu",
                       "cost_per_hour":0,"total_cost":0,"status":"DONE"}])";
  json j = TaskJson(t, {"tsk-0"});
  EXPECT_EQ(j["supplier_id"], "");
  EXPECT_EQ(j["source"], j["raw_yaml"]);
  EXPECT_EQ(json::parse(j["source"].get<std::string>()), j["task"]);
  EXPECT_EQ(j["submitted_at"], "2026-01-01T00:00:00.000000+00:00");
  EXPECT_EQ(j["submitted_ts"], 1767225600.0);
  EXPECT_EQ(j["load"], 3);
  EXPECT_EQ(j["pending_dependencies"], json({"tsk-0"}));
  EXPECT_EQ(j["usages"][0]["started_at"], "2026-01-01T00:00:01.000000+00:00");
  EXPECT_EQ(j["usages"][0]["hardware"], json({{"worker_type", "cpu"}}));
  json status = TaskJson(t, {}, "status");
  EXPECT_FALSE(status.contains("source"));
  EXPECT_TRUE(status.contains("completed"));
}

TEST(RecordsTest, WorkflowListsTaskIdsPerState) {
  state::WorkflowRecord w;
  w.workflow_id = "wfl-1";
  w.task_ids = {"t1", "t2", "t3"};
  w.submitted_at = 1767225600;
  std::vector<state::TaskRecord> tasks(3);
  tasks[0].task_id = "t1";
  tasks[0].status = state::TaskState::kDone;
  tasks[1].task_id = "t2";
  tasks[1].status = state::TaskState::kCancelling;
  tasks[2].task_id = "t3";
  json j = WorkflowJson(w, tasks);
  EXPECT_EQ(j["completed_tasks"], json({"t1"}));
  EXPECT_EQ(j["dispatched_tasks"], json({"t2"}));
  EXPECT_EQ(j["failed_tasks"], json::array());
  EXPECT_EQ(j["updated_at"], j["submitted_at"]);
  json view = WorkflowJson(w, tasks, "status");
  EXPECT_FALSE(view.contains("task_ids"));
  EXPECT_EQ(view["task_count"], 3);
  EXPECT_EQ(view["dispatched_count"], 1);
}

TEST(RecordsTest, EventsAreLogEvents) {
  json e = PublicEvent(
      R"({"type":"TASK_LOG","ts":1767225600,"task_id":"t","payload":{"line":"hi","stream":"stdout"}})");
  EXPECT_EQ(e["ts"], "2026-01-01T00:00:00.000000+00:00");
  EXPECT_EQ(e["ts_epoch"], 1767225600);
  EXPECT_EQ(e["message"], "hi");
  EXPECT_EQ(e["stream"], "stdout");
  json f = PublicEvent(R"({"type":"TASK_FAILED","status":"FAILED","error":"boom","payload":{}})");
  EXPECT_EQ(f["level"], "ERROR");
  EXPECT_EQ(f["message"], "TASK_FAILED FAILED: boom");
}

TEST(RecordsTest, WorkerHasThePublishedFields) {
  json snap = {{"worker_id", "wkr-1"},
               {"node_id", "nod-1"},
               {"name", "w0"},
               {"alias", ""},
               {"status", "IDLE"},
               {"last_seen", 1767225600.0},
               {"registered_at", 1767225600.0},
               {"task_types", {"echo"}},
               {"cpu_cores", 4},
               {"memory_mb", 1024},
               {"pid", 0}};
  json w = WorkerJson(snap, {{"nod-1", "local"}});
  EXPECT_EQ(w["id"], "wkr-1");
  EXPECT_EQ(w["alias"], "w0");
  EXPECT_EQ(w["node_alias"], "local");
  EXPECT_EQ(w["namespace"], "default");
  EXPECT_EQ(w["last_seen"], "2026-01-01T00:00:00.000000+00:00");
  EXPECT_EQ(w["pid"], nullptr);
  EXPECT_EQ(w["capabilities"]["supported_task_types"], json({"echo"}));
  EXPECT_EQ(w["hardware"]["memory"]["total_bytes"], 1024LL * 1048576);
  json nw = NodeWorkerJson(w);
  EXPECT_EQ(nw["name"], "w0");
  EXPECT_EQ(nw["provider"], "native");
}

}  // namespace
}  // namespace flowmesh::api
