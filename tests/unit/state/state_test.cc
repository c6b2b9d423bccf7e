#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "state/records.h"
#include "state/schema.h"
#include "state/store.h"
#include "support/temp_dir.h"

namespace flowmesh::state {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::unique_ptr<Store> OpenStore(const std::string& path, int max_batch = 4096) {
  StoreConfig config;
  config.path = path;
  config.max_batch = max_batch;
  auto store = Store::Open(config);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

WorkflowRecord MakeWorkflow(const std::string& id, const std::string& status = "PENDING") {
  WorkflowRecord w;
  w.workflow_id = id;
  w.name = "name-" + id;
  w.org_id = "org-a";
  w.owner_id = "usr-1";
  w.format = "n8n";
  w.source_text = "{\"nodes\": [\"x\"], \"text\": \"caf\xc3\xa9\"}";
  w.submitted_at = 1700000000.25;
  w.updated_at = 1700000001.5;
  w.status = status;
  return w;
}

TaskRecord MakeTask(const std::string& id, const std::string& workflow_id) {
  TaskRecord t;
  t.task_id = id;
  t.workflow_id = workflow_id;
  t.org_id = "org-a";
  t.owner_id = "usr-1";
  t.supplier_id = "sup-9";
  t.task_name = "wf:" + id;
  t.graph_node_name = "node-" + id;
  t.task_type = "echo";
  t.category = "inference";
  t.status = TaskState::kDispatched;
  t.assigned_worker = "wkr-1";
  t.submitted_at = 10.5;
  t.dispatched_ts = 11.25;
  t.started_ts = 12.125;
  t.finished_ts = 13.0625;
  t.attempts = 2;
  t.max_attempts = 5;
  t.failed_workers = {"wkr-0", "wkr-x"};
  t.depends_on = {"tsk-a", "tsk-b"};
  t.dependents = {"tsk-c"};
  t.last_error = "boom";
  t.error = "final error";
  t.spec_json = R"({"type":"echo","params":{"x":1}})";
  t.latest_update_json = R"({"progress":0.5})";
  t.result_digest = "abc123";
  t.usages_json = R"([{"runtime_sec":1.5}])";
  return t;
}

EventRecord MakeEvent(int64_t cursor, const std::string& workflow_id, const std::string& task_id) {
  EventRecord e;
  e.cursor = cursor;
  e.workflow_id = workflow_id;
  e.task_id = task_id;
  e.ts = 100.0 + static_cast<double>(cursor);
  e.type = "TASK_LOG";
  e.json = "{\"cursor\":" + std::to_string(cursor) + "}";
  return e;
}

void ExpectTaskEq(const TaskRecord& a, const TaskRecord& b) {
  EXPECT_EQ(a.task_id, b.task_id);
  EXPECT_EQ(a.workflow_id, b.workflow_id);
  EXPECT_EQ(a.org_id, b.org_id);
  EXPECT_EQ(a.owner_id, b.owner_id);
  EXPECT_EQ(a.supplier_id, b.supplier_id);
  EXPECT_EQ(a.task_name, b.task_name);
  EXPECT_EQ(a.graph_node_name, b.graph_node_name);
  EXPECT_EQ(a.task_type, b.task_type);
  EXPECT_EQ(a.category, b.category);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.assigned_worker, b.assigned_worker);
  EXPECT_EQ(a.submitted_at, b.submitted_at);
  EXPECT_EQ(a.dispatched_ts, b.dispatched_ts);
  EXPECT_EQ(a.started_ts, b.started_ts);
  EXPECT_EQ(a.finished_ts, b.finished_ts);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.max_attempts, b.max_attempts);
  EXPECT_EQ(a.failed_workers, b.failed_workers);
  EXPECT_EQ(a.depends_on, b.depends_on);
  EXPECT_EQ(a.dependents, b.dependents);
  EXPECT_EQ(a.last_error, b.last_error);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.spec_json, b.spec_json);
  EXPECT_EQ(a.latest_update_json, b.latest_update_json);
  EXPECT_EQ(a.result_digest, b.result_digest);
  EXPECT_EQ(a.usages_json, b.usages_json);
}

