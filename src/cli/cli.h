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
  std::string status_filter;       // task list / workflow list --status
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
  std::string trace_kind = "lineage";  // trace fetch --kind lineage|spans|assets
  // admin org / key, usage
  std::string org;                 // --org
  std::vector<std::string> scopes; // admin key create --scopes
  std::string key_name;            // admin key create --name
  std::string principal;           // admin key create --principal
  std::map<std::string, double> policy;  // admin org create/set --max-… / --weight
  std::string from, to;            // usage --from/--to
};

// Registers every verb on `app`, writing into `inv`. The callbacks only record the verb;
// call CommandPath() after parsing.
void BuildApp(CLI::App* app, Invocation* inv);

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
