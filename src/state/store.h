// The durable store: SQLite in WAL mode, the source of truth on the root node.
//
// Writes go through one writer thread. Callers enqueue write operations; the writer
// drains everything queued into a single transaction (group commit), commits with
// synchronous=FULL, then runs each operation's completion callback on the writer thread.
// Reads borrow a connection from a pool (one per concurrently reading thread), so any
// thread can read while the writer writes (WAL readers never block the writer).
// Listing order is first-insertion order (a put that updates a row keeps its place).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "state/records.h"

namespace flowmesh::state {

// What a write operation may do inside the group transaction.
class WriteTxn {
 public:
  virtual ~WriteTxn() = default;
  // Insert or replace. w.task_ids is not stored: reads derive it from the tasks table.
  virtual Status PutWorkflow(const WorkflowRecord& w) = 0;
  virtual Status PutTask(const TaskRecord& t) = 0;          // insert or replace
  // Cursor chosen by the caller (a duplicate fails with AlreadyExists); 0: the next free one.
  virtual Status AppendEvent(const EventRecord& e) = 0;
  virtual Status PutWorker(const WorkerRecord& w) = 0;
  virtual Status PutNode(const NodeRecord& n) = 0;
  virtual Status PutResult(const ResultRecord& r) = 0;
  virtual Status PutResultFile(const ResultFileRecord& f) = 0;
  virtual Status PutSetting(const std::string& key, const std::string& value) = 0;
  // A small content-addressed blob (the caller computed `digest`); a no-op if present.
  virtual Status PutBlob(const std::string& digest, std::string_view data) = 0;

  // ---- Provenance (provenance.cc). Blob references are counted in `blob_refs`: results,
  // result files and operator results each hold one on their digest, kept in step here.
  virtual Status PutLineage(const LineageRecord& l) = 0;
  virtual Status PutOperatorResult(const OperatorResultRecord& r) = 0;
  // Deletes a workflow with its tasks, events, results, files and lineage (retention),
  // dropping the blob references they held.
  virtual Status PurgeWorkflow(const std::string& workflow_id) = 0;
  virtual Status PutOrg(const OrgRecord& o) = 0;        // insert or replace
  virtual Status PutApiKey(const ApiKeyRecord& k) = 0;  // insert or replace
  virtual Status AppendUsage(const UsageRecord& u) = 0; // seq is assigned
  // Collections (collections.cc): insert or replace one version; delete every version of
  // a name (NotFound when there is none). Ready versions hold references on their blobs.
  virtual Status PutCollection(const CollectionRecord& c) = 0;
  // Inserts `c` as the next version of its name (1 for the first); returns that version.
  virtual Result<int> AddCollectionVersion(const CollectionRecord& c) = 0;
  virtual Status DeleteCollection(const std::string& org_id, const std::string& name) = 0;
};

struct UsageQuery {
  std::string org_id;  // "": every organisation
  double from = 0;     // started_at >= from
  double to = 0;       // started_at < to (0: no bound)
};

struct StoreConfig {
  std::string path;             // SQLite database file
  bool synchronous_full = true;
  int max_batch = 4096;         // operations per group transaction
};

struct TaskFilter {
  std::string workflow_id, status, task_type, category, assigned_worker, graph_node_name,
      org_id;
  int limit = 0;  // 0: no limit
};

struct WorkflowFilter {
  std::string status, name, org_id;
  int limit = 0;
};

struct EventQuery {
  std::string workflow_id;  // at most one of workflow_id / task_id (neither: all events)
  std::string task_id;
  int64_t after = 0;        // cursor > after (0: from the start)
  int64_t before = 0;       // cursor < before (0: no bound)
  int limit = 500;
  bool newest_first = false;  // with `before` and no `after`: the page just before it
};

class Store {
 public:
  using WriteOp = std::function<Status(WriteTxn&)>;
  using Done = std::function<void(const Status&)>;

  static Result<std::unique_ptr<Store>> Open(const StoreConfig& config);
  virtual ~Store() = default;  // Drains queued writes, then stops the writer.