void ExpectWorkflowEq(const WorkflowRecord& a, const WorkflowRecord& b) {
  EXPECT_EQ(a.workflow_id, b.workflow_id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.org_id, b.org_id);
  EXPECT_EQ(a.owner_id, b.owner_id);
  EXPECT_EQ(a.format, b.format);
  EXPECT_EQ(a.source_text, b.source_text);
  EXPECT_EQ(a.submitted_at, b.submitted_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
  EXPECT_EQ(a.status, b.status);
}

std::vector<std::string> Cursors(const std::vector<EventRecord>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(std::to_string(e.cursor));
  return out;
}

std::vector<std::string> TaskIds(const std::vector<TaskRecord>& tasks) {
  std::vector<std::string> out;
  for (const auto& t : tasks) out.push_back(t.task_id);
  return out;
}

// Holds the writer thread inside an op until Release(), so later writes pile up in the
// queue deterministically.
class WriterGate {
 public:
  WriterGate() : released_(release_.get_future().share()) {}
  Store::WriteOp Op() {
    return [this](WriteTxn&) {
      entered_.set_value();
      released_.wait();
      return Status::Ok();
    };
  }
  void WaitEntered() { entered_future_.wait(); }
  void Release() { release_.set_value(); }

 private:
  std::promise<void> entered_;
  std::future<void> entered_future_ = entered_.get_future();
  std::promise<void> release_;
  std::shared_future<void> released_;
};

TEST(TaskStateTest, NamesRoundTrip) {
  for (TaskState s : {TaskState::kPending, TaskState::kDispatched, TaskState::kCancelling,
                      TaskState::kDone, TaskState::kFailed, TaskState::kCancelled}) {
    auto parsed = ParseTaskState(TaskStateName(s));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(TaskStateName(TaskState::kCancelling), "CANCELLING");
  EXPECT_FALSE(ParseTaskState("pending").has_value());
  EXPECT_TRUE(IsTerminal(TaskState::kDone));
  EXPECT_FALSE(IsTerminal(TaskState::kCancelling));
}

TEST(StoreTest, RejectsBadConfig) {
  StoreConfig config;
  EXPECT_EQ(Store::Open(config).status().code(), StatusCode::kInvalidArgument);
  testing::TempDir dir;
  config.path = dir / "state.db";
  config.max_batch = 0;
  EXPECT_EQ(Store::Open(config).status().code(), StatusCode::kInvalidArgument);
}

TEST(StoreTest, RoundTripsWorkflowsAndTasks) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  WorkflowRecord w = MakeWorkflow("wfl-1");
  TaskRecord t1 = MakeTask("tsk-2", "wfl-1");
  TaskRecord t2 = MakeTask("tsk-1", "wfl-1");
  t2.status = TaskState::kCancelling;
  t2.failed_workers.clear();
  ASSERT_TRUE(store
                  ->WriteSync([&](WriteTxn& txn) {
                    FM_RETURN_IF_ERROR(txn.PutWorkflow(w));
                    FM_RETURN_IF_ERROR(txn.PutTask(t1));
                    return txn.PutTask(t2);
                  })
                  .ok());

  auto got = store->GetWorkflow("wfl-1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ExpectWorkflowEq(*got, w);
  // Task order is insertion order, not id order.
  EXPECT_THAT(got->task_ids, ElementsAre("tsk-2", "tsk-1"));

  auto task = store->GetTask("tsk-2");
  ASSERT_TRUE(task.ok()) << task.status().ToString();
  ExpectTaskEq(*task, t1);
  task = store->GetTask("tsk-1");
  ASSERT_TRUE(task.ok());
  ExpectTaskEq(*task, t2);

  // An update replaces every field but keeps the task's place in the order.
  t1.status = TaskState::kDone;
  t1.attempts = 3;
  t1.dependents = {};
  t1.result_digest = "def456";
  ASSERT_TRUE(store->WriteSync([&](WriteTxn& txn) { return txn.PutTask(t1); }).ok());
  task = store->GetTask("tsk-2");
  ASSERT_TRUE(task.ok());
  ExpectTaskEq(*task, t1);
  got = store->GetWorkflow("wfl-1");
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(got->task_ids, ElementsAre("tsk-2", "tsk-1"));
}

TEST(StoreTest, RoundTripsOtherRecords) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  WorkerRecord wk{"wkr-1", "nod-1", "gpu-box", "BUSY", R"({"gpus":2})", 5.5, 6.75, true};
  WorkerRecord wk2{"wkr-0", "nod-1", "cpu-box", "IDLE", "{}", 1, 2, false};
  NodeRecord node{"nod-1", "alpha", R"({"cpu":16})", 3.25, 4.5};
  ResultRecord result{"tsk-1", "sha256:aa", 1234, "wkr-1", R"({"k":"v"})", 9.125};
  ResultFileRecord f1{"tsk-1", "out/b.txt", "sha256:bb", 10};
  ResultFileRecord f2{"tsk-1", "a.png", "sha256:cc", 20};
  ASSERT_TRUE(store
                  ->WriteSync([&](WriteTxn& txn) {
                    FM_RETURN_IF_ERROR(txn.PutWorker(wk));
                    FM_RETURN_IF_ERROR(txn.PutWorker(wk2));
                    FM_RETURN_IF_ERROR(txn.PutNode(node));
                    FM_RETURN_IF_ERROR(txn.PutResult(result));
                    FM_RETURN_IF_ERROR(txn.PutResultFile(f1));
                    FM_RETURN_IF_ERROR(txn.PutResultFile(f2));
                    FM_RETURN_IF_ERROR(txn.PutSetting("dedup_scope", "tenant"));
                    return txn.AppendEvent(MakeEvent(7, "wfl-1", "tsk-1"));
                  })
                  .ok());

  auto worker = store->GetWorker("wkr-1");
  ASSERT_TRUE(worker.ok());
  EXPECT_EQ(worker->worker_id, "wkr-1");
  EXPECT_EQ(worker->node_id, "nod-1");
  EXPECT_EQ(worker->name, "gpu-box");
  EXPECT_EQ(worker->status, "BUSY");
  EXPECT_EQ(worker->info_json, R"({"gpus":2})");
  EXPECT_EQ(worker->registered_at, 5.5);
  EXPECT_EQ(worker->last_seen, 6.75);
  EXPECT_TRUE(worker->cordoned);
  auto workers = store->ListWorkers();
  ASSERT_TRUE(workers.ok());
  ASSERT_EQ(workers->size(), 2u);
  EXPECT_EQ((*workers)[0].worker_id, "wkr-1");
  EXPECT_EQ((*workers)[1].worker_id, "wkr-0");
  EXPECT_FALSE((*workers)[1].cordoned);

  auto got_node = store->GetNode("nod-1");
  ASSERT_TRUE(got_node.ok());
  EXPECT_EQ(got_node->alias, "alpha");
  EXPECT_EQ(got_node->info_json, R"({"cpu":16})");
  EXPECT_EQ(got_node->registered_at, 3.25);
  EXPECT_EQ(got_node->last_seen, 4.5);
  auto nodes = store->ListNodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 1u);

  auto got_result = store->GetResult("tsk-1");
  ASSERT_TRUE(got_result.ok());
  EXPECT_EQ(got_result->task_id, "tsk-1");
  EXPECT_EQ(got_result->digest, "sha256:aa");
  EXPECT_EQ(got_result->size, 1234);
  EXPECT_EQ(got_result->worker_id, "wkr-1");
  EXPECT_EQ(got_result->metadata_json, R"({"k":"v"})");
  EXPECT_EQ(got_result->received_at, 9.125);

  // Re-putting a file updates it in place.
  f1.size = 11;
  ASSERT_TRUE(store->WriteSync([&](WriteTxn& txn) { return txn.PutResultFile(f1); }).ok());
  auto files = store->ListResultFiles("tsk-1");
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "out/b.txt");
  EXPECT_EQ((*files)[0].digest, "sha256:bb");
  EXPECT_EQ((*files)[0].size, 11);
  EXPECT_EQ((*files)[1].path, "a.png");
  EXPECT_TRUE(store->ListResultFiles("tsk-none")->empty());

  auto setting = store->GetSetting("dedup_scope");
  ASSERT_TRUE(setting.ok());
  EXPECT_EQ(*setting, "tenant");
  ASSERT_TRUE(
      store->WriteSync([](WriteTxn& txn) { return txn.PutSetting("dedup_scope", "global"); }).ok());
  EXPECT_EQ(*store->GetSetting("dedup_scope"), "global");

  EventQuery q;
  q.task_id = "tsk-1";
  auto events = store->ReadEvents(q);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].cursor, 7);
  EXPECT_EQ((*events)[0].workflow_id, "wfl-1");
  EXPECT_EQ((*events)[0].task_id, "tsk-1");
  EXPECT_EQ((*events)[0].ts, 107.0);
  EXPECT_EQ((*events)[0].type, "TASK_LOG");
  EXPECT_EQ((*events)[0].json, R"({"cursor":7})");
}

