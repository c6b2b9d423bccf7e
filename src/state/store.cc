#include "state/store.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string_view>
#include <thread>
#include <utility>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread_annotations.h"
#include "state/provenance.h"
#include "state/schema.h"
#include "state/sqlite_db.h"

namespace flowmesh::state {
namespace {

// ---------------------------------------------------------------------------------------
// SQL text. Built once from column lists so SELECT order and the readers below agree.

using Columns = std::span<const std::string_view>;

std::string Join(Columns cols, std::string_view sep) {
  std::string out;
  for (std::string_view c : cols) {
    if (!out.empty()) out += sep;
    out += c;
  }
  return out;
}

// INSERT … ON CONFLICT(key) DO UPDATE: unlike INSERT OR REPLACE it keeps the row's `seq`,
// so listing order stays first-insertion order. Parameters are ?1.. in column order.
std::string UpsertSql(std::string_view table, Columns cols, Columns keys) {
  std::string params;
  std::string updates;
  for (size_t i = 0; i < cols.size(); ++i) {
    params += fmt::format("{}?{}", i > 0 ? "," : "", i + 1);
    if (std::find(keys.begin(), keys.end(), cols[i]) != keys.end()) continue;
    updates += fmt::format("{}{}=excluded.{}", updates.empty() ? "" : ",", cols[i], cols[i]);
  }
  return fmt::format("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT({}) DO UPDATE SET {}", table,
                     Join(cols, ","), params, Join(keys, ","), updates);
}

// Column lists: SELECTs return these columns in this order, and the Read* codecs below
// read them by position.
constexpr auto kWorkflowCols = std::to_array<std::string_view>(
    {"workflow_id", "name", "org_id", "owner_id", "format", "source_text", "submitted_at",
     "updated_at", "status"});
constexpr auto kTaskCols = std::to_array<std::string_view>(
    {"task_id",       "workflow_id",     "org_id",        "owner_id",           "supplier_id",
     "task_name",     "graph_node_name", "task_type",     "category",           "status",
     "assigned_worker", "submitted_at",  "dispatched_ts", "started_ts",         "finished_ts",
     "attempts",      "max_attempts",    "failed_workers", "depends_on",        "dependents",
     "last_error",    "error",           "spec_json",     "latest_update_json", "result_digest",
     "usages_json",   "merge_key",       "merged_parent_id", "schedule_json"});
constexpr auto kWorkerCols = std::to_array<std::string_view>(
    {"worker_id", "node_id", "name", "status", "info_json", "registered_at", "last_seen",
     "cordoned"});
constexpr auto kNodeCols = std::to_array<std::string_view>(
    {"node_id", "alias", "info_json", "registered_at", "last_seen"});
constexpr auto kResultCols = std::to_array<std::string_view>(
    {"task_id", "digest", "size", "worker_id", "metadata_json", "received_at"});
constexpr auto kResultFileCols =
    std::to_array<std::string_view>({"task_id", "path", "digest", "size"});
constexpr auto kEventCols =
    std::to_array<std::string_view>({"cursor", "workflow_id", "task_id", "ts", "type", "json"});
constexpr auto kSettingCols = std::to_array<std::string_view>({"key", "value"});
constexpr auto kOrgCols =
    std::to_array<std::string_view>({"org_id", "name", "created_at", "policy_json"});
constexpr auto kApiKeyCols = std::to_array<std::string_view>(
    {"key_id", "org_id", "principal_id", "name", "scopes", "key_hash", "prefix", "created_at",
     "revoked_at"});
constexpr auto kUsageCols = std::to_array<std::string_view>(
    {"task_id", "workflow_id", "org_id", "principal_id", "supplier_id", "worker_id", "attempt",
     "started_at", "finished_at", "runtime_sec", "hardware", "cost_per_hour", "cost", "status",
     "seq"});

constexpr std::string_view kTaskIdKey[] = {"task_id"};

struct Sql {
  std::string upsert_workflow =
      UpsertSql("workflows", kWorkflowCols, Columns(kWorkflowCols).first(1));
  std::string upsert_task = UpsertSql("tasks", kTaskCols, kTaskIdKey);
  std::string upsert_worker = UpsertSql("workers", kWorkerCols, Columns(kWorkerCols).first(1));
  std::string upsert_node = UpsertSql("nodes", kNodeCols, Columns(kNodeCols).first(1));
  std::string upsert_result = UpsertSql("results", kResultCols, kTaskIdKey);
  std::string upsert_result_file =
      UpsertSql("result_files", kResultFileCols, Columns(kResultFileCols).first(2));
  std::string upsert_setting = UpsertSql("settings", kSettingCols, Columns(kSettingCols).first(1));
  std::string upsert_org = UpsertSql("orgs", kOrgCols, Columns(kOrgCols).first(1));
  std::string upsert_api_key = UpsertSql("api_keys", kApiKeyCols, Columns(kApiKeyCols).first(1));
  std::string insert_usage = fmt::format(
      "INSERT INTO usage ({}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)",
      Join(Columns(kUsageCols).first(14), ","));
  std::string list_orgs = fmt::format("SELECT {} FROM orgs ORDER BY rowid", Join(kOrgCols, ","));
  std::string list_api_keys =
      fmt::format("SELECT {} FROM api_keys ORDER BY seq", Join(kApiKeyCols, ","));
  std::string list_usage = fmt::format(
      "SELECT {} FROM usage WHERE (?1='' OR org_id=?1) AND started_at>=?2 AND started_at<?3 "
      "ORDER BY seq",
      Join(kUsageCols, ","));
  std::string insert_event = fmt::format("INSERT INTO events ({}) VALUES (?1,?2,?3,?4,?5,?6)",
                                         Join(kEventCols, ","));

