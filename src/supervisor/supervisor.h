// The node agent. One Supervisor per node: it registers the node with the server over
// HTTP, serves the WorkerSupervisor gRPC service to its workers, starts/stops/restarts
// native flowmesh-worker processes on command, and relays between the bus (dispatches,
// interrupts and commands from fm:node:<id>; events to fm:events; heartbeats to
// fm:heartbeats) and the workers' streams.
//
// Threads: the gRPC server's handler threads (one per worker stream), the bus consumer
// thread, a process-monitor thread, a heartbeat thread and the event outbox's flusher.
// Shared state lives behind one mutex; stream writes are serialised per worker.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "bus/bus.h"
#include "common/status.h"

namespace flowmesh::supervisor {

struct SupervisorConfig {
  std::string root_url = "http://127.0.0.1:8000";  // the server, for registration and results
  bus::RedisConfig redis;                          // used when RunSupervisor gets no bus
  std::string node_alias;                          // default: the hostname
  bool local = false;                              // the node started by the server itself
  std::string grpc_address = "127.0.0.1:0";        // port 0: ephemeral
  std::string state_dir = ".flowmesh/supervisor";  // node_id file, worker logs
  std::string worker_binary;                       // default: ExecutableDir()/flowmesh-worker
  std::chrono::milliseconds heartbeat_interval{1000};
  std::string worker_token;  // when set, workers must present it (or their per-process token)
  std::string api_token;     // Bearer token for calls to the server; handed to workers
  std::chrono::milliseconds worker_stop_grace{5000};  // SIGTERM -> SIGKILL
  std::chrono::milliseconds register_retry_max{5000};  // node registration backoff cap
};

class Supervisor {
 public:
  // `bus` must not be null.
  Supervisor(SupervisorConfig config, std::shared_ptr<bus::Bus> bus);
  ~Supervisor();  // Stop()
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts the gRPC server, registers the node (retrying until it succeeds or `*cancel`
  // becomes true) and starts consuming the node stream.
  Status Start(const std::atomic<bool>* cancel = nullptr);
  // Stops every worker process (SIGTERM, then SIGKILL after the grace period), the gRPC
  // server and all threads. Idempotent.
  void Stop();

  int grpc_port() const;
  std::string node_id() const;
  // True once a `shutdown` command has been carried out.
  bool shutdown_requested() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Runs a supervisor until `*stop` becomes true or a shutdown command arrives. A null `bus`
// means a Redis bus from config.redis. Returns the process exit code.
int RunSupervisor(const SupervisorConfig& config, std::shared_ptr<bus::Bus> bus,
                  std::atomic<bool>* stop);

}  // namespace flowmesh::supervisor
