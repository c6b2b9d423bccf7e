// Durable records of the data model (see DESIGN.md). Plain structs: the scheduler owns
// the live copies; the Store persists and reads them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flowmesh::state {

enum class TaskState { kPending, kDispatched, kCancelling, kDone, kFailed, kCancelled };

std::string_view TaskStateName(TaskState s);            // "PENDING", …
std::optional<TaskState> ParseTaskState(std::string_view name);
inline bool IsTerminal(TaskState s) {
  return s == TaskState::kDone || s == TaskState::kFailed || s == TaskState::kCancelled;
}

inline constexpr const char* kDefaultOrg = "org-default";
inline constexpr const char* kDefaultOwner = "usr-admin";

struct WorkflowRecord {
  std::string workflow_id;
  std::string name;
  std::string org_id = kDefaultOrg;
  std::string owner_id = kDefaultOwner;
  std::string format = "native";  // native | n8n
  std::string source_text;        // the submitted document, verbatim
  double submitted_at = 0;
  double updated_at = 0;
  std::string status = "PENDING";  // derived; stored for listing and filtering
  std::vector<std::string> task_ids;
};

struct TaskRecord {
  std::string task_id;
  std::string workflow_id;
  std::string org_id = kDefaultOrg;
  std::string owner_id = kDefaultOwner;
  std::string supplier_id;
  std::string task_name;        // "<metadata.name>:<node>"
  std::string graph_node_name;  // "<node>"
  std::string task_type;
  std::string category = "other";  // inference | training | other
  TaskState status = TaskState::kPending;
  std::string assigned_worker;
  double submitted_at = 0;
  double dispatched_ts = 0;  // 0: not set (null in JSON)
  double started_ts = 0;
  double finished_ts = 0;
  int attempts = 0;
  int max_attempts = 3;
  std::vector<std::string> failed_workers;
  std::vector<std::string> depends_on;  // task ids
  std::vector<std::string> dependents;  // task ids
  std::string last_error;
  std::string error;
  std::string spec_json;           // merged task spec (JSON object text)
  std::string latest_update_json;  // last TASK_UPDATE payload ("{}" when none)
  std::string result_digest;       // CAS digest of the result JSON, when DONE
  std::string usages_json = "[]";  // [{started_at, finished_at, runtime_sec, hardware, cost_per_hour, total_cost, status}]
  std::string merge_key;         // operator fingerprint (SHA-256), once the inputs are resolved
  std::string merged_parent_id;  // the running twin this task joined (same organisation only)
  // The scheduler's placement hints for this task (epoch, position, pinned workers), kept
  // beside the spec, never inside it: {"epoch", "pos", "in_order", "workers"}; "{}" when none.
  std::string schedule_json = "{}";
};

// One entry of the append-only event log; `cursor` orders all events of the server.
struct EventRecord {
  int64_t cursor = 0;
  std::string workflow_id;
  std::string task_id;
  double ts = 0;
  std::string type;  // TASK_SUBMITTED, TASK_LOG, …
  std::string json;  // the full event object
};

struct WorkerRecord {
  std::string worker_id;
  std::string node_id;
  std::string name;
  std::string status;      // IDLE | BUSY | DOWN
  std::string info_json;   // advertised capabilities (WorkerInfo as JSON)
  double registered_at = 0;
  double last_seen = 0;
  bool cordoned = false;
};

struct NodeRecord {
  std::string node_id;
  std::string alias;
  std::string info_json;
  double registered_at = 0;
  double last_seen = 0;
};

struct ResultRecord {
  std::string task_id;
  std::string digest;  // SHA-256 of the result JSON blob in the CAS
  int64_t size = 0;
  std::string worker_id;
  std::string metadata_json = "{}";
  double received_at = 0;
};

struct ResultFileRecord {
  std::string task_id;
  std::string path;    // sanitised relative path
  std::string digest;
  int64_t size = 0;
};

// Provenance of one task: what went in (upstream outputs by digest), the operator
// fingerprint, and whether the result was reused rather than computed.
struct LineageRecord {
  std::string task_id;
  std::string workflow_id;
  std::string fingerprint;
  bool deterministic = false;
  std::string inputs_json = "[]";  // [{node, task_id, digest}]
  bool reused = false;
  double recorded_at = 0;
};

// A stored operator result: `scope_key` is the fingerprint (global scope) or a hash of
// organisation and fingerprint (tenant scope). `source_task_id` is internal: never shown.
struct OperatorResultRecord {
  std::string scope_key;
  std::string fingerprint;
  std::string task_type;
  std::string result_digest;
  std::string source_task_id;
  double created_at = 0;
};

struct GcStats {
  int64_t blobs_removed = 0;
  int64_t bytes_removed = 0;
  int64_t orphan_files_removed = 0;
  int64_t temp_files_removed = 0;
};

// An organisation (tenant). `policy_json` holds its quotas and scheduling weight:
// {max_queued_tasks, max_running_tasks, max_gpus, max_request_bytes, weight} (0 / absent:
// no limit; weight defaults to 1).
struct OrgRecord {
  std::string org_id;
  std::string name;
  double created_at = 0;
  std::string policy_json = "{}";
};

// An API key. Only the SHA-256 of the key is stored; the key itself is shown once.
struct ApiKeyRecord {
  std::string key_id;        // "key-…"
  std::string org_id;
  std::string principal_id;  // who acts with it ("usr-…" or a name)
  std::string name;
  std::vector<std::string> scopes;  // "workflow:read", "*:admin", …
  std::string key_hash;      // hex SHA-256 of the key
  std::string prefix;        // first characters of the key, to recognise it in listings
  double created_at = 0;
  double revoked_at = 0;     // 0: active
};

// One row per task attempt (durable usage / billing record).
struct UsageRecord {
  int64_t seq = 0;  // assigned by the store
  std::string task_id;
  std::string workflow_id;
  std::string org_id;
  std::string principal_id;
  std::string supplier_id;
  std::string worker_id;
  int attempt = 0;
  double started_at = 0;
  double finished_at = 0;
  double runtime_sec = 0;
  std::string hardware;
  double cost_per_hour = 0;
  double cost = 0;
  std::string status;
  // Tokens the attempt read and generated, as its executor reported them (inference, api,
  // agent: the result's `usage`); 0 for executors that count none.
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
};

// One version of a collection (docs/internals/collections.md): a vector index over text
// chunks, built by a `collection` task, named per organisation. The two blobs are held
// (blob_refs) while the version is ready.
struct CollectionRecord {
  std::string org_id;
  std::string name;
  int version = 0;
  std::string status;       // "building" | "ready" | "failed"
  std::string workflow_id;  // the build
  std::string task_id;
  std::string build_json = "{}";  // what was asked: the model section and the options
  std::string model_key;
  int64_t dim = 0;
  int64_t count = 0;        // vectors (chunks)
  int64_t documents = 0;
  std::string metric;
  std::string index_digest;
  int64_t index_size = 0;
  std::string entries_digest;
  int64_t entries_size = 0;
  std::string error;        // why it failed
  double created_at = 0;
  double updated_at = 0;
  int64_t bytes() const { return index_size + entries_size; }
};

}  // namespace flowmesh::state