  std::string workflow_cols = Join(kWorkflowCols, ",");
  std::string task_cols = Join(kTaskCols, ",");
  std::string event_cols = Join(kEventCols, ",");

  std::string get_workflow =
      fmt::format("SELECT {} FROM workflows WHERE workflow_id=?1", workflow_cols);
  std::string active_workflows = fmt::format(
      "SELECT {} FROM workflows WHERE status NOT IN ('DONE','FAILED','CANCELLED') ORDER BY seq",
      workflow_cols);
  std::string task_ids_of_workflow = "SELECT task_id FROM tasks WHERE workflow_id=?1 ORDER BY seq";
  std::string get_task = fmt::format("SELECT {} FROM tasks WHERE task_id=?1", task_cols);
  std::string list_workers =
      fmt::format("SELECT {} FROM workers ORDER BY seq", Join(kWorkerCols, ","));
  std::string get_worker =
      fmt::format("SELECT {} FROM workers WHERE worker_id=?1", Join(kWorkerCols, ","));
  std::string list_nodes = fmt::format("SELECT {} FROM nodes ORDER BY seq", Join(kNodeCols, ","));
  std::string get_node =
      fmt::format("SELECT {} FROM nodes WHERE node_id=?1", Join(kNodeCols, ","));
  std::string get_result =
      fmt::format("SELECT {} FROM results WHERE task_id=?1", Join(kResultCols, ","));
  std::string list_result_files = fmt::format(
      "SELECT {} FROM result_files WHERE task_id=?1 ORDER BY seq", Join(kResultFileCols, ","));
  std::string get_setting = "SELECT value FROM settings WHERE key=?1";
  std::string insert_blob =
      "INSERT OR IGNORE INTO blobs (digest, size, data, created_at) VALUES (?1, ?2, ?3, ?4)";
  std::string get_blob = "SELECT data FROM blobs WHERE digest=?1";
  std::string max_cursor = "SELECT COALESCE(MAX(cursor), 0) FROM events";

  // ReadEvents: [scope: workflow | task | all][direction: asc | desc]; parameters are
  // ?1 scope id (absent for "all"), ?2 after, ?3 before, ?4 limit.
  std::array<std::array<std::string, 2>, 3> read_events;

  // List statements per combination of non-empty filter fields (bit i = field i).
  static constexpr std::array<std::string_view, 7> kTaskFilterCols = {
      "workflow_id", "status", "task_type", "category", "assigned_worker", "graph_node_name",
      "org_id"};
  static constexpr std::array<std::string_view, 3> kWorkflowFilterCols = {"status", "name",
                                                                          "org_id"};
  std::array<std::string, 1 << kTaskFilterCols.size()> list_tasks;
  std::array<std::string, 1 << kWorkflowFilterCols.size()> list_workflows;

  Sql() {
    const std::array<std::string_view, 3> scopes = {"workflow_id=?1 AND ", "task_id=?1 AND ", ""};
    for (size_t s = 0; s < scopes.size(); ++s) {
      for (int desc = 0; desc < 2; ++desc) {
        read_events[s][static_cast<size_t>(desc)] = fmt::format(
            "SELECT {} FROM events WHERE {}cursor>?2 AND cursor<?3 ORDER BY cursor {} LIMIT ?4",
            event_cols, scopes[s], desc ? "DESC" : "ASC");
      }
    }
    list_tasks = ListSqls<kTaskFilterCols.size()>("tasks", task_cols, kTaskFilterCols);
    list_workflows =
        ListSqls<kWorkflowFilterCols.size()>("workflows", workflow_cols, kWorkflowFilterCols);
  }

