// flowmesh-worker: one worker process, started by a supervisor. Flags (or the
// FLOWMESH_WORKER_* environment variables) configure it; see worker/worker.h.
#include <CLI/CLI.hpp>
#include <signal.h>

#include <thread>

#include "common/log.h"
#include "executors/executor.h"
#include "inference/inference_executor.h"
#include "inference/model_cache.h"
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
  app.add_option("--speed", config.speed, "relative throughput against the reference worker (placement)")
      ->check(CLI::PositiveNumber)
      ->envname("FLOWMESH_WORKER_SPEED");
  app.add_option("--training-speed", config.training_speed, "relative throughput on training tasks (default: --speed)")
      ->check(CLI::NonNegativeNumber)
      ->envname("FLOWMESH_WORKER_TRAINING_SPEED");
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
  int model_memory_mb = 0, sequence_slots = 16, inference_threads = 0;
  app.add_option("--model-memory-mb", model_memory_mb,
                 "memory budget for loaded models (0: 60% of the host's memory)")
      ->check(CLI::NonNegativeNumber)
      ->envname("FLOWMESH_WORKER_MODEL_MEMORY_MB");
  app.add_option("--sequence-slots", sequence_slots, "decode sequences per loaded model")
      ->check(CLI::Range(1, 256))
      ->envname("FLOWMESH_WORKER_SEQUENCE_SLOTS");
  app.add_option("--inference-threads", inference_threads, "llama.cpp threads (0: all cores)")
      ->check(CLI::Range(0, 1024))
      ->envname("FLOWMESH_WORKER_INFERENCE_THREADS");
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

  flowmesh::inference::ModelCacheConfig models_config;
  models_config.memory_budget_bytes =
      model_memory_mb > 0 ? static_cast<uint64_t>(model_memory_mb) << 20
                          : static_cast<uint64_t>(flowmesh::worker::DetectHost(false, "").memory_mb) * 6 / 10 << 20;
  models_config.default_slots = sequence_slots;
  models_config.default_threads = inference_threads;
  if (config.worker_type == "gpu") models_config.default_gpu_layers = -1;  // all layers on the GPU
  models_config.sources = flowmesh::inference::ModelSourceConfig::FromEnvironment();
  auto models = std::make_shared<flowmesh::inference::ModelCache>(models_config);
  config.loaded_models = [models] { return models->LoadedModels(); };
  config.free_sequence_slots = [models] { return models->FreeSequenceSlots(); };
  auto executors = flowmesh::executors::BuiltinExecutors();
  flowmesh::inference::RegisterInferenceExecutors(executors, models);
  flowmesh::worker::Worker worker(config, std::move(executors));
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
