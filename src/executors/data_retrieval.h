// The `data_retrieval` executor: DataFrames from SQLite files, PostgreSQL (libpq), HTTP(S)
// CSV / JSONL / JSON and local files, with column selection, typed filters and row / byte
// limits, returned in the published shape {type, items: [{index, query, params, table,
// rows, …}], count}. One item per params row of a SQL template (one item otherwise).
//
// What a task may reach on a shared worker: local files and SQLite databases only under
// the directories the operator lists (DataRetrievalConfig::data_dirs, canonical paths so a
// symlink cannot lead out; none by default; the SQLite path ":memory:" needs none);
// SQLite read-only with ATTACH and every
// statement but SELECT refused; PostgreSQL over TCP only (no worker-local socket, and no
// connection keyword that reads a worker file: passfile, service, sslcert, sslkey,
// sslrootcert, sslcrl, sslcrldir), each query in a READ ONLY transaction with a statement
// timeout. Credentials are `{{credential:NAME}}` placeholders in connection_string, url and
// headers, resolved on the worker just before use and never returned.
//
// Runs on a TaskRunner pool thread and blocks; checks ctx.cancelled while a query runs.
#pragma once

#include <string>
#include <vector>

#include "executors/data_retrieval_request.h"
#include "executors/executor.h"

namespace flowmesh::executors {

struct DataRetrievalConfig {
  std::vector<std::string> data_dirs;  // directories file / sqlite sources may read
  retrieval::RetrievalLimits limits;
};

class DataRetrievalExecutor : public Executor {
 public:
  explicit DataRetrievalExecutor(DataRetrievalConfig config = {}) : config_(std::move(config)) {}
  Result<nlohmann::json> Run(TaskContext& ctx) override;

 private:
  DataRetrievalConfig config_;
};

// Registers data_retrieval with `config` (replacing the default BuiltinExecutors gives it).
void RegisterDataRetrievalExecutor(ExecutorRegistry& registry, DataRetrievalConfig config);

// The canonical path of `path` (relative paths are taken from the first of `dirs`) if it is
// a regular file inside one of `dirs`; FailedPrecondition when it is outside them or no
// directory is allowed, NotFound when it does not exist there.
Result<std::string> AllowedPath(const std::string& path, const std::vector<std::string>& dirs);

// libpq connection options a task may not use on a shared worker, or a host that is not
// reachable over TCP; InvalidArgument / FailedPrecondition saying which.
Status CheckPostgresConnection(const std::string& connection_string);

}  // namespace flowmesh::executors
