#include "cli/cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "cli/context.h"

extern char** environ;

namespace flowmesh::cli {
namespace {

// Adds a subcommand that records nothing itself; leaves are found by CommandPath().
CLI::App* Group(CLI::App* parent, const std::string& name, const std::string& help) {
  CLI::App* g = parent->add_subcommand(name, help);
  g->require_subcommand(1);
  return g;
}

void AddWorkerConfigOptions(CLI::App* cmd, Invocation* inv) {
  cmd->add_option("--alias", inv->worker_alias, "Worker alias");
  cmd->add_option("--cost", inv->cost_per_hour, "Cost per hour (worker_cost_per_hour)");
  cmd->add_option("--speed", inv->speed, "Relative throughput the scheduler weighs (worker_speed; default 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tags", inv->tags, "Worker tags")->delimiter(',');
  cmd->add_option("--provider", inv->provider, "Worker provider")
      ->check(CLI::IsMember({"native", "docker"}));
}

}  // namespace

void BuildApp(CLI::App* app, Invocation* inv) {
  app->description("FlowMesh command line: run the local stack, submit and follow workflows.");
  app->require_subcommand(1);
  app->fallthrough();
  app->add_option("--url", inv->url, "Server URL (env FLOWMESH_URL, else config.json)");
  app->add_option("--api-key", inv->api_key, "API key (env FLOWMESH_API_KEY)");
  app->add_flag("--json", inv->json, "Machine-readable JSON output");

  // ---- stack ----
  CLI::App* stack = Group(app, "stack", "Run FlowMesh locally (redis, server, workers)");
  CLI::App* up = stack->add_subcommand("up", "Start redis-server and flowmesh-server");
  up->add_option("--port", inv->port, "Server port (env FLOWMESH_PORT, default 8000)")
      ->check(CLI::Range(1, 65535));
  up->add_option("--redis-port", inv->redis_port,
                 "Redis port (env FLOWMESH_REDIS_PORT, default 6379)")
      ->check(CLI::Range(1, 65535));
  stack->add_subcommand("down", "Stop the server, its workers and redis");
  stack->add_subcommand("status", "Show what runs");
  CLI::App* logs = stack->add_subcommand("logs", "Print a log file of the local stack");
  logs->add_option("component", inv->log_name, "server | redis | supervisor")
      ->check(CLI::IsMember({"server", "redis", "supervisor"}));
  logs->add_option("-n,--lines", inv->lines, "Lines from the end")->check(CLI::NonNegativeNumber);
  logs->add_flag("-f,--follow", inv->follow, "Keep printing new lines");

  CLI::App* sworker = Group(stack, "worker", "Workers of the local node");
  CLI::App* wup = Group(sworker, "up", "Start workers");
  CLI::App* cpu = wup->add_subcommand("cpu", "Start N CPU workers");
  cpu->add_option("count", inv->count, "How many")->required()->check(CLI::Range(1, 1024));
  AddWorkerConfigOptions(cpu, inv);
  CLI::App* gpu = wup->add_subcommand("gpu", "Start one GPU worker per target device");
  gpu->add_option("--targets", inv->targets, "CUDA devices: 0,1 or all")->required();
  AddWorkerConfigOptions(gpu, inv);
  sworker->add_subcommand("list", "List the local node's workers");
  for (const char* verb : {"start", "stop", "down"}) {
    CLI::App* c = sworker->add_subcommand(verb, std::string(verb) + " workers by name (or all)");
    c->add_option("names", inv->names, "Worker names, or all")->required();
  }

  // ---- workflow ----
  CLI::App* wf = Group(app, "workflow", "Submit and follow workflows");
  for (const char* verb : {"submit", "validate"}) {
    CLI::App* c = wf->add_subcommand(verb, std::string(verb) + " a workflow file");
    c->add_option("file", inv->names, "Workflow file (YAML/JSON, or n8n JSON)")
        ->required()
        ->expected(1);
    c->add_option("--format", inv->format, "native | n8n")
        ->check(CLI::IsMember({"native", "n8n"}));
  }
  CLI::App* wlist = wf->add_subcommand("list", "List workflows");
  wlist->add_option("--status", inv->status_filter, "Only this status");
  for (const char* verb : {"info", "cancel"}) {
    wf->add_subcommand(verb, std::string(verb) + " a workflow")
        ->add_option("id", inv->names, "Workflow id")
        ->required()
        ->expected(1);
  }
  CLI::App* watch = wf->add_subcommand("watch", "Follow a workflow until it ends");
  watch->add_option("id", inv->names, "Workflow id")->required()->expected(1);
  watch->add_flag("--results", inv->results, "Print each task's result at the end");
  CLI::App* wlogs = Group(wf, "logs", "Workflow logs");
  CLI::App* show = wlogs->add_subcommand("show", "Print stored log entries");
  show->add_option("id", inv->names, "Workflow id")->required()->expected(1);
  show->add_option("--limit", inv->limit, "Entries (1..10000)")->check(CLI::Range(1, 10000));
  show->add_option("--after", inv->after, "Cursor: entries after it");
  show->add_option("--before", inv->before, "Cursor: entries before it");
  wlogs->add_subcommand("stream", "Follow live log events")
      ->add_option("id", inv->names, "Workflow id")
      ->required()
      ->expected(1);

  // ---- task / result / worker ----
  CLI::App* task = Group(app, "task", "Inspect tasks");
  CLI::App* tlist = task->add_subcommand("list", "List tasks");
  tlist->add_option("--workflow", inv->workflow_filter, "Only this workflow's tasks");
  tlist->add_option("--status", inv->status_filter, "Only this status");
  for (const char* verb : {"info", "logs"}) {
    task->add_subcommand(verb, std::string("Task ") + verb)
        ->add_option("id", inv->names, "Task id")
        ->required()
        ->expected(1);
  }
  CLI::App* result = Group(app, "result", "Task results");
  result->add_subcommand("fetch", "Print a task's result JSON")
      ->add_option("task_id", inv->names, "Task id")
      ->required()
      ->expected(1);
  CLI::App* dl = result->add_subcommand("download", "Download a task's bundle (.tar.gz)");
  dl->add_option("task_id", inv->names, "Task id")->required()->expected(1);
  dl->add_option("--include", inv->include, "results,artifacts,logs,all");
  dl->add_option("-o,--output", inv->output, "Output file (default <task_id>.tar.gz)");
  CLI::App* worker = Group(app, "worker", "Workers of the whole fleet");
  worker->add_subcommand("list", "List workers")
      ->add_option("--status", inv->status_filter, "Only this status");
  for (const char* verb : {"info", "cordon", "uncordon"}) {
    worker->add_subcommand(verb, std::string("Worker ") + verb)
        ->add_option("id", inv->names, "Worker id")
        ->required()
        ->expected(1);
  }

  // ---- traces ----
  CLI::App* trace = Group(app, "trace", "Lineage and profiling of a workflow");
  CLI::App* tfetch = trace->add_subcommand("fetch", "Print a workflow's lineage, spans or assets (NDJSON)");
  tfetch->add_option("id", inv->names, "Workflow id")->required()->expected(1);
  tfetch->add_option("--kind", inv->trace_kind, "lineage | spans | assets")
      ->check(CLI::IsMember({"lineage", "spans", "assets"}));
  trace->add_subcommand("analyze", "Critical path, queueing and per-task timing of a workflow")
      ->add_option("id", inv->names, "Workflow id")
      ->required()
      ->expected(1);
  // ---- tenancy ----
  CLI::App* admin = Group(app, "admin", "Organisations and API keys (needs system:admin)");
  CLI::App* org = Group(admin, "org", "Organisations");
  for (const char* verb : {"create", "set"}) {
    CLI::App* c = org->add_subcommand(
        verb, std::string(verb) == "create" ? "Create an organisation" : "Change its policy");
    c->add_option("name", inv->names, "Organisation name (or id)")->required()->expected(1);
    for (const char* field : {"max-queued-tasks", "max-running-tasks", "max-gpus",
                              "max-request-bytes", "weight"}) {
      std::string key = field;
      for (char& ch : key) ch = ch == '-' ? '_' : ch;
      c->add_option_function<double>(
           std::string("--") + field, [inv, key](double v) { inv->policy[key] = v; },
           key == "weight" ? "Scheduling weight (default 1)" : "Quota (0: no limit)")
          ->check(CLI::NonNegativeNumber);
    }
  }
  org->add_subcommand("list", "List organisations");
  CLI::App* key = Group(admin, "key", "API keys");
  CLI::App* kc = key->add_subcommand("create", "Create an API key (printed once)");
  kc->add_option("--org", inv->org, "Organisation name or id (default: your own)");
  kc->add_option("--scopes", inv->scopes,
                 "Scopes kind:action, e.g. workflow:read,workflow:write (default: a user's set)")
      ->delimiter(',');
  kc->add_option("--name", inv->key_name, "A label for the key");
  kc->add_option("--principal", inv->principal, "Principal id acting with the key");
  key->add_subcommand("list", "List API keys")->add_option("--org", inv->org, "Only this organisation");
  key->add_subcommand("revoke", "Revoke an API key (refused at once)")
      ->add_option("key_id", inv->names, "Key id")
      ->required()
      ->expected(1);
  CLI::App* usage = app->add_subcommand("usage", "Usage per task attempt, totals per org and day");
  usage->add_option("--org", inv->org, "Organisation (default: your own; 'all' for every one)");
  usage->add_option("--from", inv->from, "Start (epoch seconds or YYYY-MM-DD, UTC)");
  usage->add_option("--to", inv->to, "End, exclusive (epoch seconds or YYYY-MM-DD, UTC)");

  // ---- local configuration ----
  CLI::App* init = app->add_subcommand("init", "Write config.json (server URL, API key)");
  init->add_option("server_url", inv->names, "Server URL")->required()->expected(1);
  app->add_subcommand("config", "Show the effective configuration");
  app->add_subcommand("health", "Check the server (GET /healthz)");
}

std::string CommandPath(const CLI::App& app) {
  std::string path;
  const CLI::App* cur = &app;
  while (true) {
    auto subs = cur->get_subcommands();
    if (subs.empty()) break;
    cur = subs.front();
    if (!path.empty()) path += " ";
    path += cur->get_name();
  }
  return path;
}

Environment Environment::FromProcess() {
  Environment env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos && kv.rfind("FLOWMESH_", 0) == 0) {
      env.vars[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  if (const char* home = std::getenv("HOME")) env.vars["HOME"] = home;
  if (const char* path = std::getenv("PATH")) env.vars["PATH"] = path;
  return env;
}

namespace {

using Handler = std::function<int(Context&)>;

const std::map<std::string, Handler>& Handlers() {
  static const auto* handlers = new std::map<std::string, Handler>{
      {"stack up", StackUp},
      {"stack down", StackDown},
      {"stack status", StackStatus},
      {"stack logs", StackLogs},
      {"stack worker up cpu", StackWorkerUpCpu},
      {"stack worker up gpu", StackWorkerUpGpu},
      {"stack worker list", StackWorkerList},
      {"stack worker start", [](Context& c) { return StackWorkerAction(c, "start"); }},
      {"stack worker stop", [](Context& c) { return StackWorkerAction(c, "stop"); }},
      {"stack worker down", [](Context& c) { return StackWorkerAction(c, "down"); }},
      {"workflow submit", WorkflowSubmit},
      {"workflow validate", WorkflowValidate},
      {"workflow list", WorkflowList},
      {"workflow info", WorkflowInfo},
      {"workflow watch", WorkflowWatch},
      {"workflow cancel", WorkflowCancel},
      {"workflow logs show", WorkflowLogsShow},
      {"workflow logs stream", WorkflowLogsStream},
      {"task list", TaskList},
      {"task info", TaskInfo},
      {"task logs", TaskLogs},
      {"result fetch", ResultFetch},
      {"trace fetch", TraceFetch},
      {"trace analyze", TraceAnalyze},
      {"result download", ResultDownload},
      {"worker list", WorkerList},
      {"worker info", WorkerInfo},
      {"worker cordon", [](Context& c) { return WorkerCordon(c, true); }},
      {"worker uncordon", [](Context& c) { return WorkerCordon(c, false); }},
      {"admin org create", AdminOrgCreate},
      {"admin org set", AdminOrgSet},
      {"admin org list", AdminOrgList},
      {"admin key create", AdminKeyCreate},
      {"admin key list", AdminKeyList},
      {"admin key revoke", AdminKeyRevoke},
      {"usage", Usage},
      {"init", Init},
      {"config", ShowConfig},
      {"health", Health},
  };
  return *handlers;
}

std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

}  // namespace

int Run(const std::vector<std::string>& args, const Environment& env, Streams streams) {
  Invocation inv;
  CLI::App app("flowmesh", "flowmesh");
  BuildApp(&app, &inv);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  if (!reversed.empty()) reversed.pop_back();  // program name
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e, streams.out, streams.err);
    return code == 0 ? kExitOk : kExitUnreachable;
  }
  std::string command = CommandPath(app);
  auto it = Handlers().find(command);
  if (it == Handlers().end()) {
    streams.err << "error: unknown command '" << command << "'\n";
    return kExitUnreachable;
  }

  HomeLayout layout{ResolveHome(env.Get("FLOWMESH_HOME").c_str(), env.Get("HOME").c_str())};
  auto config = LoadConfig(layout.ConfigFile());
  CliConfig file_config;
  if (config.ok()) {
    file_config = *config;
  } else if (command != "init") {
    streams.err << "warning: " << config.status().message() << "\n";
  }
  std::string stack_url = ReadSmallFile(layout.ServerUrlFile());
  std::string env_url = env.Get("FLOWMESH_URL");
  std::string env_key = env.Get("FLOWMESH_API_KEY");
  Endpoint endpoint = ResolveEndpoint(inv.url, inv.api_key, env_url.c_str(), env_key.c_str(),
                                      file_config, stack_url);
  Context ctx(inv, env, streams, layout, endpoint);
  return it->second(ctx);
}

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  Environment env = Environment::FromProcess();
  Streams streams{std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1};
  return Run(args, env, streams);
}

}  // namespace flowmesh::cli
