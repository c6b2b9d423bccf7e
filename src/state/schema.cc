#include "state/schema.h"

#include <fmt/format.h>

#include <array>

namespace flowmesh::state {
namespace {

// Every table keeps an explicit `seq INTEGER PRIMARY KEY` where listing order matters:
// upserts (ON CONFLICT DO UPDATE) keep it, so order is first-insertion order, and VACUUM
// cannot renumber it. Vectors are JSON text.
constexpr const char* kMigration1 = R"sql(
CREATE TABLE orgs (
  org_id     TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  created_at REAL NOT NULL DEFAULT 0
);
INSERT INTO orgs (org_id, name, created_at) VALUES ('org-default', 'default', 0);

CREATE TABLE workflows (
  seq          INTEGER PRIMARY KEY,
  workflow_id  TEXT NOT NULL UNIQUE,
  name         TEXT NOT NULL,
  org_id       TEXT NOT NULL,
  owner_id     TEXT NOT NULL,
  format       TEXT NOT NULL,
  source_text  TEXT NOT NULL,
  submitted_at REAL NOT NULL,
  updated_at   REAL NOT NULL,
  status       TEXT NOT NULL
);
CREATE INDEX workflows_status ON workflows (status);

CREATE TABLE tasks (
  seq                INTEGER PRIMARY KEY,
  task_id            TEXT NOT NULL UNIQUE,
  workflow_id        TEXT NOT NULL,
  org_id             TEXT NOT NULL,
  owner_id           TEXT NOT NULL,
  supplier_id        TEXT NOT NULL,
  task_name          TEXT NOT NULL,
  graph_node_name    TEXT NOT NULL,
  task_type          TEXT NOT NULL,
  category           TEXT NOT NULL,
  status             TEXT NOT NULL,
  assigned_worker    TEXT NOT NULL,
  submitted_at       REAL NOT NULL,
  dispatched_ts      REAL NOT NULL,
  started_ts         REAL NOT NULL,
  finished_ts        REAL NOT NULL,
  attempts           INTEGER NOT NULL,
  max_attempts       INTEGER NOT NULL,
  failed_workers     TEXT NOT NULL,
  depends_on         TEXT NOT NULL,
  dependents         TEXT NOT NULL,
  last_error         TEXT NOT NULL,
  error              TEXT NOT NULL,
  spec_json          TEXT NOT NULL,
  latest_update_json TEXT NOT NULL,
  result_digest      TEXT NOT NULL,
  usages_json        TEXT NOT NULL
);
CREATE INDEX tasks_workflow ON tasks (workflow_id, seq);
CREATE INDEX tasks_status ON tasks (status);

CREATE TABLE events (
  cursor      INTEGER PRIMARY KEY,
  workflow_id TEXT NOT NULL,
  task_id     TEXT NOT NULL,
  ts          REAL NOT NULL,
  type        TEXT NOT NULL,
  json        TEXT NOT NULL
);
CREATE INDEX events_workflow ON events (workflow_id, cursor);
CREATE INDEX events_task ON events (task_id, cursor);

CREATE TABLE workers (
  seq           INTEGER PRIMARY KEY,
  worker_id     TEXT NOT NULL UNIQUE,
  node_id       TEXT NOT NULL,
  name          TEXT NOT NULL,
  status        TEXT NOT NULL,
  info_json     TEXT NOT NULL,
  registered_at REAL NOT NULL,
  last_seen     REAL NOT NULL,
  cordoned      INTEGER NOT NULL
);

CREATE TABLE nodes (
  seq           INTEGER PRIMARY KEY,
  node_id       TEXT NOT NULL UNIQUE,
  alias         TEXT NOT NULL,
  info_json     TEXT NOT NULL,
  registered_at REAL NOT NULL,
  last_seen     REAL NOT NULL
);

CREATE TABLE results (
  task_id       TEXT PRIMARY KEY,
  digest        TEXT NOT NULL,
  size          INTEGER NOT NULL,
  worker_id     TEXT NOT NULL,
  metadata_json TEXT NOT NULL,
  received_at   REAL NOT NULL
);

CREATE TABLE result_files (
  seq     INTEGER PRIMARY KEY,
  task_id TEXT NOT NULL,
  path    TEXT NOT NULL,
  digest  TEXT NOT NULL,
  size    INTEGER NOT NULL,
  UNIQUE (task_id, path)
);

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql";

// Small content-addressed blobs live in the database, committed with the records that
// name them (one group-commit fsync instead of a file, an fsync and a rename each).
constexpr const char* kMigration2 = R"sql(
CREATE TABLE blobs (
  digest     TEXT PRIMARY KEY,
  size       INTEGER NOT NULL,
  data       BLOB NOT NULL,
  created_at REAL NOT NULL
) WITHOUT ROWID;
)sql";

// Tenancy: organisation policy, API keys (hashes only) and per-attempt usage rows.
constexpr const char* kMigration3 = R"sql(
ALTER TABLE orgs ADD COLUMN policy_json TEXT NOT NULL DEFAULT '{}';
CREATE TABLE api_keys (
  seq          INTEGER PRIMARY KEY,
  key_id       TEXT NOT NULL UNIQUE,
  org_id       TEXT NOT NULL,
  principal_id TEXT NOT NULL,
  name         TEXT NOT NULL,
  scopes       TEXT NOT NULL,
  key_hash     TEXT NOT NULL UNIQUE,
  prefix       TEXT NOT NULL,
  created_at   REAL NOT NULL,
  revoked_at   REAL NOT NULL
);
CREATE TABLE usage (
  seq           INTEGER PRIMARY KEY,
  task_id       TEXT NOT NULL,
  workflow_id   TEXT NOT NULL,
  org_id        TEXT NOT NULL,
  principal_id  TEXT NOT NULL,
  supplier_id   TEXT NOT NULL,
  worker_id     TEXT NOT NULL,
  attempt       INTEGER NOT NULL,
  started_at    REAL NOT NULL,
  finished_at   REAL NOT NULL,
  runtime_sec   REAL NOT NULL,
  hardware      TEXT NOT NULL,
  cost_per_hour REAL NOT NULL,
  cost          REAL NOT NULL,
  status        TEXT NOT NULL
);
CREATE INDEX usage_org_time ON usage (org_id, started_at);
CREATE INDEX tasks_org_status ON tasks (org_id, status);
)sql";

