// The worker runtime: registers with its supervisor over gRPC, holds one Connect stream,
// runs assignments through a TaskRunner and streams events and heartbeats back. It keeps
// no state across runs: when the stream is lost Run returns non-zero and the supervisor
// starts a fresh process.
//
// Threads: Run() owns the stream reader; a heartbeat thread; the TaskRunner's pool.
// Writes to the stream are serialised by a mutex. RequestStop may be called from any
// thread (e.g. a signal-waiting thread).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "executors/executor.h"
#include "worker/task_runner.h"

namespace flowmesh::worker {

// gRPC metadata key of the worker token, sent on every call to the supervisor.
inline constexpr char kWorkerTokenMetadata[] = "x-flowmesh-worker-token";

struct WorkerConfig {
  std::string supervisor = "127.0.0.1:50051";  // host:port of the supervisor's gRPC server
  std::string name;                            // process name given by the supervisor
  std::string alias;                           // defaults to name
  std::string worker_type = "cpu";             // cpu | gpu
  double cost_per_hour = 0;
  double speed = 1;           // relative throughput the placement core weighs (1: reference)
  double training_speed = 0;  // on training tasks; 0: speed
  int slots = 16;  // light executors (echo, profiling, api) overlap well; heavy ones batch inside
  std::vector<std::string> tags;
  std::string cuda_devices;  // "0,1"; GPU workers only
  // Whether this build's engine can use a GPU (inference/backend.h). A `gpu` worker
  // without one advertises no GPUs.
  bool gpu_backend = false;
  std::string token;         // presented to the supervisor in Register
  std::string api_token;     // Bearer token for result uploads to the server ("" = none)
  std::chrono::milliseconds register_timeout{30000};
  std::chrono::milliseconds upload_timeout{30000};
  // Where collections' blobs are kept (by digest) and how much of them; "" : no cache
  // directory, so rag tasks cannot search embedded collections.
  std::string collection_cache_dir;
  uint64_t collection_cache_bytes = uint64_t{4} << 30;
  size_t collections_loaded = 8;  // collections kept loaded in memory
  // What the inference executors hold (advertised at registration and in heartbeats);
  // unset: no models, no sequence slots.
  std::function<std::vector<std::string>()> loaded_models;
  std::function<int()> free_sequence_slots;
};

// Exit codes of Worker::Run.
inline constexpr int kExitOk = 0;               // stopped on request
inline constexpr int kExitStreamLost = 1;       // supervisor went away: restart me
inline constexpr int kExitRegisterFailed = 2;   // never reached / rejected by the supervisor

// Whether a worker advertises its host's GPUs: only a `gpu` worker whose build can use them.
bool AdvertisesGpus(const WorkerConfig& config);

class Worker {
 public:
  Worker(WorkerConfig config, executors::ExecutorRegistry registry);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Registers, connects and serves until stopped or the stream is lost.
  int Run();
  // Graceful stop: fail running attempts (retryable), close the stream, make Run return 0.
  void RequestStop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowmesh::worker
