// flowmesh-worker: one worker process, started by a supervisor. Each setting is declared once
// below (flag, FLOWMESH_WORKER_* variable, default, doc); see worker/worker.h.
#include <signal.h>

#include <cstdlib>
#include <iostream>
#include <thread>

#include "agent/agent_executor.h"
#include "common/log.h"
#include "common/process.h"
#include "config/settings.h"
#include "executors/data_retrieval.h"
#include "executors/executor.h"
#include "inference/backend.h"
#include "inference/inference_executor.h"
#include "inference/model_cache.h"
#include "inference/serve_executor.h"
#include "rag/collection_executor.h"
#include "rag/rag_executor.h"
#include "training/lora_inference.h"
#include "training/training_executor.h"
#include "worker/host_info.h"
#include "worker/worker.h"

int main(int argc, char** argv) {
  flowmesh::worker::WorkerConfig config;
  std::string tags, log_level = "info", log_file;
  CLI::App app{"FlowMesh worker process"};
  flowmesh::config::SettingsTable t(&app);
  t.Add("--supervisor", "FLOWMESH_WORKER_SUPERVISOR", &config.supervisor,
        "supervisor gRPC address host:port");
  t.Add("--name", "FLOWMESH_WORKER_NAME", &config.name, "process name given by the supervisor");
  t.Add("--alias", "FLOWMESH_WORKER_ALIAS", &config.alias, "alias shown to users (default: name)");
  t.Add("--type", "FLOWMESH_WORKER_TYPE", &config.worker_type,
        "cpu | gpu")
      ->check(CLI::IsMember({"cpu", "gpu"}));
  t.Add("--cost-per-hour", "FLOWMESH_WORKER_COST_PER_HOUR", &config.cost_per_hour,
        "advertised cost per hour");
  t.Add("--speed", "FLOWMESH_WORKER_SPEED", &config.speed,
        "relative throughput against the reference worker (placement)")
      ->check(CLI::PositiveNumber);
  t.Add("--training-speed", "FLOWMESH_WORKER_TRAINING_SPEED", &config.training_speed,
        "relative throughput on training tasks (default: --speed)")
      ->check(CLI::NonNegativeNumber);
  t.Add("--slots", "FLOWMESH_WORKER_SLOTS", &config.slots,
        "tasks run at once")
      ->check(CLI::Range(1, 1024));
  t.Add("--tags", "FLOWMESH_WORKER_TAGS", &tags, "comma-separated tags");
  t.Add("--cuda-devices", "FLOWMESH_WORKER_CUDA_DEVICES", &config.cuda_devices,
        "GPU indices, e.g. 0,1");
  t.Add("--token", "FLOWMESH_WORKER_TOKEN", &config.token, "token presented to the supervisor");
  t.Add("--api-token", "FLOWMESH_WORKER_API_TOKEN", &config.api_token,
        "Bearer token for result uploads");
  t.Add("--log-level", "FLOWMESH_WORKER_LOG_LEVEL", &log_level, "trace|debug|info|warn|error");
  t.Add("--log-file", "FLOWMESH_WORKER_LOG_FILE", &log_file, "append logs here instead of stderr");
  int model_memory_mb = 0, sequence_slots = 16, inference_threads = 0;
  t.Add("--model-memory-mb", "FLOWMESH_WORKER_MODEL_MEMORY_MB", &model_memory_mb,
        "memory budget for loaded models (0: 60% of the host's memory)")
      ->check(CLI::NonNegativeNumber);
  t.Add("--sequence-slots", "FLOWMESH_WORKER_SEQUENCE_SLOTS", &sequence_slots,
        "decode sequences per loaded model")
      ->check(CLI::Range(1, 256));
  t.Add("--inference-threads", "FLOWMESH_WORKER_INFERENCE_THREADS", &inference_threads,
        "llama.cpp threads (0: all cores)")
      ->check(CLI::Range(0, 1024));
  flowmesh::inference::ServeSettings serve;
  t.Add("--serve-listen", "FLOWMESH_WORKER_SERVE_LISTEN", &serve.listen_address,
        "address serve endpoints listen on (accessMode forward/proxy; direct: 0.0.0.0)");
  t.Add("--serve-advertise-host", "FLOWMESH_WORKER_SERVE_ADVERTISE_HOST", &serve.advertise_host,
        "host the server proxies serve requests to (default: the listen address)");
  t.Add("--serve-max-concurrent", "FLOWMESH_WORKER_SERVE_MAX_CONCURRENT", &serve.max_concurrent,
        "requests one serve endpoint works on at once (more wait)")
      ->check(CLI::Range(1, 4096));
  t.Add("--serve-default-ttl", "FLOWMESH_WORKER_SERVE_DEFAULT_TTL", &serve.default_ttl_s,
        "seconds a serve task runs without ttlSeconds")
      ->check(CLI::PositiveNumber);
  t.Add("--serve-max-ttl", "FLOWMESH_WORKER_SERVE_MAX_TTL", &serve.max_ttl_s,
        "upper bound on a serve task's ttlSeconds")
      ->check(CLI::PositiveNumber);
  std::string data_dirs;
  t.Add("--data-dirs", "FLOWMESH_WORKER_DATA_DIRS", &data_dirs,
        "comma-separated directories data_retrieval tasks may read files and SQLite databases "
        "from (default: none)");
  int64_t collection_cache_mb = 4096;
  t.Add("--collection-cache-dir", "FLOWMESH_WORKER_COLLECTION_CACHE_DIR", &config.collection_cache_dir,
        "directory of the collections' blobs rag tasks search, by digest (default: "
        "$HOME/.cache/flowmesh/collections; the supervisor passes its state directory's)");
  t.Add("--collection-cache-mb", "FLOWMESH_WORKER_COLLECTION_CACHE_MB", &collection_cache_mb,
        "megabytes of collection blobs kept in that directory (least recently used go first)")
      ->check(CLI::PositiveNumber);
  t.Add("--collections-loaded", "FLOWMESH_WORKER_COLLECTIONS_LOADED", &config.collections_loaded,
        "collections kept loaded in memory (least recently used go first)")
      ->check(CLI::Range(1, 1024));
  std::string collection_work_dir;
  t.Add("--collection-work-dir", "FLOWMESH_WORKER_COLLECTION_WORK_DIR", &collection_work_dir,
        "where collection builds write their files before storing them (default: the system's "
        "temporary directory)");
  flowmesh::training::TrainingConfig training;
  t.Add("--training-python", "FLOWMESH_WORKER_TRAINING_PYTHON", &training.python,
        "python of the training venv (default: $FLOWMESH_CACHE_DIR or /var/cache/flowmesh, "
        "then /ml-venv/bin/python; scripts/install-ml); sft, lora_sft and dpo are offered "
        "only where it runs");
  t.Add("--training-package-dir", "FLOWMESH_WORKER_TRAINING_PACKAGE_DIR", &training.package_dir,
        "folder holding the flowmesh_train package (default: ../python beside this binary)");
  std::string lora_gguf_cache;
  t.Add("--lora-gguf-cache", "FLOWMESH_WORKER_LORA_GGUF_CACHE", &lora_gguf_cache,
        "folder of the GGUFs made from LoRA adapters and Hugging Face safetensors snapshots "
        "that inference tasks name (default: "
        "$FLOWMESH_CACHE_DIR or /var/cache/flowmesh, then /lora-gguf)");
  bool print_settings = false, print_backend = false;
  app.add_flag("--print-settings", print_settings, "print every setting as a Markdown table and exit");
  app.add_flag("--print-backend", print_backend, "print the engine's backend (cpu | cuda) and exit");
  CLI11_PARSE(app, argc, argv);
  if (print_settings) {
    std::cout << t.Markdown();
    return 0;
  }
  if (print_backend) {
    std::cout << flowmesh::inference::BackendName() << "\n";
    return 0;
  }
  config.gpu_backend = flowmesh::inference::GpuOffloadSupported();
  config.tags = flowmesh::worker::SplitList(tags);
  config.collection_cache_bytes = static_cast<uint64_t>(collection_cache_mb) << 20;
  if (config.collection_cache_dir.empty()) {
    const char* home = std::getenv("HOME");
    config.collection_cache_dir = std::string(home != nullptr && *home ? home : "/tmp") +
                                  "/.cache/flowmesh/collections";
  }
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
  if (flowmesh::worker::AdvertisesGpus(config)) models_config.default_gpu_layers = -1;  // all on the GPU
  models_config.sources = flowmesh::inference::ModelSourceConfig::FromEnvironment();
  auto models = std::make_shared<flowmesh::inference::ModelCache>(models_config);
  config.loaded_models = [models] { return models->LoadedModels(); };
  config.free_sequence_slots = [models] { return models->FreeSequenceSlots(); };
  auto executors = flowmesh::executors::BuiltinExecutors();
  flowmesh::executors::DataRetrievalConfig retrieval;
  retrieval.data_dirs = flowmesh::worker::SplitList(data_dirs);
  flowmesh::executors::RegisterDataRetrievalExecutor(executors, std::move(retrieval));
  flowmesh::inference::RegisterInferenceExecutors(executors, models);
  flowmesh::agent::RegisterAgentExecutor(executors, models);
  flowmesh::rag::RegisterRagExecutors(executors, models,
                                      flowmesh::rag::CollectionExecutorConfig{collection_work_dir});
  flowmesh::inference::RegisterServeExecutor(executors, models, serve);
  const char* cache_env = std::getenv("FLOWMESH_CACHE_DIR");
  std::string cache_dir = cache_env && *cache_env ? cache_env : "/var/cache/flowmesh";
  if (training.python.empty()) training.python = cache_dir + "/ml-venv/bin/python";
  if (training.package_dir.empty()) training.package_dir = flowmesh::ExecutableDir() + "/../python";
  if (auto trained = flowmesh::training::RegisterTrainingExecutors(executors, training); !trained.ok()) {
    FM_LOG_INFO("training task types not offered: {}", trained.message());
  } else if (auto lora = flowmesh::training::RegisterLoraInference(
                 executors, {training, flowmesh::training::BuiltLlamaSourceDir(),
                             lora_gguf_cache.empty() ? cache_dir + "/lora-gguf" : lora_gguf_cache,
                             models_config.sources.hf_hub_dir});
             !lora.ok()) {
    FM_LOG_INFO("inference with LoRA adapters not offered: {}", lora.message());
  }
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