// Usage rows keep every field, tokens included, and the window and organisation filters hold.
TEST(StoreTest, UsageRowsRoundTripWithTokens) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  UsageRecord a;
  a.task_id = "tsk-1";
  a.workflow_id = "wfl-1";
  a.org_id = "org-a";
  a.principal_id = "usr-1";
  a.supplier_id = "sup-1";
  a.worker_id = "wkr-1";
  a.attempt = 2;
  a.started_at = 100.5;
  a.finished_at = 103.25;
  a.runtime_sec = 2.75;
  a.hardware = "cpu";
  a.cost_per_hour = 0.5;
  a.cost = 0.25;
  a.status = "DONE";
  a.prompt_tokens = 1234;
  a.completion_tokens = 56;
  UsageRecord b = a;
  b.task_id = "tsk-2";
  b.org_id = "org-b";
  b.started_at = 200;
  b.prompt_tokens = 0;
  b.completion_tokens = 0;
  ASSERT_TRUE(store
                  ->WriteSync([&](WriteTxn& txn) {
                    FM_RETURN_IF_ERROR(txn.AppendUsage(a));
                    return txn.AppendUsage(b);
                  })
                  .ok());
  UsageQuery q;
  q.org_id = "org-a";
  auto rows = store->ListUsage(q);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 1u);
  const UsageRecord& got = (*rows)[0];
  EXPECT_GT(got.seq, 0);
  EXPECT_EQ(got.task_id, "tsk-1");
  EXPECT_EQ(got.attempt, 2);
  EXPECT_EQ(got.started_at, 100.5);
  EXPECT_EQ(got.finished_at, 103.25);
  EXPECT_EQ(got.runtime_sec, 2.75);
  EXPECT_EQ(got.hardware, "cpu");
  EXPECT_EQ(got.cost, 0.25);
  EXPECT_EQ(got.status, "DONE");
  EXPECT_EQ(got.prompt_tokens, 1234);
  EXPECT_EQ(got.completion_tokens, 56);
  UsageQuery window;
  window.from = 150;
  auto later = store->ListUsage(window);
  ASSERT_TRUE(later.ok());
  ASSERT_EQ(later->size(), 1u);
  EXPECT_EQ((*later)[0].task_id, "tsk-2");
  EXPECT_EQ((*later)[0].prompt_tokens, 0);
}

TEST(StoreTest, MissingIdsAreNotFoundAndNamed) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  auto expect_not_found = [](const Status& s, const std::string& id) {
    EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
    EXPECT_THAT(s.message(), HasSubstr(id));
  };
  expect_not_found(store->GetWorkflow("wfl-missing").status(), "wfl-missing");
  expect_not_found(store->GetTask("tsk-missing").status(), "tsk-missing");
  expect_not_found(store->GetWorker("wkr-missing").status(), "wkr-missing");
  expect_not_found(store->GetNode("nod-missing").status(), "nod-missing");
  expect_not_found(store->GetResult("tsk-nores").status(), "tsk-nores");
  expect_not_found(store->GetSetting("no_such_key").status(), "no_such_key");
}

