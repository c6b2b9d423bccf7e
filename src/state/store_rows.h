// Private to src/state/store*.cc: reading records from rows and binding them to statements.
// The Read* codecs read the columns of store_sql.h's lists by position; GroupTxn binds a
// record's fields to its upsert statement.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "common/status.h"
#include "state/collections.h"
#include "state/provenance.h"
#include "state/records.h"
#include "state/sqlite_db.h"
#include "state/store.h"

namespace flowmesh::state::store_internal {

Result<std::vector<std::string>> DecodeList(const std::string& text, std::string_view what);
WorkflowRecord ReadWorkflow(const Statement& s);
Result<TaskRecord> ReadTask(const Statement& s);
EventRecord ReadEvent(const Statement& s);
WorkerRecord ReadWorker(const Statement& s);
OrgRecord ReadOrg(const Statement& s);
UsageRecord ReadUsage(const Statement& s);
NodeRecord ReadNode(const Statement& s);
ResultRecord ReadResult(const Statement& s);
ResultFileRecord ReadResultFile(const Statement& s);
Result<std::vector<std::string>> TaskIdsOf(Connection& conn, const std::string& workflow_id);
Status FillTaskIds(Connection& conn, std::vector<WorkflowRecord>& workflows);

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

  Status PutWorkflow(const WorkflowRecord& w) override;

  Status PutTask(const TaskRecord& t) override;

  Status AppendEvent(const EventRecord& e) override;

  Status PutWorker(const WorkerRecord& w) override;

  Status PutNode(const NodeRecord& n) override;

  Status PutResult(const ResultRecord& r) override;

  Status PutResultFile(const ResultFileRecord& f) override;

  Status PutSetting(const std::string& key, const std::string& value) override;

  Status PutOrg(const OrgRecord& o) override;

  Status PutApiKey(const ApiKeyRecord& k) override;

  Status AppendUsage(const UsageRecord& u) override;

  Status PutBlob(const std::string& digest, std::string_view data) override;

  Status PutLineage(const LineageRecord& l) override { return provenance::PutLineage(conn_, l); }
  Status PutOperatorResult(const OperatorResultRecord& r) override {
    return provenance::PutOperatorResult(conn_, r);
  }
  Status PurgeWorkflow(const std::string& workflow_id) override {
    return provenance::PurgeWorkflow(conn_, workflow_id);
  }
  Status PutCollection(const CollectionRecord& c) override { return collections::Put(conn_, c); }
  Result<int> AddCollectionVersion(const CollectionRecord& c) override {
    return collections::AddVersion(conn_, c);
  }
  Status DeleteCollection(const std::string& org_id, const std::string& name) override {
    return collections::Delete(conn_, org_id, name);
  }

 private:
  Connection& conn_;
};

}  // namespace flowmesh::state::store_internal
