// Per-invocation state shared by the verb implementations: parsed options, environment,
// output streams, FLOWMESH_HOME layout, the resolved server endpoint and a lazily created
// HTTP client. Single-threaded, lives for one Run().
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/config.h"
#include "http/http.h"

namespace flowmesh::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUnreachable = 2;
inline constexpr int kExitCancelled = 130;

// Reads a whole file (a workflow document); false when it cannot be opened.
bool ReadFile(const std::string& path, std::string* out);

class Context {
 public:
  Context(const Invocation& inv, const Environment& env, Streams streams, HomeLayout layout,
          Endpoint endpoint);
  ~Context();

  const Invocation& inv;
  const Environment& env;
  Streams io;
  HomeLayout layout;
  Endpoint endpoint;
  std::string config_file;  // the config file read (it may not exist)

  http::Client& client();
  // Authorization (when a key is known) plus `extra`.
  http::Headers Headers(http::Headers extra = {}) const;

  // The outcome of one API call. On failure the error has already been printed and
  // `exit_code` says how to leave.
  struct Reply {
    bool ok = false;
    int exit_code = kExitOk;
    http::ClientResponse response;
    nlohmann::json json;  // parsed body (null when empty / not JSON)
  };
  // `path` is relative to /api/v1 unless it starts with "/healthz" or "/api".
  // Statuses listed in `accept` count as success (e.g. 422 for validation).
  Reply Call(const std::string& method, const std::string& path, const std::string& body = "",
             http::Headers extra = {}, std::initializer_list<int> accept = {});
  Reply Get(const std::string& path) { return Call("GET", path); }

  // Prints the connection error for a transport failure and returns kExitUnreachable.
  int ReportUnreachable(const Status& status);
  // Prints `value` as pretty JSON on stdout.
  void PrintJson(const nlohmann::json& value);

  static std::string ApiPath(const std::string& path);

  // "?k=v&…" (percent-encoded; empty values skipped) from explicit pairs plus the
  // invocation's --query filters. On a malformed --query prints the error and returns
  // nullopt.
  std::optional<std::string> Query(std::vector<std::pair<std::string, std::string>> pairs);
  // Adds a repeatable filter to `pairs` when it has exactly one value; several are matched
  // on our side (FilterByAny), as a server before the API change keeps one per key.
  static void AddRepeated(std::vector<std::pair<std::string, std::string>>* pairs,
                          const std::string& key, const std::vector<std::string>& values) {
    if (values.size() == 1) pairs->emplace_back(key, values[0]);
  }
  // The body as given when --json, else FormatRecord(json).
  int PrintBodyOrRecord(const Reply& reply);

 private:
  std::unique_ptr<http::Client> client_;
};

// Follows an SSE stream, reconnecting with Last-Event-ID when it drops before `eos`;
// `cursor` resumes from a known event. Returns OK on eos, the last error otherwise.
Status FollowStream(Context& ctx, const std::string& path,
                    const std::function<void(const http::SseEvent&)>& on_event,
                    const std::string& cursor = "");
int ReportStreamError(Context& ctx, const Status& st);
// Follows a task to its end, printing status changes and log lines; exit 0 DONE, 1 FAILED,
// 130 CANCELLED.
int WatchTask(Context& ctx, const std::string& task_id);
// Saves a task's archived log (GET /results/{task}/logs) as `file`.
int SaveTaskLog(Context& ctx, const std::string& task_id, const std::string& file);

// Verb implementations (return the exit code).
int StackUp(Context& ctx);
int StackDown(Context& ctx);
int StackStatus(Context& ctx);
int StackLogs(Context& ctx);
int StackWorkerUpCpu(Context& ctx);
int StackWorkerUpGpu(Context& ctx);
int StackWorkerList(Context& ctx);
int StackWorkerAction(Context& ctx, const std::string& action);  // start|stop|down

int TraceFetch(Context& ctx);
int TraceAnalyze(Context& ctx);

int WorkflowSubmit(Context& ctx);
int WorkflowValidate(Context& ctx);
int WorkflowList(Context& ctx);
int WorkflowInfo(Context& ctx);
int WorkflowWatch(Context& ctx);
int WorkflowCancel(Context& ctx);
int WorkflowLogsShow(Context& ctx);
int WorkflowLogsStream(Context& ctx);
int WorkflowLogsDownload(Context& ctx);

int TaskList(Context& ctx);
int TaskInfo(Context& ctx);
int TaskLogs(Context& ctx);
int TaskLogsStream(Context& ctx);
int TaskLogsDownload(Context& ctx);
int TaskStop(Context& ctx);
int TaskWatch(Context& ctx);
int WorkerCordons(Context& ctx);
int NodeList(Context& ctx);
int NodeInfo(Context& ctx);
int NodeWorkerList(Context& ctx);
int NodeWorkerAction(Context& ctx, const std::string& action);  // start|stop
int SystemMetrics(Context& ctx);
int SystemVersion(Context& ctx);
int Info(Context& ctx);
int Deinit(Context& ctx);
int SshConnect(Context& ctx);
int SshRun(Context& ctx);
int SshProxy(Context& ctx);
int SshConnections(Context& ctx);
int ResultFetch(Context& ctx);
int ResultDownload(Context& ctx);
int WorkerList(Context& ctx);
int WorkerInfo(Context& ctx);
int WorkerCordon(Context& ctx, bool cordon);
int AdminOrgCreate(Context& ctx);
int AdminOrgSet(Context& ctx);
int AdminOrgList(Context& ctx);
int AdminKeyCreate(Context& ctx);
int AdminKeyList(Context& ctx);
int AdminKeyRevoke(Context& ctx);
int Usage(Context& ctx);
// secrets.cc: `flowmesh secret set|list|delete`.
int SecretSet(Context& ctx);
int CollectionCreate(Context& ctx);
int CollectionList(Context& ctx);
int CollectionInfo(Context& ctx);
int CollectionDelete(Context& ctx);
int CollectionQuery(Context& ctx);
int SecretList(Context& ctx);
int SecretDelete(Context& ctx);
int Init(Context& ctx);
int ShowConfig(Context& ctx);
int Health(Context& ctx);

}  // namespace flowmesh::cli