TEST(StoreTest, ListTasksHonoursFilters) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  std::vector<TaskRecord> tasks;
  for (int i = 0; i < 6; ++i) {
    TaskRecord t = MakeTask("tsk-" + std::to_string(i), i < 4 ? "wfl-a" : "wfl-b");
    t.status = i % 2 ? TaskState::kDone : TaskState::kPending;
    t.task_type = i < 3 ? "echo" : "llm";
    t.category = i == 5 ? "training" : "inference";
    t.assigned_worker = i == 1 ? "wkr-7" : "";
    t.graph_node_name = i == 2 ? "special" : "plain";
    t.org_id = i == 0 ? "org-b" : "org-a";
    tasks.push_back(t);
  }
  ASSERT_TRUE(store
                  ->WriteSync([&](WriteTxn& txn) {
                    for (const auto& t : tasks) FM_RETURN_IF_ERROR(txn.PutTask(t));
                    return Status::Ok();
                  })
                  .ok());
  auto list = [&](const TaskFilter& f) {
    auto r = store->ListTasks(f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? TaskIds(*r) : std::vector<std::string>{};
  };
  TaskFilter f;
  EXPECT_THAT(list(f), ElementsAre("tsk-0", "tsk-1", "tsk-2", "tsk-3", "tsk-4", "tsk-5"));
  f.limit = 2;
  EXPECT_THAT(list(f), ElementsAre("tsk-0", "tsk-1"));
  f = {};
  f.workflow_id = "wfl-b";
  EXPECT_THAT(list(f), ElementsAre("tsk-4", "tsk-5"));
  f = {};
  f.status = "DONE";
  EXPECT_THAT(list(f), ElementsAre("tsk-1", "tsk-3", "tsk-5"));
  f = {};
  f.task_type = "llm";
  EXPECT_THAT(list(f), ElementsAre("tsk-3", "tsk-4", "tsk-5"));
  f = {};
  f.category = "training";
  EXPECT_THAT(list(f), ElementsAre("tsk-5"));
  f = {};
  f.assigned_worker = "wkr-7";
  EXPECT_THAT(list(f), ElementsAre("tsk-1"));
  f = {};
  f.graph_node_name = "special";
  EXPECT_THAT(list(f), ElementsAre("tsk-2"));
  f = {};
  f.org_id = "org-b";
  EXPECT_THAT(list(f), ElementsAre("tsk-0"));
  // Combined filters intersect.
  f = {};
  f.workflow_id = "wfl-a";
  f.status = "PENDING";
  f.task_type = "echo";
  EXPECT_THAT(list(f), ElementsAre("tsk-0", "tsk-2"));
  f.org_id = "org-a";
  EXPECT_THAT(list(f), ElementsAre("tsk-2"));
  f.limit = 1;
  f.org_id.clear();
  EXPECT_THAT(list(f), ElementsAre("tsk-0"));
  f = {};
  f.workflow_id = "wfl-none";
  EXPECT_TRUE(list(f).empty());
}