  // Filter values bind to ?1.. in field order (set fields only), then LIMIT.
  template <size_t N>
  static std::array<std::string, 1 << N> ListSqls(std::string_view table, std::string_view cols,
                                                   const std::array<std::string_view, N>& fields) {
    std::array<std::string, 1 << N> out;
    for (unsigned mask = 0; mask < (1u << N); ++mask) {
      std::string where;
      int param = 0;
      for (size_t i = 0; i < N; ++i) {
        if (mask & (1u << i)) {
          where += fmt::format("{}{}=?{}", where.empty() ? " WHERE " : " AND ", fields[i], ++param);
        }
      }
      out[mask] =
          fmt::format("SELECT {} FROM {}{} ORDER BY seq LIMIT ?{}", cols, table, where, param + 1);
    }
    return out;
  }
};

const Sql& Q() {
  static const Sql sql;
  return sql;
}

// ---------------------------------------------------------------------------------------
// Record codecs.

std::string EncodeList(const std::vector<std::string>& v) {
  return nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::vector<std::string>> DecodeList(const std::string& text, std::string_view what) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return Internal(fmt::format("corrupt {} list in the store", what));
  out.reserve(j.size());
  for (const auto& item : j) {
    if (!item.is_string()) return Internal(fmt::format("corrupt {} list in the store", what));
    out.push_back(item.get<std::string>());
  }
  return out;
}

WorkflowRecord ReadWorkflow(const Statement& s) {
  WorkflowRecord w;
  w.workflow_id = s.Text(0);
  w.name = s.Text(1);
  w.org_id = s.Text(2);
  w.owner_id = s.Text(3);
  w.format = s.Text(4);
  w.source_text = s.Text(5);
  w.submitted_at = s.Double(6);
  w.updated_at = s.Double(7);
  w.status = s.Text(8);
  return w;
}

Result<TaskRecord> ReadTask(const Statement& s) {
  TaskRecord t;
  t.task_id = s.Text(0);
  t.workflow_id = s.Text(1);
  t.org_id = s.Text(2);
  t.owner_id = s.Text(3);
  t.supplier_id = s.Text(4);
  t.task_name = s.Text(5);
  t.graph_node_name = s.Text(6);
  t.task_type = s.Text(7);
  t.category = s.Text(8);
  std::string status = s.Text(9);
  std::optional<TaskState> state = ParseTaskState(status);
  if (!state) {
    return Internal(fmt::format("task {} has unknown status '{}' in the store", t.task_id, status));
  }
  t.status = *state;
  t.assigned_worker = s.Text(10);
  t.submitted_at = s.Double(11);
  t.dispatched_ts = s.Double(12);
  t.started_ts = s.Double(13);
  t.finished_ts = s.Double(14);
  t.attempts = s.Int(15);
  t.max_attempts = s.Int(16);
  FM_ASSIGN_OR_RETURN(t.failed_workers, DecodeList(s.Text(17), "failed_workers"));
  FM_ASSIGN_OR_RETURN(t.depends_on, DecodeList(s.Text(18), "depends_on"));
  FM_ASSIGN_OR_RETURN(t.dependents, DecodeList(s.Text(19), "dependents"));
  t.last_error = s.Text(20);
  t.error = s.Text(21);
  t.spec_json = s.Text(22);
  t.latest_update_json = s.Text(23);
  t.result_digest = s.Text(24);
  t.usages_json = s.Text(25);
  t.merge_key = s.Text(26);
  t.merged_parent_id = s.Text(27);
  t.schedule_json = s.Text(28);
  return t;
}

EventRecord ReadEvent(const Statement& s) {
  EventRecord e;
  e.cursor = s.Int64(0);
  e.workflow_id = s.Text(1);
  e.task_id = s.Text(2);
  e.ts = s.Double(3);
  e.type = s.Text(4);
  e.json = s.Text(5);
  return e;
}

WorkerRecord ReadWorker(const Statement& s) {
  WorkerRecord w;
  w.worker_id = s.Text(0);
  w.node_id = s.Text(1);
  w.name = s.Text(2);
  w.status = s.Text(3);
  w.info_json = s.Text(4);
  w.registered_at = s.Double(5);
  w.last_seen = s.Double(6);
  w.cordoned = s.Int(7) != 0;
  return w;
}

OrgRecord ReadOrg(const Statement& s) {
  OrgRecord o;
  o.org_id = s.Text(0);
  o.name = s.Text(1);
  o.created_at = s.Double(2);
  o.policy_json = s.Text(3);
  return o;
}

UsageRecord ReadUsage(const Statement& s) {
  UsageRecord u;
  u.task_id = s.Text(0);
  u.workflow_id = s.Text(1);
  u.org_id = s.Text(2);
  u.principal_id = s.Text(3);
  u.supplier_id = s.Text(4);
  u.worker_id = s.Text(5);
  u.attempt = s.Int(6);
  u.started_at = s.Double(7);
  u.finished_at = s.Double(8);
  u.runtime_sec = s.Double(9);
  u.hardware = s.Text(10);
  u.cost_per_hour = s.Double(11);
  u.cost = s.Double(12);
  u.status = s.Text(13);
  u.seq = s.Int64(14);
  return u;
}

NodeRecord ReadNode(const Statement& s) {
  NodeRecord n;
  n.node_id = s.Text(0);
  n.alias = s.Text(1);
  n.info_json = s.Text(2);
  n.registered_at = s.Double(3);
  n.last_seen = s.Double(4);
  return n;
}

ResultRecord ReadResult(const Statement& s) {
  ResultRecord r;
  r.task_id = s.Text(0);
  r.digest = s.Text(1);
  r.size = s.Int64(2);
  r.worker_id = s.Text(3);
  r.metadata_json = s.Text(4);
  r.received_at = s.Double(5);
  return r;
}

ResultFileRecord ReadResultFile(const Statement& s) {
  ResultFileRecord f;
  f.task_id = s.Text(0);
  f.path = s.Text(1);
  f.digest = s.Text(2);
  f.size = s.Int64(3);
  return f;
}

// Runs a single-row lookup; NotFound names `what` and `id` when there is no row.
template <typename T, typename ReadFn>
Result<T> GetOne(Connection& conn, const std::string& sql, const std::string& id,
                 std::string_view what, ReadFn read) {
  FM_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare(sql));
  stmt.Bind(1, id);
  FM_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return NotFound(fmt::format("{} {} not found", what, id));
  return T(read(stmt));
}

Result<std::vector<std::string>> TaskIdsOf(Connection& conn, const std::string& workflow_id) {
  FM_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare(Q().task_ids_of_workflow));
  stmt.Bind(1, workflow_id);
  return CollectRows<std::string>(stmt, [](const Statement& s) { return s.Text(0); });
}

