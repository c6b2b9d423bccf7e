#include "state/collections.h"

#include "state/provenance.h"

namespace flowmesh::state::collections {
namespace {

constexpr const char* kCols =
    "org_id, name, version, status, workflow_id, task_id, build_json, model_key, dim, count, "
    "documents, metric, index_digest, index_size, entries_digest, entries_size, error, "
    "created_at, updated_at";

CollectionRecord Read(const Statement& s) {
  CollectionRecord c;
  c.org_id = s.Text(0);
  c.name = s.Text(1);
  c.version = s.Int(2);
  c.status = s.Text(3);
  c.workflow_id = s.Text(4);
  c.task_id = s.Text(5);
  c.build_json = s.Text(6);
  c.model_key = s.Text(7);
  c.dim = s.Int64(8);
  c.count = s.Int64(9);
  c.documents = s.Int64(10);
  c.metric = s.Text(11);
  c.index_digest = s.Text(12);
  c.index_size = s.Int64(13);
  c.entries_digest = s.Text(14);
  c.entries_size = s.Int64(15);
  c.error = s.Text(16);
  c.created_at = s.Double(17);
  c.updated_at = s.Double(18);
  return c;
}

// The references a row holds: its two blobs while it is ready.
Status Hold(Connection& conn, const CollectionRecord& c, int delta) {
  if (c.status != "ready") return Status::Ok();
  FM_RETURN_IF_ERROR(provenance::AddBlobRef(conn, c.index_digest, c.index_size, delta));
  return provenance::AddBlobRef(conn, c.entries_digest, c.entries_size, delta);
}

Result<std::vector<CollectionRecord>> Select(Connection& conn, const std::string& where,
                                             const std::vector<std::string>& args) {
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(std::string("SELECT ") + kCols +
                                                " FROM collections" + where +
                                                " ORDER BY org_id, name, version"));
  for (size_t i = 0; i < args.size(); ++i) s.Bind(static_cast<int>(i + 1), args[i]);
  return CollectRows<CollectionRecord>(s, Read);
}

}  // namespace

Status Put(Connection& conn, const CollectionRecord& c) {
  FM_ASSIGN_OR_RETURN(auto old, Select(conn, " WHERE org_id=?1 AND name=?2 AND version=?3",
                                       {c.org_id, c.name, std::to_string(c.version)}));
  // (?3 is bound as text; SQLite applies the column's INTEGER affinity to it.)
  // Take the new references before dropping the old ones, so a shared digest never
  // reaches zero in between.
  FM_RETURN_IF_ERROR(Hold(conn, c, +1));
  if (!old.empty()) FM_RETURN_IF_ERROR(Hold(conn, old.front(), -1));
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(
      std::string("INSERT OR REPLACE INTO collections (") + kCols +
      ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)"));
  s.Bind(1, c.org_id).Bind(2, c.name).Bind(3, c.version).Bind(4, c.status)
      .Bind(5, c.workflow_id).Bind(6, c.task_id).Bind(7, c.build_json).Bind(8, c.model_key)
      .Bind(9, c.dim).Bind(10, c.count).Bind(11, c.documents).Bind(12, c.metric)
      .Bind(13, c.index_digest).Bind(14, c.index_size).Bind(15, c.entries_digest)
      .Bind(16, c.entries_size).Bind(17, c.error).Bind(18, c.created_at)
      .Bind(19, c.updated_at);
  return s.Run();
}

Result<int> AddVersion(Connection& conn, const CollectionRecord& c) {
  FM_ASSIGN_OR_RETURN(Statement s, conn.Prepare(
      "SELECT COALESCE(MAX(version), 0) FROM collections WHERE org_id=?1 AND name=?2"));
  s.Bind(1, c.org_id).Bind(2, c.name);
  FM_ASSIGN_OR_RETURN(bool row, s.Step());
  CollectionRecord next = c;
  next.version = (row ? s.Int(0) : 0) + 1;
  FM_RETURN_IF_ERROR(Put(conn, next));
  return next.version;
}

Status Delete(Connection& conn, const std::string& org_id, const std::string& name) {
  FM_ASSIGN_OR_RETURN(auto rows, Select(conn, " WHERE org_id=?1 AND name=?2", {org_id, name}));
  if (rows.empty()) return NotFound("no collection " + name);
  for (const auto& c : rows) FM_RETURN_IF_ERROR(Hold(conn, c, -1));
  FM_ASSIGN_OR_RETURN(Statement s,
                      conn.Prepare("DELETE FROM collections WHERE org_id=?1 AND name=?2"));
  s.Bind(1, org_id).Bind(2, name);
  return s.Run();
}

Result<std::vector<CollectionRecord>> List(Connection& conn, const std::string& org_id,
                                           const std::string& name) {
  std::string where;
  std::vector<std::string> args;
  auto add = [&](const char* column, const std::string& value) {
    if (value.empty()) return;
    where += (where.empty() ? " WHERE " : " AND ") + std::string(column) + "=?" +
             std::to_string(args.size() + 1);
    args.push_back(value);
  };
  add("org_id", org_id);
  add("name", name);
  return Select(conn, where, args);
}

}  // namespace flowmesh::state::collections