TEST(StoreTest, ListWorkflowsHonoursFiltersAndFillsTaskIds) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->WriteSync([&](WriteTxn& txn) {
                    WorkflowRecord a = MakeWorkflow("wfl-a", "DONE");
                    WorkflowRecord b = MakeWorkflow("wfl-b", "PENDING");
                    b.org_id = "org-b";
                    WorkflowRecord c = MakeWorkflow("wfl-c", "DONE");
                    c.name = "special";
                    FM_RETURN_IF_ERROR(txn.PutWorkflow(a));
                    FM_RETURN_IF_ERROR(txn.PutWorkflow(b));
                    FM_RETURN_IF_ERROR(txn.PutWorkflow(c));
                    FM_RETURN_IF_ERROR(txn.PutTask(MakeTask("tsk-b1", "wfl-b")));
                    FM_RETURN_IF_ERROR(txn.PutTask(MakeTask("tsk-a1", "wfl-a")));
                    return txn.PutTask(MakeTask("tsk-b2", "wfl-b"));
                  })
                  .ok());
  auto ids = [&](const WorkflowFilter& f) {
    std::vector<std::string> out;
    auto r = store->ListWorkflows(f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) {
      for (const auto& w : *r) out.push_back(w.workflow_id);
    }
    return out;
  };
  WorkflowFilter f;
  EXPECT_THAT(ids(f), ElementsAre("wfl-a", "wfl-b", "wfl-c"));
  f.status = "DONE";
  EXPECT_THAT(ids(f), ElementsAre("wfl-a", "wfl-c"));
  f.limit = 1;
  EXPECT_THAT(ids(f), ElementsAre("wfl-a"));
  f = {};
  f.name = "special";
  EXPECT_THAT(ids(f), ElementsAre("wfl-c"));
  f = {};
  f.org_id = "org-b";
  EXPECT_THAT(ids(f), ElementsAre("wfl-b"));
  f.status = "DONE";
  EXPECT_TRUE(ids(f).empty());

  auto all = store->ListWorkflows({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_THAT((*all)[0].task_ids, ElementsAre("tsk-a1"));
  EXPECT_THAT((*all)[1].task_ids, ElementsAre("tsk-b1", "tsk-b2"));
  EXPECT_TRUE((*all)[2].task_ids.empty());
}

TEST(StoreTest, EventPaging) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  auto max = store->MaxEventCursor();
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(*max, 0);
  // Cursors 1..20; odd ones belong to wfl-a/tsk-1, even ones to wfl-b/tsk-2.
  ASSERT_TRUE(store
                  ->WriteSync([&](WriteTxn& txn) {
                    for (int64_t c = 1; c <= 20; ++c) {
                      FM_RETURN_IF_ERROR(txn.AppendEvent(
                          c % 2 ? MakeEvent(c, "wfl-a", "tsk-1") : MakeEvent(c, "wfl-b", "tsk-2")));
                    }
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(*store->MaxEventCursor(), 20);

  auto read = [&](const EventQuery& q) {
    auto r = store->ReadEvents(q);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? Cursors(*r) : std::vector<std::string>{};
  };
  EventQuery q;
  q.workflow_id = "wfl-a";
  EXPECT_THAT(read(q), ElementsAre("1", "3", "5", "7", "9", "11", "13", "15", "17", "19"));
  q.after = 9;
  EXPECT_THAT(read(q), ElementsAre("11", "13", "15", "17", "19"));
  q.limit = 2;
  EXPECT_THAT(read(q), ElementsAre("11", "13"));
  q.before = 13;
  q.limit = 500;
  EXPECT_THAT(read(q), ElementsAre("11"));
  q.after = 0;
  q.before = 10;
  EXPECT_THAT(read(q), ElementsAre("1", "3", "5", "7", "9"));
  // newest_first: the page just before `before`, still ascending.
  q.limit = 2;
  q.newest_first = true;
  EXPECT_THAT(read(q), ElementsAre("7", "9"));
  q.before = 0;
  EXPECT_THAT(read(q), ElementsAre("17", "19"));
  q.limit = 3;
  q.before = 6;
  EXPECT_THAT(read(q), ElementsAre("1", "3", "5"));

  EventQuery by_task;
  by_task.task_id = "tsk-2";
  by_task.after = 14;
  EXPECT_THAT(read(by_task), ElementsAre("16", "18", "20"));
  by_task.after = 0;
  by_task.before = 9;
  by_task.limit = 2;
  by_task.newest_first = true;
  EXPECT_THAT(read(by_task), ElementsAre("6", "8"));

  EventQuery everything;
  everything.after = 17;
  EXPECT_THAT(read(everything), ElementsAre("18", "19", "20"));

  EventQuery both;
  both.workflow_id = "wfl-a";
  both.task_id = "tsk-1";
  EXPECT_EQ(store->ReadEvents(both).status().code(), StatusCode::kInvalidArgument);

  // A duplicate cursor fails; cursor 0 takes the next free one.
  Status dup =
      store->WriteSync([](WriteTxn& txn) { return txn.AppendEvent(MakeEvent(5, "w", "t")); });
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists) << dup.ToString();
  ASSERT_TRUE(
      store->WriteSync([](WriteTxn& txn) { return txn.AppendEvent(MakeEvent(0, "w", "t")); }).ok());
  EXPECT_EQ(*store->MaxEventCursor(), 21);
}

TEST(StoreTest, GroupCommitBatchesQueuedWrites) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  WriterGate gate;
  store->Write(gate.Op());
  gate.WaitEntered();  // the writer is now busy: everything below queues up

  constexpr int kWrites = 5000;
  std::atomic<int> ok_count{0};
  std::atomic<int> done_count{0};
  for (int i = 0; i < kWrites; ++i) {
    TaskRecord t = MakeTask("tsk-" + std::to_string(i), "wfl-1");
    store->Write(
        [t](WriteTxn& txn) {
          FM_RETURN_IF_ERROR(txn.PutTask(t));
          return txn.AppendEvent(MakeEvent(0, t.workflow_id, t.task_id));
        },
        [&](const Status& s) {
          if (s.ok()) ok_count.fetch_add(1);
          done_count.fetch_add(1);
        });
  }
  gate.Release();
  store->Flush();

  EXPECT_EQ(done_count.load(), kWrites);
  EXPECT_EQ(ok_count.load(), kWrites);
  EXPECT_EQ(store->operations_committed(), static_cast<uint64_t>(kWrites + 1));
  // The gate's transaction, then 5,000 queued ops in batches of at most 4,096.
  EXPECT_LE(store->transactions_committed(), 3u);
  TaskFilter f;
  f.workflow_id = "wfl-1";
  auto tasks = store->ListTasks(f);
  ASSERT_TRUE(tasks.ok());
  EXPECT_EQ(tasks->size(), static_cast<size_t>(kWrites));
  EXPECT_EQ(*store->MaxEventCursor(), kWrites);
  EventQuery all_of_wfl;
  all_of_wfl.workflow_id = "wfl-1";
  all_of_wfl.limit = 0;
  auto w = store->ReadEvents(all_of_wfl);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->size(), static_cast<size_t>(kWrites));
}

TEST(StoreTest, MaxBatchBoundsTransactionSize) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db", /*max_batch=*/10);
  ASSERT_NE(store, nullptr);
  WriterGate gate;
  store->Write(gate.Op());
  gate.WaitEntered();
  for (int i = 0; i < 100; ++i) {
    store->Write([i](WriteTxn& txn) { return txn.PutSetting("k" + std::to_string(i), "v"); });
  }
  gate.Release();
  store->Flush();
  EXPECT_EQ(store->transactions_committed(), 11u);
  EXPECT_EQ(store->operations_committed(), 101u);
}

