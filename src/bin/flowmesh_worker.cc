// flowmesh-worker: one worker process, started by a supervisor. Flags (or the
// FLOWMESH_WORKER_* environment variables) configure it; see worker/worker.h.
#include <CLI/CLI.hpp>
#include <signal.h>

#include <thread>

#include "common/log.h"
#include "executors/executor.h"
#include "worker/host_info.h"
#include "worker/worker.h"

int main(int argc, char** argv) {
  flowmesh::worker::WorkerConfig config;
  std::string tags, log_level = "info", log_file;
  CLI::App app{"FlowMesh worker process"};
  app.add_option("--supervisor", config.supervisor, "supervisor gRPC address host:port")
      ->envname("FLOWMESH_WORKER_SUPERVISOR");
  app.add_option("--name", config.name, "process name given by the supervisor")
      ->envname("FLOWMESH_WORKER_NAME");
  app.add_option("--alias", config.alias, "alias shown to users (default: name)")
      ->envname("FLOWMESH_WORKER_ALIAS");
  app.add_option("--type", config.worker_type, "cpu | gpu")
      ->check(CLI::IsMember({"cpu", "gpu"}))
      ->envname("FLOWMESH_WORKER_TYPE");
  app.add_option("--cost-per-hour", config.cost_per_hour, "advertised cost per hour")
      ->envname("FLOWMESH_WORKER_COST_PER_HOUR");
  app.add_option("--slots", config.slots, "tasks run at once")
      ->check(CLI::Range(1, 1024))
      ->envname("FLOWMESH_WORKER_SLOTS");
  app.add_option("--tags", tags, "comma-separated tags")->envname("FLOWMESH_WORKER_TAGS");
  app.add_option("--cuda-devices", config.cuda_devices, "GPU indices, e.g. 0,1")
      ->envname("FLOWMESH_WORKER_CUDA_DEVICES");
  app.add_option("--token", config.token, "token presented to the supervisor")
      ->envname("FLOWMESH_WORKER_TOKEN");
  app.add_option("--api-token", config.api_token, "Bearer token for result uploads")
      ->envname("FLOWMESH_WORKER_API_TOKEN");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->envname("FLOWMESH_WORKER_LOG_LEVEL");
  app.add_option("--log-file", log_file, "append logs here instead of stderr")
      ->envname("FLOWMESH_WORKER_LOG_FILE");
  CLI11_PARSE(app, argc, argv);
  config.tags = flowmesh::worker::SplitList(tags);
  if (config.name.empty()) config.name = "worker-" + std::to_string(::getpid());
  flowmesh::InitLogging("worker", log_level, log_file);

  // Signals are taken synchronously on a dedicated thread, so the stop runs as normal code.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);  // sent by main itself to end the signal thread
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  flowmesh::worker::Worker worker(config, flowmesh::executors::BuiltinExecutors());
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGUSR1) return;  // woken by main after Run returned
    FM_LOG_INFO("signal {}: stopping", sig);
    worker.RequestStop();
  });
  int code = worker.Run();
  pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();
  return code;
}