// Provenance: blob reference counts (results, result files and operator results each
// hold one), stored operator results for de-duplication, per-task lineage, and the
// published merge fields on tasks.
constexpr const char* kMigration4 = R"sql(
CREATE TABLE blob_refs (
  digest     TEXT PRIMARY KEY,
  refs       INTEGER NOT NULL,
  size       INTEGER NOT NULL,
  updated_at REAL NOT NULL
) WITHOUT ROWID;
INSERT INTO blob_refs (digest, refs, size, updated_at)
  SELECT digest, COUNT(*), MAX(size), 0 FROM
    (SELECT digest, size FROM results UNION ALL SELECT digest, size FROM result_files)
  GROUP BY digest;
INSERT OR IGNORE INTO blob_refs (digest, refs, size, updated_at)
  SELECT digest, 0, size, created_at FROM blobs;
CREATE INDEX blob_refs_unreferenced ON blob_refs (refs, updated_at);

CREATE TABLE operator_results (
  scope_key      TEXT PRIMARY KEY,
  fingerprint    TEXT NOT NULL,
  task_type      TEXT NOT NULL,
  result_digest  TEXT NOT NULL,
  source_task_id TEXT NOT NULL,
  created_at     REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE lineage (
  seq           INTEGER PRIMARY KEY,
  task_id       TEXT NOT NULL UNIQUE,
  workflow_id   TEXT NOT NULL,
  fingerprint   TEXT NOT NULL,
  deterministic INTEGER NOT NULL,
  inputs_json   TEXT NOT NULL,
  reused        INTEGER NOT NULL,
  recorded_at   REAL NOT NULL
);
CREATE INDEX lineage_workflow ON lineage (workflow_id, seq);

ALTER TABLE tasks ADD COLUMN merge_key TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN merged_parent_id TEXT NOT NULL DEFAULT '';
)sql";

