// The `flowmesh` command: argument parsing (CLI11) and dispatch to the verb
// implementations in stack.cc, workflow.cc and resources.cc. main() only calls Run().
#pragma once

#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace flowmesh::cli {

// Everything the command line said, filled by the parser; `command` names the verb
// path ("workflow logs show"). Plain data so parsing is tested without running anything.
struct Invocation {
  // Global options.
  std::string url;
  std::string api_key;
  bool json = false;

  std::string command;
  std::vector<std::string> names;  // positional ids / worker names / files, per verb
  std::string format = "native";   // workflow submit/validate
  int count = 0;                   // stack worker up cpu N
  std::string targets;             // stack worker up gpu --targets
  std::string worker_alias;
  double cost_per_hour = -1;       // < 0: not sent
  double speed = -1;               // relative throughput; <= 0: not sent
  std::vector<std::string> tags;
  std::string provider = "native";
  std::string workflow_filter;     // task list --workflow
  std::string include;             // result download --include
  std::string output;              // result download -o
  int limit = 0;                   // logs show --limit (0: server default)
  std::string after, before;       // logs show cursors
  bool follow = false;             // stack logs -f
  int lines = 50;                  // stack logs -n
  std::string log_name = "server"; // stack logs [server|redis|supervisor]
  bool results = false;            // workflow watch --results
  int port = 0;                    // stack up --port (0: env or 8000)
  int redis_port = 0;              // stack up --redis-port (0: env or 6379)
  std::string host;                // stack up --host (empty: env FLOWMESH_HOST or 127.0.0.1)
  std::string trace_kind = "lineage";  // trace fetch --kind lineage|spans|assets
  // admin org / key, usage
  std::string org;                 // --org
  std::vector<std::string> scopes; // admin key create --scopes
  std::string key_name;            // admin key create --name
  std::string principal;           // admin key create --principal
  std::map<std::string, double> policy;  // admin org create/set --max-… / --weight
  std::string from, to;            // usage --from/--to

  // Verbs and flags of the published CLI (flowmesh-cli 0.1.0 / 0.1.13).
  std::string config_path;         // init/deinit/config --config PATH
  bool force = false;              // init --force
  std::string config_source = "auto";  // config --source auto|file|env
  bool show_api_key = false;       // config --show-api-key
  double interval = 2.0;           // watch/stop/ssh polling interval (seconds)
  bool no_wait = false;            // task stop --no-wait
  std::string cursor;              // logs stream --cursor
  bool strict = false;             // workflow validate --strict
  bool local_only = false;         // workflow validate --local
  std::string id_filter;           // list --id
  std::vector<std::string> statuses;    // list --status/-s (repeatable)
  std::vector<std::string> task_ids;    // workflow list --task-id (repeatable)
  std::vector<std::string> query;       // list --query/-q key=value (repeatable)
  std::vector<std::string> tag_filter;  // list --tag (repeatable)
  std::string category, task_type, assigned_worker, graph_node;  // task list filters
  int completed = -1, failed = -1, stale = -1;  // --x/--not-x tri-state (-1: not given)
  std::string alias, node_alias, namespace_, cluster, node_id_filter, provider_filter;
  std::string analyze_view = "rich";    // trace analyze --format
  // ssh
  std::string ssh_key, ssh_gpu_memory, ssh_memory, ssh_image, ssh_user = "flowmesh";
  std::string ssh_mode = "proxy", ssh_worker, ssh_name = "ssh-session", ssh_command;
  std::string ssh_entrypoint, ssh_args, ssh_source_ip, ssh_username;
  int ssh_gpu = 0, ssh_cpu = 0, ssh_ttl = 3600, ssh_idle_timeout = 900, ssh_source_port = 0;
  int ssh_interactive = -1;        // --interactive/--non-interactive
  bool ssh_logs = false, ssh_tail = false, ssh_direct = false;
  std::vector<std::string> ssh_env, ssh_access_modes;
  std::string ssh_task_id, ssh_workflow_id, ssh_worker_id, ssh_node_id;
  // collection
  std::string collection_file, collection_model, text_field, id_field, metric, filter_json;
  std::vector<std::string> metadata_fields;
  int chunk_tokens = 0, chunk_overlap = -1, top_k = 0, collection_version = 0;
  bool wait = false;
};

// Registers every verb on `app`, writing into `inv`. The callbacks only record the verb;
// call CommandPath() after parsing.
void BuildApp(CLI::App* app, Invocation* inv);

// The version `flowmesh --version` prints (the project's version).
const char* CliVersion();

// "workflow logs show" for the deepest subcommand the parse selected.
std::string CommandPath(const CLI::App& app);

// The process environment the CLI reads, captured once in Run().
struct Environment {
  std::map<std::string, std::string> vars;
  std::string Get(const std::string& name) const {
    auto it = vars.find(name);
    return it == vars.end() ? "" : it->second;
  }
  static Environment FromProcess();
};

// Where output goes; tests pass string streams.
struct Streams {
  std::ostream& out;
  std::ostream& err;
  bool tty = false;  // stdout is a terminal (enables in-place redraw)
};

// Parses and executes; returns the process exit code
// (0 ok, 1 failure/HTTP error, 2 usage or connection error, 130 cancelled workflow).
int Run(const std::vector<std::string>& args, const Environment& env, Streams streams);
int Run(int argc, char** argv);

}  // namespace flowmesh::cli
