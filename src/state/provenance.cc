#include "state/provenance.h"

#include <fmt/format.h>

#include "common/clock.h"

namespace flowmesh::state::provenance {
namespace {

Status AddRef(Connection& conn, const std::string& digest, int64_t size, int delta) {
  if (digest.empty()) return Status::Ok();
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(
      "INSERT INTO blob_refs (digest, refs, size, updated_at) VALUES (?1, MAX(?2, 0), ?3, ?4) "
      "ON CONFLICT(digest) DO UPDATE SET refs = MAX(refs + ?2, 0), updated_at = ?4, "
      "size = MAX(size, excluded.size)"));
  s.Bind(1, digest).Bind(2, delta).Bind(3, size).Bind(4, WallSeconds());
  return s.Run();
}

// The digest a row names now ("" when there is no row).
Result<std::string> CurrentDigest(Connection& conn, const std::string& sql, const std::string& a,
                                  const std::string* b) {
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(sql));
  s.Bind(1, a);
  if (b != nullptr) s.Bind(2, *b);
  FM_ASSIGN_OR_RETURN(bool row, s.Step());
  return row ? s.Text(0) : std::string();
}

Status MoveRef(Connection& conn, const std::string& old_digest, const std::string& new_digest,
               int64_t size) {
  if (old_digest == new_digest) return Status::Ok();
  FM_RETURN_IF_ERROR(AddRef(conn, old_digest, 0, -1));
  return AddRef(conn, new_digest, size, +1);
}

// Drops the references every row of `sql` (one digest column, ?1 = workflow id) holds.
Status DropRefs(Connection& conn, const std::string& sql, const std::string& workflow_id) {
  std::vector<std::string> digests;
  {
    FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(sql));
    s.Bind(1, workflow_id);
    FM_ASSIGN_OR_RETURN(digests, CollectRows<std::string>(s, [](const Statement& st) { return st.Text(0); }));
  }
  for (const auto& d : digests) FM_RETURN_IF_ERROR(AddRef(conn, d, 0, -1));
  return Status::Ok();
}

}  // namespace

Status AddBlobRef(Connection& conn, const std::string& digest, int64_t size, int delta) {
  return AddRef(conn, digest, size, delta);
}

Status TrackBlob(Connection& conn, const std::string& digest, int64_t size) {
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(
      "INSERT OR IGNORE INTO blob_refs (digest, refs, size, updated_at) VALUES (?1, 0, ?2, ?3)"));
  s.Bind(1, digest).Bind(2, size).Bind(3, WallSeconds());
  return s.Run();
}

Status MoveResultRef(Connection& conn, const ResultRecord& r) {
  FM_ASSIGN_OR_RETURN(std::string old, CurrentDigest(conn, "SELECT digest FROM results WHERE task_id=?1",
                                                     r.task_id, nullptr));
  return MoveRef(conn, old, r.digest, r.size);
}

Status MoveResultFileRef(Connection& conn, const ResultFileRecord& f) {
  FM_ASSIGN_OR_RETURN(std::string old,
                      CurrentDigest(conn, "SELECT digest FROM result_files WHERE task_id=?1 AND path=?2",
                                    f.task_id, &f.path));
  return MoveRef(conn, old, f.digest, f.size);
}

Status PutLineage(Connection& conn, const LineageRecord& l) {
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(
      "INSERT INTO lineage (task_id, workflow_id, fingerprint, deterministic, inputs_json, reused, "
      "recorded_at) VALUES (?1,?2,?3,?4,?5,?6,?7) ON CONFLICT(task_id) DO UPDATE SET "
      "fingerprint=excluded.fingerprint, deterministic=excluded.deterministic, "
      "inputs_json=excluded.inputs_json, reused=excluded.reused, recorded_at=excluded.recorded_at"));
  s.Bind(1, l.task_id).Bind(2, l.workflow_id).Bind(3, l.fingerprint).Bind(4, l.deterministic ? 1 : 0);
  s.Bind(5, l.inputs_json).Bind(6, l.reused ? 1 : 0).Bind(7, l.recorded_at);
  return s.Run();
}

Status PutOperatorResult(Connection& conn, const OperatorResultRecord& r) {
  FM_ASSIGN_OR_RETURN(std::string old,
                      CurrentDigest(conn, "SELECT result_digest FROM operator_results WHERE scope_key=?1",
                                    r.scope_key, nullptr));
  FM_RETURN_IF_ERROR(MoveRef(conn, old, r.result_digest, 0));
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(
      "INSERT INTO operator_results (scope_key, fingerprint, task_type, result_digest, "
      "source_task_id, created_at) VALUES (?1,?2,?3,?4,?5,?6) ON CONFLICT(scope_key) DO UPDATE SET "
      "result_digest=excluded.result_digest, source_task_id=excluded.source_task_id, "
      "created_at=excluded.created_at"));
  s.Bind(1, r.scope_key).Bind(2, r.fingerprint).Bind(3, r.task_type).Bind(4, r.result_digest);
  s.Bind(5, r.source_task_id).Bind(6, r.created_at);
  return s.Run();
}

