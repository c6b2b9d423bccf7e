// flowmesh-server: the root-node server (API, scheduler, state), or with --role worker
// a supervisor alone for another node. Every setting is declared in config/server_settings.cc.
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "common/log.h"
#include "common/process.h"
#include "config/server_settings.h"

namespace {

// Blocks SIGTERM/SIGINT in every thread and returns once one arrives.
int WaitForSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

int RunSupervisorRole(const flowmesh::config::ServerSettings& s) {
  auto sc = flowmesh::config::ToSupervisorConfig(s, flowmesh::ExecutableDir());
  if (!sc.ok()) {
    std::cerr << "flowmesh-server: " << sc.status().message() << "\n";
    return 2;
  }
  std::atomic<bool> stop{false};
  std::thread waiter([&stop] {
    WaitForSignal();
    stop = true;
  });
  waiter.detach();
  return flowmesh::supervisor::RunSupervisor(*sc, nullptr, &stop);
}

int RunServerRole(const flowmesh::config::ServerSettings& s) {
  auto cfg = flowmesh::config::ToServerAppConfig(s, flowmesh::ExecutableDir());
  if (!cfg.ok()) {
    std::cerr << "flowmesh-server: " << cfg.status().message() << "\n";
    return 2;
  }
  auto server = flowmesh::api::ServerApp::Create(*cfg);
  if (!server.ok()) {
    std::cerr << "flowmesh-server: " << server.status().message() << "\n";
    return 1;
  }
  flowmesh::Status st = (*server)->Start();
  if (!st.ok()) {
    FM_LOG_ERROR("cannot start: {}", st.ToString());
    std::cerr << "flowmesh-server: cannot start: " << st.message() << "\n";
    return 1;
  }
  int sig = WaitForSignal();
  FM_LOG_INFO("signal {} received; shutting down", sig);
  (*server)->Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Block termination signals before any thread starts so only WaitForSignal sees them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CLI::App app{"flowmesh-server: the FlowMesh API server and scheduler"};
  flowmesh::config::SettingsTable table(&app);
  flowmesh::config::ServerSettings settings;
  const char* home = std::getenv("HOME");
  flowmesh::config::DeclareServerSettings(table, &settings,
                                          std::string(home ? home : "/root") + "/.flowmesh");
  bool print_settings = false;
  app.add_flag("--print-settings", print_settings,
               "print every setting as a Markdown table (docs/configuration.md) and exit");
  CLI11_PARSE(app, argc, argv);
  if (print_settings) {
    std::cout << table.Markdown();
    return 0;
  }
  flowmesh::InitLogging(settings.role == "server" ? "server" : "supervisor", settings.log_level,
                        settings.log_file);
  return settings.role == "worker" ? RunSupervisorRole(settings) : RunServerRole(settings);
}