TEST(StoreTest, FailingOpInBatchFailsAlone) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->WriteSync([](WriteTxn& txn) { return txn.AppendEvent(MakeEvent(1, "w", "t")); }).ok());

  WriterGate gate;
  store->Write(gate.Op());
  gate.WaitEntered();
  std::vector<Status> results(5, Internal("done not called"));
  auto record = [&](size_t i) { return [&results, i](const Status& s) { results[i] = s; }; };
  store->Write([](WriteTxn& txn) { return txn.PutTask(MakeTask("tsk-a", "wfl-1")); }, record(0));
  // Writes, then fails: its write must be rolled back.
  store->Write(
      [](WriteTxn& txn) {
        FM_RETURN_IF_ERROR(txn.PutTask(MakeTask("tsk-bad", "wfl-1")));
        return InvalidArgument("op refuses");
      },
      record(1));
  store->Write([](WriteTxn& txn) { return txn.PutTask(MakeTask("tsk-b", "wfl-1")); }, record(2));
  // Fails inside SQLite: duplicate cursor.
  store->Write(
      [](WriteTxn& txn) {
        FM_RETURN_IF_ERROR(txn.PutSetting("from-dup-op", "x"));
        return txn.AppendEvent(MakeEvent(1, "w", "t"));
      },
      record(3));
  store->Write([](WriteTxn& txn) { return txn.AppendEvent(MakeEvent(2, "w", "t")); }, record(4));
  gate.Release();
  store->Flush();

  EXPECT_TRUE(results[0].ok()) << results[0].ToString();
  EXPECT_EQ(results[1].code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(results[1].message(), "op refuses");
  EXPECT_TRUE(results[2].ok()) << results[2].ToString();
  EXPECT_EQ(results[3].code(), StatusCode::kAlreadyExists) << results[3].ToString();
  EXPECT_TRUE(results[4].ok()) << results[4].ToString();

  EXPECT_TRUE(store->GetTask("tsk-a").ok());
  EXPECT_TRUE(store->GetTask("tsk-b").ok());
  EXPECT_EQ(store->GetTask("tsk-bad").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetSetting("from-dup-op").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store->MaxEventCursor(), 2);
  // The first WriteSync, the gate, then the three good ops one per transaction.
  EXPECT_EQ(store->operations_committed(), 5u);
}

TEST(StoreTest, OpThatThrowsFailsWithoutKillingTheWriter) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  Status s = store->WriteSync([](WriteTxn&) -> Status { throw std::runtime_error("kaput"); });
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("kaput"));
  EXPECT_TRUE(store->WriteSync([](WriteTxn& txn) { return txn.PutSetting("a", "b"); }).ok());
}

TEST(StoreTest, DurableAcrossReopen) {
  testing::TempDir dir;
  const std::string path = dir / "state.db";
  std::atomic<int> done{0};
  {
    auto store = OpenStore(path);
    ASSERT_NE(store, nullptr);
    Status put =
        store->WriteSync([](WriteTxn& txn) { return txn.PutWorkflow(MakeWorkflow("wfl-1")); });
    ASSERT_TRUE(put.ok()) << put.ToString();
    // Queued but not waited for: the destructor drains them.
    for (int i = 0; i < 200; ++i) {
      store->Write(
          [i](WriteTxn& txn) {
            FM_RETURN_IF_ERROR(txn.PutTask(MakeTask("tsk-" + std::to_string(i), "wfl-1")));
            return txn.AppendEvent(MakeEvent(i + 1, "wfl-1", "tsk-" + std::to_string(i)));
          },
          [&](const Status& s) {
            if (s.ok()) done.fetch_add(1);
          });
    }
    store->Write([](WriteTxn& txn) {
      FM_RETURN_IF_ERROR(txn.PutWorker({"wkr-1", "nod-1", "w", "IDLE", "{}", 1, 2, false}));
      FM_RETURN_IF_ERROR(txn.PutNode({"nod-1", "n", "{}", 1, 2}));
      FM_RETURN_IF_ERROR(txn.PutResult({"tsk-0", "d", 1, "wkr-1", "{}", 3}));
      FM_RETURN_IF_ERROR(txn.PutResultFile({"tsk-0", "f", "d2", 2}));
      return txn.PutSetting("k", "v");
    });
  }
  EXPECT_EQ(done.load(), 200);

  auto store = OpenStore(path);
  ASSERT_NE(store, nullptr);
  auto w = store->GetWorkflow("wfl-1");
  ASSERT_TRUE(w.ok());
  ExpectWorkflowEq(*w, MakeWorkflow("wfl-1"));
  ASSERT_EQ(w->task_ids.size(), 200u);
  EXPECT_EQ(w->task_ids.front(), "tsk-0");
  EXPECT_EQ(w->task_ids.back(), "tsk-199");
  auto t = store->GetTask("tsk-57");
  ASSERT_TRUE(t.ok());
  ExpectTaskEq(*t, MakeTask("tsk-57", "wfl-1"));
  EXPECT_EQ(*store->MaxEventCursor(), 200);
  EXPECT_TRUE(store->GetWorker("wkr-1").ok());
  EXPECT_TRUE(store->GetNode("nod-1").ok());
  EXPECT_TRUE(store->GetResult("tsk-0").ok());
  EXPECT_EQ(store->ListResultFiles("tsk-0")->size(), 1u);
  EXPECT_EQ(*store->GetSetting("k"), "v");
}

TEST(StoreTest, SchemaVersionAndDefaultOrg) {
  testing::TempDir dir;
  const std::string path = dir / "state.db";
  { ASSERT_NE(OpenStore(path), nullptr); }
  { ASSERT_NE(OpenStore(path), nullptr); }  // reopening migrates nothing and succeeds

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  auto query_text = [&](const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK) << sql;
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* p = sqlite3_column_text(stmt, 0);
      out = p ? reinterpret_cast<const char*>(p) : "";
    }
    sqlite3_finalize(stmt);
    return out;
  };
  EXPECT_EQ(query_text("PRAGMA user_version"), std::to_string(LatestSchemaVersion()));
  EXPECT_EQ(query_text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query_text("SELECT org_id FROM orgs"), kDefaultOrg);
  EXPECT_EQ(query_text("SELECT COUNT(*) FROM orgs"), "1");
  // A file from a newer build is refused, not silently used.
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  StoreConfig config;
  config.path = path;
  auto newer = Store::Open(config);
  EXPECT_EQ(newer.status().code(), StatusCode::kFailedPrecondition) << newer.status().ToString();
}