// Schedule hints move out of the stored spec into their own column (the spec is the
// user's, the hints are the scheduler's).
constexpr const char* kMigration5 = R"sql(
ALTER TABLE tasks ADD COLUMN schedule_json TEXT NOT NULL DEFAULT '{}';
UPDATE tasks
   SET schedule_json = json_extract(spec_json, '$._schedule'),
       spec_json = json_remove(spec_json, '$._schedule')
 WHERE json_valid(spec_json) AND json_type(spec_json, '$._schedule') = 'object';
)sql";

// Tokens per attempt in the usage rows (billing of inference, api and agent tasks).
constexpr const char* kMigration6 = R"sql(
ALTER TABLE usage ADD COLUMN prompt_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN completion_tokens INTEGER NOT NULL DEFAULT 0;
)sql";

// Collections: named, versioned vector indexes per organisation.
constexpr const char* kMigration7 = R"sql(
CREATE TABLE collections (
  org_id         TEXT NOT NULL,
  name           TEXT NOT NULL,
  version        INTEGER NOT NULL,
  status         TEXT NOT NULL,
  workflow_id    TEXT NOT NULL,
  task_id        TEXT NOT NULL,
  build_json     TEXT NOT NULL,
  model_key      TEXT NOT NULL,
  dim            INTEGER NOT NULL,
  count          INTEGER NOT NULL,
  documents      INTEGER NOT NULL,
  metric         TEXT NOT NULL,
  index_digest   TEXT NOT NULL,
  index_size     INTEGER NOT NULL,
  entries_digest TEXT NOT NULL,
  entries_size   INTEGER NOT NULL,
  error          TEXT NOT NULL,
  created_at     REAL NOT NULL,
  updated_at     REAL NOT NULL,
  PRIMARY KEY (org_id, name, version)
) WITHOUT ROWID;
)sql";

constexpr std::array<const char*, 7> kMigrations = {kMigration1, kMigration2, kMigration3,
                                                     kMigration4, kMigration5, kMigration6,
                                                     kMigration7};

Result<int> UserVersion(Connection& conn) {
  FM_ASSIGN_OR_RETURN(Statement stmt, conn.Prepare("PRAGMA user_version"));
  FM_ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Int(0) : 0;
}

}  // namespace

int LatestSchemaVersion() { return static_cast<int>(kMigrations.size()); }

Status ApplyMigrations(Connection& conn) {
  // IMMEDIATE: two processes opening a fresh file must not both migrate it.
  FM_RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
  auto migrate = [&]() -> Status {
    FM_ASSIGN_OR_RETURN(int version, UserVersion(conn));
    if (version > LatestSchemaVersion()) {
      return FailedPrecondition(
          fmt::format("database schema version {} is newer than this build's {}", version,
                      LatestSchemaVersion()));
    }
    for (int v = version; v < LatestSchemaVersion(); ++v) {
      Status s = conn.Exec(kMigrations[static_cast<size_t>(v)]);
      if (!s.ok()) {
        return Status(s.code(), fmt::format("migration {}: {}", v + 1, s.message()));
      }
    }
    if (version != LatestSchemaVersion()) {
      // PRAGMA takes no bound parameters; the value is our own integer.
      FM_RETURN_IF_ERROR(conn.Exec(fmt::format("PRAGMA user_version={}", LatestSchemaVersion())));
    }
    return Status::Ok();
  };
  Status s = migrate();
  if (!s.ok()) {
    if (!conn.AutoCommit()) (void)conn.Exec("ROLLBACK");
    return s;
  }
  return conn.Exec("COMMIT");
}

}  // namespace flowmesh::state