Status FillTaskIds(Connection& conn, std::vector<WorkflowRecord>& workflows) {
  for (WorkflowRecord& w : workflows) {
    FM_ASSIGN_OR_RETURN(w.task_ids, TaskIdsOf(conn, w.workflow_id));
  }
  return Status::Ok();
}

// A read transaction: multi-statement reads see one snapshot. Statements borrowed inside
// it must be released before it ends (declare it first).
class ReadSnapshot {
 public:
  explicit ReadSnapshot(Connection& conn) : conn_(conn) { begun_ = conn_.Exec("BEGIN").ok(); }
  ~ReadSnapshot() {
    if (begun_ && !conn_.AutoCommit()) (void)conn_.Exec("COMMIT");
  }
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

 private:
  Connection& conn_;
  bool begun_ = false;
};

// ---------------------------------------------------------------------------------------
// The WriteTxn handed to write operations: the writer connection inside the open group
// transaction. Used only on the writer thread.
class GroupTxn final : public WriteTxn {
 public:
  explicit GroupTxn(Connection& conn) : conn_(conn) {}
  Connection& conn() { return conn_; }

  Status PutWorkflow(const WorkflowRecord& w) override {
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_workflow));
    s.Bind(1, w.workflow_id).Bind(2, w.name).Bind(3, w.org_id).Bind(4, w.owner_id);
    s.Bind(5, w.format).Bind(6, w.source_text).Bind(7, w.submitted_at).Bind(8, w.updated_at);
    s.Bind(9, w.status);
    return s.Run();
  }

  Status PutTask(const TaskRecord& t) override {
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_task));
    s.Bind(1, t.task_id).Bind(2, t.workflow_id).Bind(3, t.org_id).Bind(4, t.owner_id);
    s.Bind(5, t.supplier_id).Bind(6, t.task_name).Bind(7, t.graph_node_name);
    s.Bind(8, t.task_type).Bind(9, t.category).Bind(10, TaskStateName(t.status));
    s.Bind(11, t.assigned_worker).Bind(12, t.submitted_at).Bind(13, t.dispatched_ts);
    s.Bind(14, t.started_ts).Bind(15, t.finished_ts).Bind(16, t.attempts);
    s.Bind(17, t.max_attempts).Bind(18, EncodeList(t.failed_workers));
    s.Bind(19, EncodeList(t.depends_on)).Bind(20, EncodeList(t.dependents));
    s.Bind(21, t.last_error).Bind(22, t.error).Bind(23, t.spec_json);
    s.Bind(24, t.latest_update_json).Bind(25, t.result_digest).Bind(26, t.usages_json);
    s.Bind(27, t.merge_key).Bind(28, t.merged_parent_id).Bind(29, t.schedule_json);
    return s.Run();
  }

  Status AppendEvent(const EventRecord& e) override {
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().insert_event));
    if (e.cursor > 0) {
      s.Bind(1, e.cursor);
    } else {
      s.BindNull(1);  // next free cursor
    }
    s.Bind(2, e.workflow_id).Bind(3, e.task_id).Bind(4, e.ts).Bind(5, e.type).Bind(6, e.json);
    return s.Run();
  }

  Status PutWorker(const WorkerRecord& w) override {
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_worker));
    s.Bind(1, w.worker_id).Bind(2, w.node_id).Bind(3, w.name).Bind(4, w.status);
    s.Bind(5, w.info_json).Bind(6, w.registered_at).Bind(7, w.last_seen);
    s.Bind(8, w.cordoned ? 1 : 0);
    return s.Run();
  }

  Status PutNode(const NodeRecord& n) override {
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_node));
    s.Bind(1, n.node_id).Bind(2, n.alias).Bind(3, n.info_json).Bind(4, n.registered_at);
    s.Bind(5, n.last_seen);
    return s.Run();
  }

  Status PutResult(const ResultRecord& r) override {
    FM_RETURN_IF_ERROR(provenance::MoveResultRef(conn_, r));
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_result));
    s.Bind(1, r.task_id).Bind(2, r.digest).Bind(3, r.size).Bind(4, r.worker_id);
    s.Bind(5, r.metadata_json).Bind(6, r.received_at);
    return s.Run();
  }

  Status PutResultFile(const ResultFileRecord& f) override {
    FM_RETURN_IF_ERROR(provenance::MoveResultFileRef(conn_, f));
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_result_file));
    s.Bind(1, f.task_id).Bind(2, f.path).Bind(3, f.digest).Bind(4, f.size);
    return s.Run();
  }

  Status PutSetting(const std::string& key, const std::string& value) override {
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_setting));
    s.Bind(1, key).Bind(2, value);
    return s.Run();
  }

  Status PutOrg(const OrgRecord& o) override {
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_org));
    s.Bind(1, o.org_id).Bind(2, o.name).Bind(3, o.created_at).Bind(4, o.policy_json);
    return s.Run();
  }

  Status PutApiKey(const ApiKeyRecord& k) override {
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().upsert_api_key));
    s.Bind(1, k.key_id).Bind(2, k.org_id).Bind(3, k.principal_id).Bind(4, k.name);
    s.Bind(5, EncodeList(k.scopes)).Bind(6, k.key_hash).Bind(7, k.prefix).Bind(8, k.created_at);
    s.Bind(9, k.revoked_at);
    return s.Run();
  }

  Status AppendUsage(const UsageRecord& u) override {
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().insert_usage));
    s.Bind(1, u.task_id).Bind(2, u.workflow_id).Bind(3, u.org_id).Bind(4, u.principal_id);
    s.Bind(5, u.supplier_id).Bind(6, u.worker_id).Bind(7, u.attempt).Bind(8, u.started_at);
    s.Bind(9, u.finished_at).Bind(10, u.runtime_sec).Bind(11, u.hardware);
    s.Bind(12, u.cost_per_hour).Bind(13, u.cost).Bind(14, u.status);
    return s.Run();
  }

  Status PutBlob(const std::string& digest, std::string_view data) override {
    FM_ASSIGN_OR_RETURN(Statement s, conn_.Prepare(Q().insert_blob));
    s.Bind(1, digest).Bind(2, static_cast<int64_t>(data.size())).BindBlob(3, data).Bind(4, WallSeconds());
    FM_RETURN_IF_ERROR(s.Run());
    return provenance::TrackBlob(conn_, digest, static_cast<int64_t>(data.size()));
  }

  Status PutLineage(const LineageRecord& l) override { return provenance::PutLineage(conn_, l); }
  Status PutOperatorResult(const OperatorResultRecord& r) override {
    return provenance::PutOperatorResult(conn_, r);
  }
  Status PurgeWorkflow(const std::string& workflow_id) override {
    return provenance::PurgeWorkflow(conn_, workflow_id);
  }

 private:
  Connection& conn_;
};

