// One blocking HTTP exchange over libcurl (http and https), for the api executor: a
// per-request timeout, cancellation through an atomic flag, an optional body sink for
// streamed (SSE) responses, and a cap on the body kept. No state between calls except
// libcurl's global init; safe to call from many threads at once.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>

#include "common/status.h"

namespace flowmesh::executors {

struct HttpExchange {
  std::string method = "POST";
  std::string url;
  std::map<std::string, std::string> headers;
  std::string body;
  double timeout_s = 60;
  bool verify_tls = true;
  bool follow_redirects = true;
  size_t max_body_bytes = 200000;  // kept in HttpReply::body; the rest is counted, not kept
  // Called with each chunk of the body as it arrives (streaming); may be empty.
  std::function<void(std::string_view chunk)> on_chunk;
};

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  bool truncated = false;
  std::string effective_url;
};

// Unavailable on connection errors, DeadlineExceeded on timeout, Cancelled when
// `cancelled` was set. An HTTP error status is a reply, not an error.
Result<HttpReply> PerformHttp(const HttpExchange& request, const std::atomic<bool>& cancelled);

}  // namespace flowmesh::executors
