// The worker-side HTTP listener of a serve task: an OpenAI-compatible endpoint
// (/v1/chat/completions, /v1/completions with SSE streaming, /v1/embeddings, /v1/models,
// /health) over one shared Engine. Its generations are ordinary Engine sequences, so they
// are decoded in the same continuous batch as inference tasks on this worker (one copy of
// the weights, one KV budget).
//
// Threads: the HTTP server's io threads parse and answer at once; each generation or
// embedding runs as a job on the endpoint's own pool (`max_concurrent` threads, the rest
// queue), which waits on the Generation and streams its text. Every public method is
// thread-safe. The destructor stops.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "inference/engine.h"

namespace flowmesh::inference {

struct ServeEndpointConfig {
  std::string address = "127.0.0.1";
  int port = 0;                       // 0: a free port (see port())
  std::string model;                  // the name /v1/models lists and responses carry
  std::vector<std::string> api_keys;  // accepted `Authorization: Bearer` keys; empty: open
  int max_concurrent = 64;            // requests worked on at once; more wait in a queue
  int io_threads = 2;
};

class ServeEndpoint {
 public:
  static Result<std::unique_ptr<ServeEndpoint>> Start(ServeEndpointConfig config,
                                                      std::shared_ptr<Engine> engine);
  ~ServeEndpoint();
  ServeEndpoint(const ServeEndpoint&) = delete;
  ServeEndpoint& operator=(const ServeEndpoint&) = delete;

  // Closes the listener and every connection, cancels running generations, joins. Idempotent.
  void Stop();
  int port() const;
  // When a request last started or ended (the idle timeout counts from it), and how many
  // are being worked on now (an endpoint with requests in flight is never idle).
  std::chrono::steady_clock::time_point last_activity() const;
  int in_flight() const;
  uint64_t requests() const;  // requests answered (any status) since Start

 private:
  struct Impl;
  explicit ServeEndpoint(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flowmesh::inference