// ---------------------------------------------------------------------------------------

// The SQLite Store. Owns the writer connection (used only by the writer thread) and a
// pool of read connections (each lent to one reading thread at a time).
class SqliteStore final : public Store {
 public:
  SqliteStore(StoreConfig config, std::unique_ptr<Connection> writer_conn)
      : config_(std::move(config)), writer_conn_(std::move(writer_conn)) {
    writer_ = std::thread([this] { WriterLoop(); });
  }

  ~SqliteStore() override {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    work_cv_.notify_one();
    writer_.join();
  }

  void Write(WriteOp op, Done done) override {
    {
      MutexLock lock(mu_);
      queue_.push_back(Pending{std::move(op), std::move(done)});
      ++enqueued_;
    }
    work_cv_.notify_one();
  }

  Status WriteSync(WriteOp op) override {
    FM_CHECK(std::this_thread::get_id() != writer_.get_id());  // would deadlock
    auto promise = std::make_shared<std::promise<Status>>();
    std::future<Status> result = promise->get_future();
    Write(std::move(op), [promise](const Status& s) { promise->set_value(s); });
    return result.get();
  }

  void Flush() override {
    FM_CHECK(std::this_thread::get_id() != writer_.get_id());  // would deadlock
    MutexLock lock(mu_);
    const uint64_t target = enqueued_;
    lock.Wait(done_cv_, [&]() FM_REQUIRES(mu_) { return completed_ >= target; });
  }

