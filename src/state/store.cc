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
#include "state/store_rows.h"
#include "state/store_sql.h"

namespace flowmesh::state {
namespace {

using namespace store_internal;  // NOLINT: the store's private SQL and codecs

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

  Result<std::vector<CollectionRecord>> ListCollections(const std::string& org_id,
                                                        const std::string& name) override {
    FM_ASSIGN_OR_RETURN(ReaderPtr conn, AcquireReader());
    return collections::List(*conn, org_id, name);
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