// Migration 5: schedule hints that older builds kept inside the spec (`_schedule`) move to
// the record's schedule_json; the spec keeps everything else.
TEST(StoreTest, MigrationMovesScheduleHintsOutOfTheSpec) {
  testing::TempDir dir;
  const std::string path = dir / "state.db";
  {
    auto store = OpenStore(path);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store
                    ->WriteSync([](WriteTxn& txn) {
                      FM_RETURN_IF_ERROR(txn.PutWorkflow(MakeWorkflow("wfl-1", "PENDING")));
                      TaskRecord old = MakeTask("tsk-old", "wfl-1");
                      old.spec_json =
                          R"({"echo":{"x":1},"_schedule":{"epoch":1,"pos":0,"workers":["w1"]}})";
                      FM_RETURN_IF_ERROR(txn.PutTask(old));
                      TaskRecord plain = MakeTask("tsk-plain", "wfl-1");
                      plain.spec_json = R"({"echo":{"x":2}})";
                      return txn.PutTask(plain);
                    })
                    .ok());
  }
  // Turn the file back into a version-4 database, as an older build left it.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "ALTER TABLE tasks DROP COLUMN schedule_json;"
                         "ALTER TABLE usage DROP COLUMN prompt_tokens;"
                         "ALTER TABLE usage DROP COLUMN completion_tokens;"
                         "DROP TABLE collections;"
                         "PRAGMA user_version=4",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  auto store = OpenStore(path);
  ASSERT_NE(store, nullptr);
  auto old = store->GetTask("tsk-old");
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(nlohmann::json::parse(old->spec_json), nlohmann::json::parse(R"({"echo":{"x":1}})"));
  EXPECT_EQ(nlohmann::json::parse(old->schedule_json),
            nlohmann::json::parse(R"({"epoch":1,"pos":0,"workers":["w1"]})"));
  auto plain = store->GetTask("tsk-plain");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(nlohmann::json::parse(plain->spec_json), nlohmann::json::parse(R"({"echo":{"x":2}})"));
  EXPECT_EQ(plain->schedule_json, "{}");
}

TEST(StoreTest, LoadActiveWorkflows) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store
                  ->WriteSync([](WriteTxn& txn) {
                    for (const char* status :
                         {"PENDING", "DONE", "DISPATCHED", "FAILED", "CANCELLED"}) {
                      std::string id = std::string("wfl-") + status;
                      FM_RETURN_IF_ERROR(txn.PutWorkflow(MakeWorkflow(id, status)));
                      FM_RETURN_IF_ERROR(txn.PutTask(MakeTask("tsk-1-" + id, id)));
                      FM_RETURN_IF_ERROR(txn.PutTask(MakeTask("tsk-2-" + id, id)));
                    }
                    return Status::Ok();
                  })
                  .ok());
  auto active = store->LoadActiveWorkflows();
  ASSERT_TRUE(active.ok()) << active.status().ToString();
  ASSERT_EQ(active->size(), 2u);
  EXPECT_EQ((*active)[0].workflow_id, "wfl-PENDING");
  EXPECT_THAT((*active)[0].task_ids, ElementsAre("tsk-1-wfl-PENDING", "tsk-2-wfl-PENDING"));
  EXPECT_EQ((*active)[1].workflow_id, "wfl-DISPATCHED");
  EXPECT_EQ((*active)[1].status, "DISPATCHED");
  EXPECT_THAT((*active)[1].task_ids, ElementsAre("tsk-1-wfl-DISPATCHED", "tsk-2-wfl-DISPATCHED"));

  // Finishing a workflow removes it from the active set.
  ASSERT_TRUE(store->WriteSync([](WriteTxn& txn) {
                     return txn.PutWorkflow(MakeWorkflow("wfl-PENDING", "DONE"));
                   })
                  .ok());
  active = store->LoadActiveWorkflows();
  ASSERT_TRUE(active.ok());
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].workflow_id, "wfl-DISPATCHED");
}

TEST(StoreTest, ConcurrentReadersDuringWrites) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->WriteSync([](WriteTxn& txn) { return txn.PutWorkflow(MakeWorkflow("wfl-1")); })
                  .ok());
  std::atomic<bool> writing{true};
  std::atomic<int> errors{0};
  std::atomic<int> reads{0};
  auto reader = [&](int which) {
    int64_t last_cursor = 0;
    size_t last_tasks = 0;
    // At least a few rounds each, and keep going while the writer works.
    for (int round = 0; round < 20 || writing.load(); ++round) {
      auto w = store->GetWorkflow("wfl-1");
      EventQuery q;
      q.workflow_id = "wfl-1";
      q.limit = 0;
      auto events = store->ReadEvents(q);
      auto max = store->MaxEventCursor();
      TaskFilter f;
      f.workflow_id = "wfl-1";
      f.status = which % 2 ? "DONE" : "";
      auto tasks = store->ListTasks(f);
      if (!w.ok() || !events.ok() || !max.ok() || !tasks.ok()) {
        errors.fetch_add(1);
        continue;
      }
      // Committed data only grows.
      if (*max < last_cursor || (which % 2 == 0 && tasks->size() < last_tasks)) errors.fetch_add(1);
      last_cursor = *max;
      last_tasks = which % 2 == 0 ? tasks->size() : last_tasks;
      reads.fetch_add(1);
    }
  };
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader, i);
  for (int i = 0; i < 2000; ++i) {
    store->Write([i](WriteTxn& txn) {
      TaskRecord t = MakeTask("tsk-" + std::to_string(i), "wfl-1");
      t.status = i % 2 ? TaskState::kDone : TaskState::kPending;
      FM_RETURN_IF_ERROR(txn.PutTask(t));
      return txn.AppendEvent(MakeEvent(i + 1, "wfl-1", t.task_id));
    });
    if (i % 500 == 499) store->Flush();
  }
  store->Flush();
  writing.store(false);
  for (auto& t : readers) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GE(reads.load(), 60);
  EXPECT_EQ(*store->MaxEventCursor(), 2000);
  EXPECT_EQ(store->GetWorkflow("wfl-1")->task_ids.size(), 2000u);
}

}  // namespace
}  // namespace flowmesh::state