Status PurgeWorkflow(Connection& conn, const std::string& workflow_id) {
  FM_RETURN_IF_ERROR(DropRefs(conn,
      "SELECT r.digest FROM results r JOIN tasks t ON t.task_id = r.task_id WHERE t.workflow_id=?1",
      workflow_id));
  FM_RETURN_IF_ERROR(DropRefs(conn,
      "SELECT f.digest FROM result_files f JOIN tasks t ON t.task_id = f.task_id WHERE t.workflow_id=?1",
      workflow_id));
  // A stored operator result whose source goes: its files go with it, so it can no longer
  // be reused in full.
  FM_RETURN_IF_ERROR(DropRefs(conn,
      "SELECT o.result_digest FROM operator_results o JOIN tasks t ON t.task_id = o.source_task_id "
      "WHERE t.workflow_id=?1",
      workflow_id));
  for (const char* sql : {
           "DELETE FROM operator_results WHERE source_task_id IN "
           "(SELECT task_id FROM tasks WHERE workflow_id=?1)",
           "DELETE FROM results WHERE task_id IN (SELECT task_id FROM tasks WHERE workflow_id=?1)",
           "DELETE FROM result_files WHERE task_id IN (SELECT task_id FROM tasks WHERE workflow_id=?1)",
           "DELETE FROM lineage WHERE workflow_id=?1",
           "DELETE FROM events WHERE workflow_id=?1",
           "DELETE FROM tasks WHERE workflow_id=?1",
           "DELETE FROM workflows WHERE workflow_id=?1"}) {
    FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(sql));
    s.Bind(1, workflow_id);
    FM_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

Result<OperatorResultRecord> GetOperatorResult(Connection& conn, const std::string& scope_key) {
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(
      "SELECT scope_key, fingerprint, task_type, result_digest, source_task_id, created_at "
      "FROM operator_results WHERE scope_key=?1"));
  s.Bind(1, scope_key);
  FM_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound("no stored operator result");
  OperatorResultRecord r;
  r.scope_key = s.Text(0);
  r.fingerprint = s.Text(1);
  r.task_type = s.Text(2);
  r.result_digest = s.Text(3);
  r.source_task_id = s.Text(4);
  r.created_at = s.Double(5);
  return r;
}

Result<std::vector<LineageRecord>> ListLineage(Connection& conn, const std::string& workflow_id) {
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(
      "SELECT task_id, workflow_id, fingerprint, deterministic, inputs_json, reused, recorded_at "
      "FROM lineage WHERE workflow_id=?1 ORDER BY seq"));
  s.Bind(1, workflow_id);
  return CollectRows<LineageRecord>(s, [](const Statement& st) {
    LineageRecord l;
    l.task_id = st.Text(0);
    l.workflow_id = st.Text(1);
    l.fingerprint = st.Text(2);
    l.deterministic = st.Int(3) != 0;
    l.inputs_json = st.Text(4);
    l.reused = st.Int(5) != 0;
    l.recorded_at = st.Double(6);
    return l;
  });
}

Result<int64_t> BlobRefs(Connection& conn, const std::string& digest) {
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare("SELECT refs FROM blob_refs WHERE digest=?1"));
  s.Bind(1, digest);
  FM_ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return NotFound(fmt::format("blob {} is not tracked", digest));
  return s.Int64(0);
}

Result<std::vector<std::string>> ExpiredWorkflows(Connection& conn, double cutoff, int limit) {
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(
      "SELECT workflow_id FROM workflows WHERE status IN ('DONE','FAILED','CANCELLED') "
      "AND updated_at < ?1 ORDER BY updated_at LIMIT ?2"));
  s.Bind(1, cutoff).Bind(2, limit);
  return CollectRows<std::string>(s, [](const Statement& st) { return st.Text(0); });
}

Status CollectUnreferenced(Connection& conn, double cutoff, std::vector<std::string>* files,
                           GcStats* stats) {
  struct Victim {
    std::string digest;
    int64_t size;
  };
  std::vector<Victim> victims;
  {
    FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(
        "SELECT digest, size FROM blob_refs WHERE refs <= 0 AND updated_at < ?1 LIMIT 10000"));
    s.Bind(1, cutoff);
    FM_ASSIGN_OR_RETURN(victims, CollectRows<Victim>(s, [](const Statement& st) {
                          return Victim{st.Text(0), st.Int64(1)};
                        }));
  }
  for (const auto& v : victims) {
    FM_ASSIGN_OR_RETURN(Statement del_inline, conn.Prepare("DELETE FROM blobs WHERE digest=?1"));
    del_inline.Bind(1, v.digest);
    FM_RETURN_IF_ERROR(del_inline.Run());
    bool was_inline = conn.Changes() > 0;
    FM_ASSIGN_OR_RETURN(Statement del_ref, conn.Prepare("DELETE FROM blob_refs WHERE digest=?1"));
    del_ref.Bind(1, v.digest);
    FM_RETURN_IF_ERROR(del_ref.Run());
    if (!was_inline) files->push_back(v.digest);
    stats->blobs_removed += 1;
    stats->bytes_removed += v.size;
  }
  return Status::Ok();
}

}  // namespace flowmesh::state::provenance
