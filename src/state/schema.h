// The database schema as an ordered list of migrations. The number of migrations applied
// is recorded in PRAGMA user_version; opening a database applies the missing ones, in
// order, inside one transaction. Append new migrations; never edit a released one.
#pragma once

#include "common/status.h"
#include "state/sqlite_db.h"

namespace flowmesh::state {

// The schema version this build writes (= number of migrations).
int LatestSchemaVersion();

// Brings the database on `conn` (the writer connection) up to LatestSchemaVersion().
// FailedPrecondition if the file was written by a newer build.
Status ApplyMigrations(Connection& conn);

}  // namespace flowmesh::state