  // Queues a write; `done` (optional) runs on the writer thread once the transaction
  // holding it has committed (OK) or failed (the whole batch is then retried op by op,
  // so one bad op fails alone). Because of that retry an op may run more than once: it
  // must only act through the WriteTxn. An op that returns an error has all its writes
  // rolled back. Never call WriteSync/Flush from `done` (it runs on the writer thread).
  virtual void Write(WriteOp op, Done done = nullptr) = 0;
  // Queues a write and blocks until it is durable.
  virtual Status WriteSync(WriteOp op) = 0;
  // Blocks until everything queued so far is committed and its `done` has run.
  virtual void Flush() = 0;

  // Reads (any thread). Workflow reads fill task_ids from the tasks table, in task
  // insertion order.
  virtual Result<WorkflowRecord> GetWorkflow(const std::string& id) = 0;
  virtual Result<std::vector<WorkflowRecord>> ListWorkflows(const WorkflowFilter& f) = 0;
  virtual Result<TaskRecord> GetTask(const std::string& id) = 0;
  virtual Result<std::vector<TaskRecord>> ListTasks(const TaskFilter& f) = 0;
  virtual Result<std::vector<EventRecord>> ReadEvents(const EventQuery& q) = 0;
  virtual Result<int64_t> MaxEventCursor() = 0;
  virtual Result<std::vector<WorkerRecord>> ListWorkers() = 0;
  virtual Result<WorkerRecord> GetWorker(const std::string& id) = 0;
  virtual Result<std::vector<NodeRecord>> ListNodes() = 0;
  virtual Result<NodeRecord> GetNode(const std::string& id) = 0;
  virtual Result<ResultRecord> GetResult(const std::string& task_id) = 0;
  virtual Result<std::vector<ResultFileRecord>> ListResultFiles(const std::string& task_id) = 0;
  virtual Result<std::string> GetSetting(const std::string& key) = 0;  // NotFound if unset
  virtual Result<std::string> GetBlob(const std::string& digest) = 0;  // NotFound if absent
  virtual Result<std::vector<OrgRecord>> ListOrgs() = 0;
  virtual Result<std::vector<ApiKeyRecord>> ListApiKeys() = 0;
  virtual Result<std::vector<UsageRecord>> ListUsage(const UsageQuery& q) = 0;
  // Collection versions of an organisation ("" = all), of one name when not empty,
  // ordered by name then version.
  virtual Result<std::vector<CollectionRecord>> ListCollections(const std::string& org_id,
                                                                const std::string& name) = 0;
  // Tasks matching the filter (limit ignored), without reading them.
  virtual Result<int64_t> CountTasks(const TaskFilter& f) = 0;

  // Provenance reads. GetOperatorResult: NotFound when the key has no stored result.
  virtual Result<OperatorResultRecord> GetOperatorResult(const std::string& scope_key) = 0;
  virtual Result<std::vector<LineageRecord>> ListLineage(const std::string& workflow_id) = 0;
  virtual Result<int64_t> BlobRefs(const std::string& digest) = 0;  // NotFound: untracked
  // Drops tracked blobs nothing refers to whose count last changed more than `grace_s` ago
  // (inline ones are deleted outright); returns the digests of those that may be files, for
  // the caller to unlink. Runs through the writer, so it is ordered with every reference.
  virtual Result<std::vector<std::string>> CollectUnreferencedBlobs(double grace_s,
                                                                    GcStats* stats) = 0;
  // Terminal workflows last updated before `cutoff` (wall seconds), oldest first.
  virtual Result<std::vector<std::string>> ExpiredWorkflows(double cutoff, int limit) = 0;

  // Everything not terminal, for rehydration at start-up: workflows whose status is not
  // DONE/FAILED/CANCELLED and all of their tasks.
  virtual Result<std::vector<WorkflowRecord>> LoadActiveWorkflows() = 0;

  // Counters for /metrics.
  virtual uint64_t transactions_committed() const = 0;
  virtual uint64_t operations_committed() const = 0;
};

}  // namespace flowmesh::state
