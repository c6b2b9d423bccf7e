// SQL for collection versions (CollectionRecord). Internal to the store: store.cc and
// store_rows.cc call these with the writer or a reader connection. A ready version holds
// one blob reference on each of its two digests; Put moves them as the row changes and
// Delete drops them.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "state/records.h"
#include "state/sqlite_db.h"

namespace flowmesh::state::collections {

Status Put(Connection& conn, const CollectionRecord& c);
// Inserts `c` as the next version of (org, name); returns the version it got.
Result<int> AddVersion(Connection& conn, const CollectionRecord& c);
// Deletes every version of (org, name); NotFound when there is none.
Status Delete(Connection& conn, const std::string& org_id, const std::string& name);
// Versions of `org_id` ("" = every organisation), of `name` when not empty, ordered by
// name then version.
Result<std::vector<CollectionRecord>> List(Connection& conn, const std::string& org_id,
                                           const std::string& name);

}  // namespace flowmesh::state::collections
