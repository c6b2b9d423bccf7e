// The executor interface: one implementation per task type family. An executor is
// created per task attempt, runs on a worker pool thread and may block; it must check
// `ctx.cancelled` regularly and return a Cancelled status once it is set.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::rag {
class Collection;  // rag/collection.h
}

namespace flowmesh::executors {

// What the server grants one attempt: the values of the credentials its spec names
// (`{{credential:NAME}}`), and the server's default api endpoint when asked for it.
struct CredentialGrant {
  std::map<std::string, std::string> values;
  std::string default_url;            // "" when the server has none
  std::string default_authorization;  // Authorization header for default_url ("" = none)
};
using CredentialFetcher = std::function<Result<CredentialGrant>(
    const std::vector<std::string>& names, bool default_endpoint)>;

// A file an attempt produced, to be kept with its result: `name` is its relative path in
// the result (a/b.txt), `path` the file on this host.
struct OutputFile {
  std::string name;
  std::string path;
};
// What became of it: stored in the content store (digest = sha256 hex), or not and why.
struct StoredFile {
  std::string name;
  std::string digest;
  int64_t size = 0;
  bool stored = false;
  std::string why_not;  // when !stored
};
// Uploads an attempt's files to the server's content store (POST /results/{id}/files).
// Per-file failures (too large, a name the store refuses) are reported, not errors; an
// error means the server could not be reached or refused the attempt.
using FileUploader =
    std::function<Result<std::vector<StoredFile>>(const std::vector<OutputFile>& files)>;

// Keeps an attempt's result files in the server's content store through `put_files`:
// `files` lists them as {name, sha256, ...} (each `name` relative to `dir`); each entry
// gets `stored` (true when the store holds the bytes that were hashed) or `why_not`, and a
// file not stored is logged. Without a server (`put_files` unset) the list is left as is.
// Unavailable, worded with `what` ("python task: its output files"), when the server
// could not take them.
struct TaskContext;
Status StoreResultFiles(TaskContext& ctx, const std::string& dir, nlohmann::json& files,
                        const std::string& what);

// A ready collection of the attempt's organisation by name (version 0: the newest ready
// one), resolved by the server and loaded from the worker's cache
// (worker/collection_client.h). NotFound when the organisation has no such collection.
using CollectionFetcher = std::function<Result<std::shared_ptr<const rag::Collection>>(
    const std::string& name, int64_t version)>;

// Everything one attempt needs. The callbacks are thread-safe and may be called from the
// executor's thread (or threads it starts) until Run returns.
struct TaskContext {
  std::string task_id;
  std::string workflow_id;
  int attempt = 1;
  std::string task_type;
  nlohmann::json spec;                               // resolved task spec (object)
  std::function<void(std::string line)> log;         // one log line (no trailing newline)
  std::function<void(nlohmann::json update)> update;  // progress update (TASK_UPDATE)
  const std::atomic<bool>& cancelled;                // set on interrupt, timeout or stop
  // Asks the server for credentials at the last moment; unset where no server is reachable
  // (then a spec naming a credential fails with FailedPrecondition).
  CredentialFetcher credentials = nullptr;
  // Keeps result files in the server's content store; unset where no server is reachable
  // (then files are listed with their digests only).
  FileUploader put_files = nullptr;
  // Searches go to embedded collections through this; unset where no server is reachable.
  CollectionFetcher fetch_collection = nullptr;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Returns the result JSON, or an error: InvalidArgument/FailedPrecondition/Unimplemented
  // are permanent (see IsRetryable), Cancelled when interrupted.
  virtual Result<nlohmann::json> Run(TaskContext& ctx) = 0;
};

// Whether the scheduler may retry an attempt that failed with `status`.
bool IsRetryable(const Status& status);

using ExecutorFactory = std::function<std::unique_ptr<Executor>()>;

// Maps task types to executor factories. Filled once at start-up, then read-only (reads
// are safe from any thread).
class ExecutorRegistry {
 public:
  void Register(const std::string& task_type, ExecutorFactory factory);
  // NotFound (non-retryable on this worker is decided by the caller) for unknown types.
  Result<std::unique_ptr<Executor>> Create(const std::string& task_type) const;
  bool Has(const std::string& task_type) const { return factories_.count(task_type) > 0; }
  // Sorted task types this registry can run.
  std::vector<std::string> RegisteredTaskTypes() const;

 private:
  std::map<std::string, ExecutorFactory> factories_;
};

// A registry holding every built-in executor whose runtime is available here.
ExecutorRegistry BuiltinExecutors();
// BuiltinExecutors().RegisteredTaskTypes().
std::vector<std::string> RegisteredTaskTypes();

}  // namespace flowmesh::executors
