// Per-invocation state shared by the verb implementations: parsed options, environment,
// output streams, FLOWMESH_HOME layout, the resolved server endpoint and a lazily created
// HTTP client. Single-threaded, lives for one Run().
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/config.h"
#include "http/http.h"

namespace flowmesh::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUnreachable = 2;
inline constexpr int kExitCancelled = 130;

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

 private:
  std::unique_ptr<http::Client> client_;
};

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

int TaskList(Context& ctx);
int TaskInfo(Context& ctx);
int TaskLogs(Context& ctx);
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
int Init(Context& ctx);
int ShowConfig(Context& ctx);
int Health(Context& ctx);

}  // namespace flowmesh::cli
