// SQL for provenance: blob reference counts, operator results, lineage, and retention.
// Internal to the store (store.cc and store_rows.cc call these with its writer or a reader
// connection).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "state/records.h"
#include "state/sqlite_db.h"

namespace flowmesh::state::provenance {

// Adds `delta` references to a blob (tracking it if needed; never below 0).
Status AddBlobRef(Connection& conn, const std::string& digest, int64_t size, int delta);
// Registers a blob (refs 0) if it is not tracked yet.
Status TrackBlob(Connection& conn, const std::string& digest, int64_t size);
// Moves the reference a result (or result file) row holds from its previous digest, if
// any, to the new one. Call before the row is written.
Status MoveResultRef(Connection& conn, const ResultRecord& r);
Status MoveResultFileRef(Connection& conn, const ResultFileRecord& f);

Status PutLineage(Connection& conn, const LineageRecord& l);
Status PutOperatorResult(Connection& conn, const OperatorResultRecord& r);
Status PurgeWorkflow(Connection& conn, const std::string& workflow_id);

Result<OperatorResultRecord> GetOperatorResult(Connection& conn, const std::string& scope_key);
Result<std::vector<LineageRecord>> ListLineage(Connection& conn, const std::string& workflow_id);
Result<int64_t> BlobRefs(Connection& conn, const std::string& digest);
Result<std::vector<std::string>> ExpiredWorkflows(Connection& conn, double cutoff, int limit);
// Deletes unreferenced blob rows (and inline data) last changed before `cutoff`; appends
// the digests that were not inline to `files`.
Status CollectUnreferenced(Connection& conn, double cutoff, std::vector<std::string>* files,
                           GcStats* stats);

}  // namespace flowmesh::state::provenance
