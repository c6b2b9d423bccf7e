// Private to src/state/store*.cc: the store's SQL text, built once from column lists so the
// SELECT column order and the row readers (store_rows.h) agree.
#pragma once

#include <array>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace flowmesh::state::store_internal {

using Columns = std::span<const std::string_view>;

std::string Join(Columns cols, std::string_view sep);

// INSERT … ON CONFLICT(key) DO UPDATE: unlike INSERT OR REPLACE it keeps the row's `seq`,
// so listing order stays first-insertion order. Parameters are ?1.. in column order.
std::string UpsertSql(std::string_view table, Columns cols, Columns keys);

// Column lists: SELECTs return these columns in this order, and the Read* codecs
// (store_rows.cc) read them by position.
inline constexpr auto kWorkflowCols = std::to_array<std::string_view>(
    {"workflow_id", "name", "org_id", "owner_id", "format", "source_text", "submitted_at",
     "updated_at", "status"});
inline constexpr auto kTaskCols = std::to_array<std::string_view>(
    {"task_id",       "workflow_id",     "org_id",        "owner_id",           "supplier_id",
     "task_name",     "graph_node_name", "task_type",     "category",           "status",
     "assigned_worker", "submitted_at",  "dispatched_ts", "started_ts",         "finished_ts",
     "attempts",      "max_attempts",    "failed_workers", "depends_on",        "dependents",
     "last_error",    "error",           "spec_json",     "latest_update_json", "result_digest",
     "usages_json",   "merge_key",       "merged_parent_id", "schedule_json"});
inline constexpr auto kWorkerCols = std::to_array<std::string_view>(
    {"worker_id", "node_id", "name", "status", "info_json", "registered_at", "last_seen",
     "cordoned"});
inline constexpr auto kNodeCols = std::to_array<std::string_view>(
    {"node_id", "alias", "info_json", "registered_at", "last_seen"});
inline constexpr auto kResultCols = std::to_array<std::string_view>(
    {"task_id", "digest", "size", "worker_id", "metadata_json", "received_at"});
inline constexpr auto kResultFileCols =
    std::to_array<std::string_view>({"task_id", "path", "digest", "size"});
inline constexpr auto kEventCols =
    std::to_array<std::string_view>({"cursor", "workflow_id", "task_id", "ts", "type", "json"});
inline constexpr auto kSettingCols = std::to_array<std::string_view>({"key", "value"});
inline constexpr auto kOrgCols =
    std::to_array<std::string_view>({"org_id", "name", "created_at", "policy_json"});
inline constexpr auto kApiKeyCols = std::to_array<std::string_view>(
    {"key_id", "org_id", "principal_id", "name", "scopes", "key_hash", "prefix", "created_at",
     "revoked_at"});
inline constexpr auto kUsageCols = std::to_array<std::string_view>(
    {"task_id", "workflow_id", "org_id", "principal_id", "supplier_id", "worker_id", "attempt",
     "started_at", "finished_at", "runtime_sec", "hardware", "cost_per_hour", "cost", "status",
     "prompt_tokens", "completion_tokens", "seq"});

inline constexpr std::string_view kTaskIdKey[] = {"task_id"};

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
      "INSERT INTO usage ({}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)",
      Join(Columns(kUsageCols).first(16), ","));
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

// The statements, built on first use.
const Sql& Q();

}  // namespace flowmesh::state::store_internal