  Result<WorkflowRecord> GetWorkflow(const std::string& id) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    ReadSnapshot snapshot(*conn);
    FM_ASSIGN_OR_RETURN(WorkflowRecord w,
                        GetOne<WorkflowRecord>(*conn, Q().get_workflow, id, "workflow",
                                               ReadWorkflow));
    FM_ASSIGN_OR_RETURN(w.task_ids, TaskIdsOf(*conn, w.workflow_id));
    return w;
  }

  Result<std::vector<WorkflowRecord>> ListWorkflows(const WorkflowFilter& f) override {
    const std::array<const std::string*, 3> values = {&f.status, &f.name, &f.org_id};
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    ReadSnapshot snapshot(*conn);
    std::vector<WorkflowRecord> out;
    {
      FM_ASSIGN_OR_RETURN(Statement stmt, PrepareList(*conn, Q().list_workflows, values, f.limit));
      FM_ASSIGN_OR_RETURN(out, CollectRows<WorkflowRecord>(stmt, ReadWorkflow));
    }
    FM_RETURN_IF_ERROR(FillTaskIds(*conn, out));
    return out;
  }

  Result<TaskRecord> GetTask(const std::string& id) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt, conn->Prepare(Q().get_task));
    stmt.Bind(1, id);
    FM_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return NotFound(fmt::format("task {} not found", id));
    return ReadTask(stmt);
  }

  Result<std::vector<TaskRecord>> ListTasks(const TaskFilter& f) override {
    const std::array<const std::string*, 7> values = {
        &f.workflow_id, &f.status, &f.task_type, &f.category, &f.assigned_worker,
        &f.graph_node_name, &f.org_id};
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt, PrepareList(*conn, Q().list_tasks, values, f.limit));
    std::vector<TaskRecord> out;
    for (;;) {
      FM_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      FM_ASSIGN_OR_RETURN(TaskRecord t, ReadTask(stmt));
      out.push_back(std::move(t));
    }
  }

  Result<std::vector<EventRecord>> ReadEvents(const EventQuery& q) override {
    if (!q.workflow_id.empty() && !q.task_id.empty()) {
      return InvalidArgument("event query takes a workflow_id or a task_id, not both");
    }
    const size_t scope = !q.workflow_id.empty() ? 0 : !q.task_id.empty() ? 1 : 2;
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt,
                        conn->Prepare(Q().read_events[scope][q.newest_first ? 1 : 0]));
    if (scope == 0) stmt.Bind(1, q.workflow_id);
    if (scope == 1) stmt.Bind(1, q.task_id);
    stmt.Bind(2, q.after);
    stmt.Bind(3, q.before > 0 ? q.before : std::numeric_limits<int64_t>::max());
    stmt.Bind(4, static_cast<int64_t>(q.limit > 0 ? q.limit : -1));
    FM_ASSIGN_OR_RETURN(std::vector<EventRecord> out, CollectRows<EventRecord>(stmt, ReadEvent));
    if (q.newest_first) std::reverse(out.begin(), out.end());
    return out;
  }

  Result<int64_t> MaxEventCursor() override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt, conn->Prepare(Q().max_cursor));
    FM_ASSIGN_OR_RETURN(bool row, stmt.Step());
    return row ? stmt.Int64(0) : int64_t{0};
  }

  Result<std::vector<WorkerRecord>> ListWorkers() override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt, conn->Prepare(Q().list_workers));
    return CollectRows<WorkerRecord>(stmt, ReadWorker);
  }

  Result<WorkerRecord> GetWorker(const std::string& id) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    return GetOne<WorkerRecord>(*conn, Q().get_worker, id, "worker", ReadWorker);
  }

  Result<std::vector<NodeRecord>> ListNodes() override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt, conn->Prepare(Q().list_nodes));
    return CollectRows<NodeRecord>(stmt, ReadNode);
  }

  Result<NodeRecord> GetNode(const std::string& id) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    return GetOne<NodeRecord>(*conn, Q().get_node, id, "node", ReadNode);
  }

  Result<ResultRecord> GetResult(const std::string& task_id) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    return GetOne<ResultRecord>(*conn, Q().get_result, task_id, "result of task", ReadResult);
  }

  Result<std::vector<ResultFileRecord>> ListResultFiles(const std::string& task_id) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt, conn->Prepare(Q().list_result_files));
    stmt.Bind(1, task_id);
    return CollectRows<ResultFileRecord>(stmt, ReadResultFile);
  }

  Result<std::string> GetSetting(const std::string& key) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    return GetOne<std::string>(*conn, Q().get_setting, key, "setting",
                               [](const Statement& s) { return s.Text(0); });
  }

  Result<std::string> GetBlob(const std::string& digest) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    return GetOne<std::string>(*conn, Q().get_blob, digest, "blob",
                               [](const Statement& s) { return s.Blob(0); });
  }

  Result<OperatorResultRecord> GetOperatorResult(const std::string& scope_key) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    return provenance::GetOperatorResult(*conn, scope_key);
  }

  Result<std::vector<LineageRecord>> ListLineage(const std::string& workflow_id) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    return provenance::ListLineage(*conn, workflow_id);
  }

  Result<int64_t> BlobRefs(const std::string& digest) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    return provenance::BlobRefs(*conn, digest);
  }

  Result<std::vector<std::string>> CollectUnreferencedBlobs(double grace_s,
                                                            GcStats* stats) override {
    std::vector<std::string> files;
    GcStats local;
    Status s = WriteSync([&](WriteTxn& txn) -> Status {
      files.clear();  // an op may run twice (batch retry)
      local = GcStats{};
      return provenance::CollectUnreferenced(static_cast<GroupTxn&>(txn).conn(),
                                             WallSeconds() - grace_s, &files, &local);
    });
    FM_RETURN_IF_ERROR(s);
    if (stats != nullptr) {
      stats->blobs_removed += local.blobs_removed;
      stats->bytes_removed += local.bytes_removed;
    }
    return files;
  }

  Result<std::vector<std::string>> ExpiredWorkflows(double cutoff, int limit) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    return provenance::ExpiredWorkflows(*conn, cutoff, limit);
  }

  Result<std::vector<OrgRecord>> ListOrgs() override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt, conn->Prepare(Q().list_orgs));
    return CollectRows<OrgRecord>(stmt, ReadOrg);
  }

  Result<std::vector<ApiKeyRecord>> ListApiKeys() override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt, conn->Prepare(Q().list_api_keys));
    std::vector<ApiKeyRecord> out;
    for (;;) {
      FM_ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) return out;
      ApiKeyRecord k;
      k.key_id = stmt.Text(0);
      k.org_id = stmt.Text(1);
      k.principal_id = stmt.Text(2);
      k.name = stmt.Text(3);
      FM_ASSIGN_OR_RETURN(k.scopes, DecodeList(stmt.Text(4), "scope"));
      k.key_hash = stmt.Text(5);
      k.prefix = stmt.Text(6);
      k.created_at = stmt.Double(7);
      k.revoked_at = stmt.Double(8);
      out.push_back(std::move(k));
    }
  }

  Result<std::vector<UsageRecord>> ListUsage(const UsageQuery& q) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt, conn->Prepare(Q().list_usage));
    stmt.Bind(1, q.org_id).Bind(2, q.from).Bind(3, q.to > 0 ? q.to : 1e18);
    return CollectRows<UsageRecord>(stmt, ReadUsage);
  }

  Result<int64_t> CountTasks(const TaskFilter& f) override {
    const std::array<std::pair<std::string_view, const std::string*>, 7> fields = {{
        {"workflow_id", &f.workflow_id}, {"status", &f.status}, {"task_type", &f.task_type},
        {"category", &f.category}, {"assigned_worker", &f.assigned_worker},
        {"graph_node_name", &f.graph_node_name}, {"org_id", &f.org_id}}};
    std::string where;
    int param = 0;
    for (const auto& [col, value] : fields) {
      if (value->empty()) continue;
      where += fmt::format("{}{}=?{}", where.empty() ? " WHERE " : " AND ", col, ++param);
    }
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    FM_ASSIGN_OR_RETURN(Statement stmt, conn->Prepare("SELECT COUNT(*) FROM tasks" + where));
    param = 0;
    for (const auto& [col, value] : fields) {
      if (!value->empty()) stmt.Bind(++param, *value);
    }
    FM_ASSIGN_OR_RETURN(bool row, stmt.Step());
    return row ? stmt.Int64(0) : int64_t{0};
  }

  Result<std::vector<WorkflowRecord>> LoadActiveWorkflows() override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    ReadSnapshot snapshot(*conn);
    std::vector<WorkflowRecord> out;
    {
      FM_ASSIGN_OR_RETURN(Statement stmt, conn->Prepare(Q().active_workflows));
      FM_ASSIGN_OR_RETURN(out, CollectRows<WorkflowRecord>(stmt, ReadWorkflow));
    }
    FM_RETURN_IF_ERROR(FillTaskIds(*conn, out));
    return out;
  }

  uint64_t transactions_committed() const override { return transactions_.load(); }
  uint64_t operations_committed() const override { return operations_.load(); }

 private:
  struct Pending {
    WriteOp op;
    Done done;
  };

  // Returns a pooled read connection to the pool when the borrower is done with it.
  struct ReturnToPool {
    SqliteStore* store;
    void operator()(Connection* conn) const { store->ReturnReader(conn); }
  };
  using ReaderPtr = std::unique_ptr<Connection, ReturnToPool>;

  Result<ReaderPtr> AcquireReader() {
    {
      MutexLock lock(readers_mu_);
      if (!idle_readers_.empty()) {
        Connection* conn = idle_readers_.back().release();
        idle_readers_.pop_back();
        return ReaderPtr(conn, ReturnToPool{this});
      }
    }
    ConnectionOptions options;
    options.writer = false;
    FM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(config_.path, options));
    return ReaderPtr(conn.release(), ReturnToPool{this});
  }

  void ReturnReader(Connection* conn) {
    MutexLock lock(readers_mu_);
    idle_readers_.emplace_back(conn);
  }

  template <size_t N, size_t M>
  static Result<Statement> PrepareList(Connection& conn, const std::array<std::string, M>& sqls,
                                       const std::array<const std::string*, N>& values,
                                       int limit) {
    unsigned mask = 0;
    for (size_t i = 0; i < N; ++i) {
      if (!values[i]->empty()) mask |= 1u << i;
    }
    FM_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare(sqls[mask]));
    int param = 0;
    for (size_t i = 0; i < N; ++i) {
      if (mask & (1u << i)) stmt.Bind(++param, *values[i]);
    }
    stmt.Bind(param + 1, static_cast<int64_t>(limit > 0 ? limit : -1));
    return stmt;
  }

  // --- writer thread --------------------------------------------------------------------

  void WriterLoop() {
    std::vector<Pending> batch;
    for (;;) {
      {
        MutexLock lock(mu_);
        lock.Wait(work_cv_, [&]() FM_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and everything queued is done
        const size_t n = std::min(queue_.size(), static_cast<size_t>(config_.max_batch));
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      CommitBatch(batch);
      {
        MutexLock lock(mu_);
        completed_ += batch.size();
      }
      done_cv_.notify_all();
      batch.clear();
    }
  }

  void CommitBatch(std::vector<Pending>& batch) {
    std::vector<Status> results(batch.size());
    Status group = RunTransaction(batch.data(), batch.size());
    if (group.ok()) {
      transactions_.fetch_add(1);
      operations_.fetch_add(batch.size());
    } else if (batch.size() == 1) {
      results[0] = group;
    } else {
      // Something failed: retry one op per transaction so only the bad one fails.
      for (size_t i = 0; i < batch.size(); ++i) {
        results[i] = RunTransaction(&batch[i], 1);
        if (results[i].ok()) {
          transactions_.fetch_add(1);
          operations_.fetch_add(1);
        }
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!batch[i].done) continue;
      try {
        batch[i].done(results[i]);
      } catch (const std::exception& e) {
        FM_LOG_ERROR("state: write completion callback threw: {}", e.what());
      } catch (...) {
        FM_LOG_ERROR("state: write completion callback threw");
      }
    }
  }

  // Runs `ops` in one transaction: OK once committed; otherwise rolled back, with the
  // first failing op's error (or BEGIN's / COMMIT's).
  Status RunTransaction(Pending* ops, size_t n) {
    Connection& conn = *writer_conn_;
    FM_RETURN_IF_ERROR(ExecCached("BEGIN IMMEDIATE"));
    GroupTxn txn(conn);
    for (size_t i = 0; i < n; ++i) {
      Status s = RunOp(ops[i].op, txn);
      if (!s.ok()) {
        Rollback();
        return s;
      }
    }
    Status s = ExecCached("COMMIT");
    if (!s.ok()) Rollback();
    return s;
  }

  static Status RunOp(const WriteOp& op, WriteTxn& txn) {
    if (!op) return Status::Ok();
    try {
      return op(txn);
    } catch (const std::exception& e) {
      return Internal(fmt::format("write operation threw: {}", e.what()));
    } catch (...) {
      return Internal("write operation threw");
    }
  }

  Status ExecCached(const std::string& sql) {
    FM_ASSIGN_OR_RETURN(Statement stmt, writer_conn_->Prepare(sql));
    return stmt.Run();
  }

  void Rollback() {
    // Some errors (I/O, full disk) already rolled the transaction back.
    if (writer_conn_->AutoCommit()) return;
    Status s = ExecCached("ROLLBACK");
    if (!s.ok()) FM_LOG_ERROR("state: rollback failed: {}", s.ToString());
  }

  const StoreConfig config_;
  const std::unique_ptr<Connection> writer_conn_;  // writer thread only

  Mutex mu_;
  std::condition_variable work_cv_;  // the writer waits for work or stopping_
  std::condition_variable done_cv_;  // Flush waits for completed_
  std::deque<Pending> queue_ FM_GUARDED_BY(mu_);
  uint64_t enqueued_ FM_GUARDED_BY(mu_) = 0;
  uint64_t completed_ FM_GUARDED_BY(mu_) = 0;  // ops whose `done` has run
  bool stopping_ FM_GUARDED_BY(mu_) = false;

  Mutex readers_mu_;
  std::vector<std::unique_ptr<Connection>> idle_readers_ FM_GUARDED_BY(readers_mu_);

  std::atomic<uint64_t> transactions_{0};
  std::atomic<uint64_t> operations_{0};

  std::thread writer_;  // last: starts after everything above is constructed
};

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const StoreConfig& config) {
  if (config.path.empty()) return InvalidArgument("store: empty database path");
  if (config.max_batch < 1) return InvalidArgument("store: max_batch must be at least 1");
  ConnectionOptions options;
  options.writer = true;
  options.synchronous_full = config.synchronous_full;
  FM_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, Connection::Open(config.path, options));
  FM_RETURN_IF_ERROR(ApplyMigrations(*conn));
  (void)Q();  // build the SQL text before any thread needs it
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(config, std::move(conn)));
}

}  // namespace flowmesh::state