namespace flowmesh::state {
namespace {

TEST(StoreBlobTest, SmallBlobsRoundTripBinarySafe) {
  testing::TempDir dir;
  StoreConfig cfg;
  cfg.path = dir / "blobs.db";
  auto store = Store::Open(cfg);
  ASSERT_TRUE(store.ok());
  std::string bytes("a\0b\xff\x01", 5);
  ASSERT_TRUE((*store)->WriteSync([&](WriteTxn& txn) { return txn.PutBlob("d1", bytes); }).ok());
  // Idempotent: a second put of the same digest is a no-op, not an error.
  ASSERT_TRUE((*store)->WriteSync([&](WriteTxn& txn) { return txn.PutBlob("d1", bytes); }).ok());
  auto got = (*store)->GetBlob("d1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, bytes);
  EXPECT_EQ((*store)->GetBlob("nope").status().code(), StatusCode::kNotFound);
}


CollectionRecord MakeCollection(const std::string& org, const std::string& name, int version) {
  CollectionRecord c;
  c.org_id = org;
  c.name = name;
  c.version = version;
  c.status = "building";
  c.workflow_id = "wf-" + name;
  c.task_id = "task-" + name;
  c.build_json = R"({"model":{"source":"m"}})";
  c.created_at = c.updated_at = 1700000000.5;
  return c;
}

TEST(StoreTest, CollectionVersionsRoundTripAndHoldTheirBlobsWhileReady) {
  testing::TempDir dir;
  auto store = OpenStore(dir / "state.db");
  ASSERT_NE(store, nullptr);
  CollectionRecord v1 = MakeCollection("org-a", "docs", 1);
  CollectionRecord other = MakeCollection("org-b", "docs", 1);
  ASSERT_TRUE(store->WriteSync([&](WriteTxn& t) {
    FM_RETURN_IF_ERROR(t.PutCollection(v1));
    return t.PutCollection(other);
  }).ok());
  // Building: no reference yet.
  EXPECT_FALSE(store->BlobRefs("idx1").ok());

  v1.status = "ready";
  v1.model_key = "local:m";
  v1.dim = 64;
  v1.count = 10;
  v1.documents = 4;
  v1.metric = "cosine";
  v1.index_digest = "idx1";
  v1.index_size = 100;
  v1.entries_digest = "ent1";
  v1.entries_size = 50;
  ASSERT_TRUE(store->WriteSync([&](WriteTxn& t) { return t.PutCollection(v1); }).ok());
  ASSERT_TRUE(store->WriteSync([&](WriteTxn& t) { return t.PutCollection(v1); }).ok());  // again
  EXPECT_EQ(*store->BlobRefs("idx1"), 1);
  EXPECT_EQ(*store->BlobRefs("ent1"), 1);

  CollectionRecord v2 = v1;
  v2.version = 2;
  v2.index_digest = "idx2";  // the entries are shared with v1
  ASSERT_TRUE(store->WriteSync([&](WriteTxn& t) { return t.PutCollection(v2); }).ok());
  EXPECT_EQ(*store->BlobRefs("ent1"), 2);

  auto mine = store->ListCollections("org-a", "");
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 2u);
  EXPECT_EQ((*mine)[0].version, 1);
  EXPECT_EQ((*mine)[1].version, 2);
  EXPECT_EQ((*mine)[1].index_digest, "idx2");
  EXPECT_EQ((*mine)[0].bytes(), 150);
  EXPECT_EQ((*mine)[0].build_json, v1.build_json);
  EXPECT_EQ(store->ListCollections("org-b", "docs")->size(), 1u);
  EXPECT_EQ(store->ListCollections("", "")->size(), 3u);
  EXPECT_TRUE(store->ListCollections("org-a", "nope")->empty());

  ASSERT_TRUE(store->WriteSync([&](WriteTxn& t) { return t.DeleteCollection("org-a", "docs"); }).ok());
  EXPECT_EQ(*store->BlobRefs("idx1"), 0);
  EXPECT_EQ(*store->BlobRefs("idx2"), 0);
  EXPECT_EQ(*store->BlobRefs("ent1"), 0);
  EXPECT_TRUE(store->ListCollections("org-a", "")->empty());
  EXPECT_EQ(store->ListCollections("org-b", "")->size(), 1u);  // the other organisation's stays
  // A new version after a delete starts again at 1; the next one is 2.
  int first = 0, second = 0;
  ASSERT_TRUE(store->WriteSync([&](WriteTxn& t) -> Status {
    FM_ASSIGN_OR_RETURN(first, t.AddCollectionVersion(MakeCollection("org-a", "docs", 0)));
    FM_ASSIGN_OR_RETURN(second, t.AddCollectionVersion(MakeCollection("org-a", "docs", 0)));
    return Status::Ok();
  }).ok());
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 2);
  ASSERT_TRUE(store->WriteSync([&](WriteTxn& t) { return t.DeleteCollection("org-a", "docs"); }).ok());
  Status gone = store->WriteSync([&](WriteTxn& t) { return t.DeleteCollection("org-a", "docs"); });
  EXPECT_EQ(gone.code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace flowmesh::state
