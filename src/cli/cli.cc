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
      {"workflow logs download", WorkflowLogsDownload},
      {"task list", TaskList},
      {"task info", TaskInfo},
      {"task stop", TaskStop},
      {"task watch", TaskWatch},
      {"task logs", TaskLogs},
      {"task logs show", TaskLogs},
      {"task logs stream", TaskLogsStream},
      {"task logs download", TaskLogsDownload},
      {"result fetch", ResultFetch},
      {"trace fetch", TraceFetch},
      {"trace analyze", TraceAnalyze},
      {"result download", ResultDownload},
      {"worker list", WorkerList},
      {"worker info", WorkerInfo},
      {"worker cordon", [](Context& c) { return WorkerCordon(c, true); }},
      {"worker uncordon", [](Context& c) { return WorkerCordon(c, false); }},
      {"worker cordons", WorkerCordons},
      {"node list", NodeList},
      {"node info", NodeInfo},
      {"node worker list", NodeWorkerList},
      {"node worker start", [](Context& c) { return NodeWorkerAction(c, "start"); }},
      {"node worker stop", [](Context& c) { return NodeWorkerAction(c, "stop"); }},
      {"system metrics", SystemMetrics},
      {"system version", SystemVersion},
      {"ssh connect", SshConnect},
      {"ssh run", SshRun},
      {"ssh proxy", SshProxy},
      {"ssh connections", SshConnections},
      {"admin org create", AdminOrgCreate},
      {"admin org set", AdminOrgSet},
      {"admin org list", AdminOrgList},
      {"admin key create", AdminKeyCreate},
      {"admin key list", AdminKeyList},
      {"admin key revoke", AdminKeyRevoke},
      {"usage", Usage},
      {"secret set", SecretSet},
      {"secret list", SecretList},
      {"secret delete", SecretDelete},
      {"collection create", CollectionCreate},
      {"collection list", CollectionList},
      {"collection info", CollectionInfo},
      {"collection delete", CollectionDelete},
      {"collection query", CollectionQuery},
      {"init", Init},
      {"deinit", Deinit},
      {"config", ShowConfig},
      {"info", Info},
      {"health", Health},
  };
  return *handlers;
}

bool FileExists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

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
  // The config file: --config, else config.json, else the published CLI's config.toml.
  std::string config_file = inv.config_path;
  if (config_file.empty()) {
    config_file = layout.ConfigFile();
    if (!FileExists(config_file) && FileExists(layout.TomlConfigFile())) {
      config_file = layout.TomlConfigFile();
    }
  }
  auto config = LoadConfig(config_file);
  CliConfig file_config;
  if (config.ok()) {
    file_config = *config;
  } else if (command != "init" && command != "deinit") {
    streams.err << "warning: " << config.status().message() << "\n";
  }
  std::string stack_url = ReadSmallFile(layout.ServerUrlFile());
  // FLOWMESH_URL is ours, FLOWMESH_BASE_URL the published SDK's.
  std::string env_url = env.Get("FLOWMESH_URL");
  if (env_url.empty()) env_url = env.Get("FLOWMESH_BASE_URL");
  std::string env_key = env.Get("FLOWMESH_API_KEY");
  Endpoint endpoint = ResolveEndpoint(inv.url, inv.api_key, env_url.c_str(), env_key.c_str(),
                                      file_config, stack_url);
  Context ctx(inv, env, streams, layout, endpoint);
  ctx.config_file = config_file;
  return it->second(ctx);
}

int Run(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  Environment env = Environment::FromProcess();
  Streams streams{std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1};
  return Run(args, env, streams);
}

}  // namespace flowmesh::cli
