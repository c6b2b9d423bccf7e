// The verb tree of `flowmesh`: every verb and flag, registered on a CLI11 app. The
// published CLI's verbs and flag spellings (flowmesh-cli 0.1.0 and 0.1.13) are kept so
// users' scripts carry over; ours (stack, admin, usage, …) sit beside them. docs/cli.md
// lists both.
#include <CLI/CLI.hpp>

#include "cli/cli.h"

#ifndef FLOWMESH_CLI_VERSION
#define FLOWMESH_CLI_VERSION "0.0.0"
#endif

namespace flowmesh::cli {
namespace {

// Adds a subcommand that records nothing itself; leaves are found by CommandPath().
CLI::App* Group(CLI::App* parent, const std::string& name, const std::string& help) {
  CLI::App* g = parent->add_subcommand(name, help);
  g->require_subcommand(1);
  return g;
}

CLI::App* WithId(CLI::App* cmd, Invocation* inv, const std::string& what) {
  cmd->add_option("id", inv->names, what)->required()->expected(1);
  return cmd;
}

// --name / --not-name (or the given negative) into a tri-state int (-1 unset, 0 false, 1 true).
void TriState(CLI::App* cmd, const std::string& name, int* target, const std::string& help,
              const std::string& negative = "") {
  cmd->add_flag_function(
      "--" + name + ",!--" + (negative.empty() ? "not-" + name : negative),
      [target](int64_t n) { *target = n > 0 ? 1 : 0; }, help);
}

void QueryOption(CLI::App* cmd, Invocation* inv, const std::string& what) {
  cmd->add_option("-q,--query", inv->query, "Filter " + what + " by key=value pairs (repeatable)");
}

void StatusOption(CLI::App* cmd, Invocation* inv) {
  cmd->add_option("-s,--status", inv->statuses, "Filter by status (repeatable)");
}

void IntervalOption(CLI::App* cmd, Invocation* inv) {
  cmd->add_option("--interval", inv->interval, "Polling interval in seconds")
      ->check(CLI::PositiveNumber);
}

void AddWorkerConfigOptions(CLI::App* cmd, Invocation* inv) {
  cmd->add_option("--alias", inv->worker_alias, "Worker alias");
  cmd->add_option("--cost", inv->cost_per_hour, "Cost per hour (worker_cost_per_hour)");
  cmd->add_option("--speed", inv->speed,
                  "Relative throughput the scheduler weighs (worker_speed; default 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--tags", inv->tags, "Worker tags")->delimiter(',');
  cmd->add_option("--provider", inv->provider, "Worker provider")
      ->check(CLI::IsMember({"native", "docker"}));
}

// `logs show|stream|download ID` under a workflow's or a task's `logs` group.
void AddLogVerbs(CLI::App* logs, Invocation* inv, const std::string& id_help,
                 const std::string& download_help, const std::string& output_help) {
  CLI::App* show = WithId(logs->add_subcommand("show", "Print stored log entries"), inv, id_help);
  show->add_option("--limit", inv->limit, "Entries (1..10000)")->check(CLI::Range(1, 10000));
  show->add_option("--after", inv->after, "Cursor: entries after it");
  show->add_option("--before", inv->before, "Cursor: entries before it");
  WithId(logs->add_subcommand("stream", "Follow live log events"), inv, id_help)
      ->add_option("--cursor", inv->cursor, "Start streaming after this cursor");
  WithId(logs->add_subcommand("download", download_help), inv, id_help)
      ->add_option("-o,--output", inv->output, output_help)
      ->required();
}

void AddStack(CLI::App* app, Invocation* inv) {
  CLI::App* stack = Group(app, "stack", "Run FlowMesh locally (redis, server, workers)");
  CLI::App* up = stack->add_subcommand("up", "Start redis-server and flowmesh-server");
  up->add_option("--port", inv->port, "Server port (env FLOWMESH_PORT, default 8000)")
      ->check(CLI::Range(1, 65535));
  up->add_option("--redis-port", inv->redis_port,
                 "Redis port (env FLOWMESH_REDIS_PORT, default 6379)")
      ->check(CLI::Range(1, 65535));
  up->add_option("--host", inv->host,
                 "Address the server listens on, and Redis besides loopback: one that "
                 "supervisors of other nodes reach (env FLOWMESH_HOST, default 127.0.0.1)");
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
}

void AddWorkflow(CLI::App* app, Invocation* inv) {
  CLI::App* wf = Group(app, "workflow", "Submit and manage workflows");
  for (const char* verb : {"submit", "validate"}) {
    CLI::App* c = wf->add_subcommand(verb, std::string(verb) + " a workflow file");
    c->add_option("file", inv->names, "Workflow file (YAML/JSON, or n8n JSON)")
        ->required()
        ->expected(1);
    c->add_option("--format", inv->format, "native | n8n")->check(CLI::IsMember({"native", "n8n"}));
  }
  CLI::App* validate = wf->get_subcommand("validate");
  validate->add_flag("--strict", inv->strict,
                     "Warnings and task types no registered worker offers are errors "
                     "(needs the server)");
  validate->add_flag("--local", inv->local_only, "Check locally only; never contact the server");

  CLI::App* wlist = wf->add_subcommand("list", "List workflows");
  wlist->add_option("--id", inv->id_filter, "Filter by workflow id");
  StatusOption(wlist, inv);
  wlist->add_option("--task-id", inv->task_ids, "Filter by task id in workflow (repeatable)");
  wlist->add_option("--limit", inv->limit, "Keep only the newest N workflows")
      ->check(CLI::Range(1, 10000));
  QueryOption(wlist, inv, "workflows");
  WithId(wf->add_subcommand("info", "Retrieve a workflow"), inv, "Workflow id");
  WithId(wf->add_subcommand("cancel", "Cancel a workflow and its tasks"), inv, "Workflow id");
  CLI::App* watch = WithId(wf->add_subcommand("watch",
                                              "Follow a workflow until it ends (exit 0 DONE, 1 "
                                              "FAILED, 130 CANCELLED)"),
                           inv, "Workflow id");
  watch->add_flag("--results", inv->results, "Print each task's result at the end");
  IntervalOption(watch, inv);  // accepted for the published CLI; we follow the event stream

  AddLogVerbs(Group(wf, "logs", "Query and monitor workflow logs"), inv, "Workflow id",
              "Save each task's archived log as DIR/<task_id>-logs.jsonl",
              "Directory to save task logs");
}

void AddTask(CLI::App* app, Invocation* inv) {
  CLI::App* task = Group(app, "task", "Query and monitor tasks");
  CLI::App* tlist = task->add_subcommand("list", "List tasks");
  tlist->add_option("--id", inv->id_filter, "Filter by task id");
  tlist->add_option("--workflow,--workflow-id", inv->workflow_filter, "Filter by workflow id");
  StatusOption(tlist, inv);
  tlist->add_option("--category", inv->category, "Filter by category");
  tlist->add_option("--type", inv->task_type, "Filter by task type");
  tlist->add_option("--assigned-worker", inv->assigned_worker, "Filter by assigned worker id");
  tlist->add_option("--graph-node", inv->graph_node, "Filter by graph node name");
  TriState(tlist, "completed", &inv->completed, "Filter by completion state");
  TriState(tlist, "failed", &inv->failed, "Filter by failure state");
  tlist->add_option("--limit", inv->limit, "Keep only the newest N tasks")
      ->check(CLI::Range(1, 10000));
  QueryOption(tlist, inv, "tasks");
  WithId(task->add_subcommand("info", "Retrieve a task"), inv, "Task id");
  CLI::App* stop =
      WithId(task->add_subcommand("stop", "Stop a running (ssh or serve) task"), inv, "Task id");
  IntervalOption(stop, inv);
  stop->add_flag("--no-wait", inv->no_wait, "Return right after requesting the stop");
  IntervalOption(WithId(task->add_subcommand("watch",
                                             "Follow a task until it ends (exit 0 "
                                             "DONE, 1 FAILED, 130 CANCELLED)"),
                        inv, "Task id"),
                 inv);
  // `task logs ID` (ours) and `task logs show|stream|download ID` (published).
  CLI::App* tlogs = task->add_subcommand("logs", "Task logs: `logs ID`, or show|stream|download");
  tlogs->add_option("id", inv->names, "Task id (same as `logs show ID`)")->expected(1);
  tlogs->require_subcommand(0, 1);
  AddLogVerbs(tlogs, inv, "Task id", "Save the archived logs.jsonl", "Path to save logs.jsonl");
}

void AddResultAndTrace(CLI::App* app, Invocation* inv) {
  CLI::App* result = Group(app, "result", "Task results and artifacts");
  WithId(result->add_subcommand("fetch", "Print a task's result JSON (-o DIR: save it)"), inv,
         "Task id")
      ->add_option("-o,--output", inv->output, "Directory to write <task_id>.json into");
  CLI::App* dl = result->add_subcommand(
      "download", "Download result files (TASK FILE... -o DIR) or the whole bundle (.tar.gz)");
  dl->add_option("task_id", inv->names, "Task id, then file paths")->required();
  dl->add_option("--include", inv->include, "Bundle sections: results,artifacts,logs,all");
  dl->add_option("-o,--output", inv->output,
                 "Directory for files; file for the bundle (default <task_id>.tar.gz)");

  CLI::App* trace = Group(app, "trace", "Lineage and profiling of a workflow");
  CLI::App* tfetch =
      trace->add_subcommand("fetch", "Print a workflow's spans, assets or lineage (NDJSON)");
  tfetch->add_option("args", inv->names, "[TYPE] WORKFLOW_ID (TYPE: spans|assets|lineage)")
      ->required()
      ->expected(1, 2);
  tfetch->add_option("--kind", inv->trace_kind, "lineage | spans | assets")
      ->check(CLI::IsMember({"lineage", "spans", "assets"}));
  tfetch->add_option("-o,--out", inv->output, "Write rows to this JSONL file");
  CLI::App* analyze =
      WithId(trace->add_subcommand("analyze", "Critical path, queueing and per-task timing"), inv,
             "Workflow id");
  analyze
      ->add_option("-f,--format", inv->analyze_view,
                   "rich | critical-path | cp | end-to-end | e2e | queuing | lineage | json")
      ->check(CLI::IsMember(
          {"rich", "critical-path", "cp", "end-to-end", "e2e", "queuing", "lineage", "json"}));
}

void AddFleet(CLI::App* app, Invocation* inv) {
  CLI::App* worker = Group(app, "worker", "Workers of the whole fleet");
  CLI::App* wlist = worker->add_subcommand("list", "List workers");
  wlist->add_option("--id", inv->id_filter, "Filter by worker id");
  wlist->add_option("--alias", inv->alias, "Filter by worker alias");
  wlist->add_option("--namespace", inv->namespace_, "Filter by namespace");
  wlist->add_option("--cluster", inv->cluster, "Filter by cluster");
  wlist->add_option("--node-id", inv->node_id_filter, "Filter by owning node id");
  wlist->add_option("--node-alias", inv->node_alias, "Filter by owning node alias");
  StatusOption(wlist, inv);
  wlist->add_option("--tag", inv->tag_filter, "Filter by tag (repeatable)");
  TriState(wlist, "stale", &inv->stale, "Filter by stale heartbeat state");
  QueryOption(wlist, inv, "workers");
  WithId(worker->add_subcommand("info", "Retrieve a worker"), inv, "Worker id");
  for (const char* verb : {"cordon", "uncordon"}) {
    CLI::App* c = worker->add_subcommand(verb, std::string(verb) == "cordon"
                                                   ? "Stop offering new tasks to a worker"
                                                   : "Let a cordoned worker receive tasks again");
    c->add_option("id", inv->names, "Worker id (or --node-alias and --alias)")->expected(1);
    c->add_option("--node-alias", inv->node_alias, "Node alias, with --alias instead of an id");
    c->add_option("--alias", inv->alias, "Worker alias, with --node-alias instead of an id");
  }
  worker->add_subcommand("cordons", "List the cordons visible to you");

  CLI::App* node = Group(app, "node", "Nodes registered with FlowMesh");
  CLI::App* nlist = node->add_subcommand("list", "List nodes");
  nlist->add_option("--id", inv->id_filter, "Filter by node id");
  nlist->add_option("--namespace", inv->namespace_, "Filter by namespace");
  nlist->add_option("--cluster", inv->cluster, "Filter by cluster");
  nlist->add_option("--alias", inv->alias, "Filter by node alias");
  nlist->add_option("--tag", inv->tag_filter, "Filter by tag (repeatable)");
  QueryOption(nlist, inv, "nodes");
  WithId(node->add_subcommand("info", "Retrieve a node"), inv, "Node id");
  CLI::App* nworker = Group(node, "worker", "Workers on nodes");
  CLI::App* nwlist = nworker->add_subcommand("list", "List workers on one node or on all");
  nwlist->add_option("node_id", inv->names, "Node id (default: every node)")->expected(1);
  nwlist->add_option("--id", inv->id_filter, "Filter by worker id");
  nwlist->add_option("--alias,--name", inv->alias, "Filter by worker alias (0.1.0: --name)");
  nwlist->add_option("--namespace", inv->namespace_, "Filter by namespace");
  nwlist->add_option("--cluster", inv->cluster, "Filter by cluster");
  nwlist->add_option("--provider", inv->provider_filter, "Filter by provider");
  StatusOption(nwlist, inv);
  nwlist->add_option("--node-id", inv->node_id_filter, "Filter by node id");
  nwlist->add_option("--node-alias", inv->node_alias, "Filter by node alias");
  QueryOption(nwlist, inv, "workers");
  for (const char* verb : {"start", "stop"}) {
    CLI::App* c = nworker->add_subcommand(verb, std::string(verb) + " a worker on a node");
    c->add_option("node_alias", inv->names, "NODE_ID ALIAS")->required()->expected(2);
  }

  CLI::App* system = Group(app, "system", "Server system information");
  system->add_subcommand("metrics", "The server's metrics snapshot (admin)");
  system->add_subcommand("version", "The server's version");
}

void AddSsh(CLI::App* app, Invocation* inv) {
  CLI::App* ssh = Group(app, "ssh", "SSH sessions on FlowMesh workers");
  CLI::App* connect = WithId(ssh->add_subcommand("connect",
                                                 "Wait for a task's SSH session and "
                                                 "connect"),
                             inv, "Task id");
  IntervalOption(connect, inv);
  connect->add_flag("--direct", inv->ssh_direct, "Use direct SSH instead of proxy/forward");
  connect->add_option("--ssh-args", inv->ssh_args, "Extra arguments passed to ssh");

  CLI::App* run = ssh->add_subcommand("run", "Submit an SSH task, wait for it, connect");
  run->add_option("-k,--key", inv->ssh_key, "Path to an SSH public key file");
  run->add_option("-g,--gpu", inv->ssh_gpu, "Number of GPUs")->check(CLI::NonNegativeNumber);
  run->add_option("--gpu-memory", inv->ssh_gpu_memory, "GPU memory (e.g. 16GB)");
  run->add_option("-m,--memory", inv->ssh_memory, "System memory (e.g. 8Gi)");
  run->add_option("--cpu", inv->ssh_cpu, "CPU cores")->check(CLI::NonNegativeNumber);
  run->add_option("--ttl", inv->ssh_ttl, "Session TTL in seconds");
  run->add_option("--idle-timeout", inv->ssh_idle_timeout, "Idle timeout in seconds");
  run->add_option("--image", inv->ssh_image, "Custom session image");
  run->add_option("-u,--user", inv->ssh_user, "SSH user name");
  run->add_option("--mode", inv->ssh_mode, "Publish mode: direct|proxy|forward");
  run->add_option("-w,--worker", inv->ssh_worker, "Pin to a worker");
  run->add_option("-n,--name", inv->ssh_name, "Task name");
  run->add_option("-e,--env", inv->ssh_env, "Environment KEY=VALUE (repeatable)");
  run->add_option("-c,--command", inv->ssh_command, "Command to run non-interactively");
  run->add_option("--entrypoint", inv->ssh_entrypoint, "Override the image entrypoint");
  TriState(run, "interactive", &inv->ssh_interactive, "Interactive SSH or a command",
           "non-interactive");
  run->add_flag("--logs,!--no-logs", inv->ssh_logs, "Non-interactive: stream logs");
  run->add_flag("--tail", inv->ssh_tail, "With --logs, start from the latest entry");
  IntervalOption(run, inv);
  run->add_flag("--direct", inv->ssh_direct, "Use direct SSH instead of proxy/forward");
  run->add_option("--ssh-args", inv->ssh_args, "Extra arguments passed to ssh");

  WithId(ssh->add_subcommand("proxy", "stdin/stdout proxy for ssh ProxyCommand (internal)"), inv,
         "Task id");
  CLI::App* conns = ssh->add_subcommand("connections", "List active SSH connections (admin)");
  conns->add_option("--id", inv->id_filter, "Filter by connection id");
  conns->add_option("--mode", inv->ssh_access_modes, "Filter by access mode (repeatable)");
  conns->add_option("--task-id", inv->ssh_task_id, "Filter by task id");
  conns->add_option("--workflow-id", inv->ssh_workflow_id, "Filter by workflow id");
  conns->add_option("--worker-id", inv->ssh_worker_id, "Filter by worker id");
  conns->add_option("--node-id", inv->ssh_node_id, "Filter by node id");
  conns->add_option("--username", inv->ssh_username, "Filter by SSH user name");
  conns->add_option("--source-ip", inv->ssh_source_ip, "Filter by source IP");
  conns->add_option("--source-port", inv->ssh_source_port, "Filter by source port");
  QueryOption(conns, inv, "connections");
}

void AddTenancy(CLI::App* app, Invocation* inv) {
  CLI::App* admin = Group(app, "admin", "Organisations and API keys (needs system:admin)");
  CLI::App* org = Group(admin, "org", "Organisations");
  for (const char* verb : {"create", "set"}) {
    CLI::App* c = org->add_subcommand(
        verb, std::string(verb) == "create" ? "Create an organisation" : "Change its policy");
    c->add_option("name", inv->names, "Organisation name (or id)")->required()->expected(1);
    for (const char* field :
         {"max-queued-tasks", "max-running-tasks", "max-gpus", "max-request-bytes",
          "max-collection-bytes", "weight"}) {
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
  key->add_subcommand("list", "List API keys")
      ->add_option("--org", inv->org, "Only this organisation");
  key->add_subcommand("revoke", "Revoke an API key (refused at once)")
      ->add_option("key_id", inv->names, "Key id")
      ->required()
      ->expected(1);
  CLI::App* usage = app->add_subcommand("usage", "Usage per task attempt, totals per org and day");
  usage->add_option("--org", inv->org, "Organisation (default: your own; 'all' for every one)");
  usage->add_option("--from", inv->from, "Start (epoch seconds or YYYY-MM-DD, UTC)");
  usage->add_option("--to", inv->to, "End, exclusive (epoch seconds or YYYY-MM-DD, UTC)");
}

void AddSecret(CLI::App* app, Invocation* inv) {
  CLI::App* secret =
      Group(app, "secret", "Credentials of your organisation, for {{credential:NAME}} in tasks");
  secret
      ->add_subcommand("set", "Store a secret; the value is read from standard input (never "
                              "from the command line)")
      ->add_option("name", inv->names, "Secret name")
      ->required()
      ->expected(1);
  secret->add_subcommand("list", "List secret names (values are never shown)");
  secret->add_subcommand("delete", "Delete a secret")
      ->add_option("name", inv->names, "Secret name")
      ->required()
      ->expected(1);
}

void AddCollection(CLI::App* app, Invocation* inv) {
  CLI::App* coll = Group(app, "collection", "Vector collections of your organisation, for rag tasks");
  CLI::App* create = coll->add_subcommand("create", "Build a new version of a collection from rows");
  create->add_option("name", inv->names, "Collection name")->required()->expected(1);
  create->add_option("-f,--file", inv->collection_file, "Rows: JSONL (an object or string per line) or a JSON list")
      ->required();
  create->add_option("-m,--model", inv->collection_model,
                     "Embedding model: a GGUF path, or a model section as JSON")
      ->required();
  create->add_option("--text-field", inv->text_field, "Field holding a row's text (default text)");
  create->add_option("--id-field", inv->id_field, "Field naming a row's document (default: its index)");
  create->add_option("--metadata-fields", inv->metadata_fields,
                     "Fields kept as metadata (default: every other field)")
      ->delimiter(',');
  create->add_option("--max-tokens", inv->chunk_tokens, "Tokens per chunk")->check(CLI::PositiveNumber);
  create->add_option("--overlap", inv->chunk_overlap, "Tokens shared by neighbouring chunks")
      ->check(CLI::NonNegativeNumber);
  create->add_option("--metric", inv->metric, "cosine | ip | l2")
      ->check(CLI::IsMember({"cosine", "ip", "l2"}));
  create->add_flag("--wait", inv->wait, "Wait until the version is ready or failed");
  IntervalOption(create, inv);
  coll->add_subcommand("list", "List collections (the newest version of each)");
  coll->add_subcommand("info", "Show every version of a collection")
      ->add_option("name", inv->names, "Collection name")
      ->required()
      ->expected(1);
  coll->add_subcommand("delete", "Delete a collection (every version)")
      ->add_option("name", inv->names, "Collection name")
      ->required()
      ->expected(1);
  CLI::App* query = coll->add_subcommand("query", "Search a collection");
  query->add_option("name_and_queries", inv->names, "Collection name, then one or more queries")
      ->required()
      ->expected(2, -1);
  query->add_option("-k,--top-k", inv->top_k, "Hits per query")->check(CLI::PositiveNumber);
  query->add_option("--filter", inv->filter_json, "Metadata filter as JSON, e.g. '{\"lang\": \"en\"}'");
  query->add_option("--version", inv->collection_version, "Search this version (default: newest ready)")
      ->check(CLI::PositiveNumber);
}

void AddLocalConfig(CLI::App* app, Invocation* inv) {
  const std::string config_help =
      "Config file (default $FLOWMESH_HOME/config.json; a .toml path uses the published CLI's "
      "format)";
  CLI::App* init = app->add_subcommand("init", "Save the server URL and API key");
  init->add_option("server_url", inv->names, "Server URL (default http://localhost:8000)")
      ->expected(1);
  init->add_option("--config", inv->config_path, config_help);
  init->add_flag("-f,--force", inv->force, "Overwrite the file (drop a stored API key)");
  app->add_subcommand("deinit", "Delete the saved configuration")
      ->add_option("--config", inv->config_path, config_help);
  CLI::App* config = app->add_subcommand("config", "Show the effective configuration");
  config->add_option("--config", inv->config_path, config_help);
  config->add_option("--source", inv->config_source, "auto | file | env")
      ->check(CLI::IsMember({"auto", "file", "env"}, CLI::ignore_case));
  config->add_flag("--show-api-key", inv->show_api_key, "Show the API key in plain text");
  app->add_subcommand("info", "Client and server versions and server health");
  app->add_subcommand("health", "Check the server (GET /healthz)");
}

}  // namespace

const char* CliVersion() { return FLOWMESH_CLI_VERSION; }

void BuildApp(CLI::App* app, Invocation* inv) {
  app->description("FlowMesh command line: run the local stack, submit and follow workflows.");
  app->require_subcommand(1);
  app->fallthrough();
  app->set_version_flag("-V,--version", std::string("flowmesh ") + CliVersion(),
                        "Show the FlowMesh CLI version and exit");
  app->add_option("--url", inv->url,
                  "Server URL (env FLOWMESH_URL or FLOWMESH_BASE_URL, else the config file)");
  app->add_option("--api-key", inv->api_key, "API key (env FLOWMESH_API_KEY)");
  app->add_flag("--json", inv->json, "Machine-readable JSON output");
  AddStack(app, inv);
  AddWorkflow(app, inv);
  AddTask(app, inv);
  AddResultAndTrace(app, inv);
  AddFleet(app, inv);
  AddSsh(app, inv);
  AddTenancy(app, inv);
  AddSecret(app, inv);
  AddCollection(app, inv);
  AddLocalConfig(app, inv);
}

}  // namespace flowmesh::cli
