// The pure parts of the api executor: reading spec.api (the published keys), building one
// request per data item (`{{prompt}}` and `{{credential:NAME}}` placeholders), reading
// OpenAI-wire replies (chat, completions, SSE chunks) and the retry policy. No I/O here,
// so every rule is unit-tested without a server.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::executors::api {

struct ResponseOptions {
  bool parse_json = true;        // read JSON (usage, choices[0] text) from the reply
  bool return_body = true;       // keep the body text when not parsed
  bool raise_for_status = true;  // an HTTP error status fails the task
  bool include_headers = false;
  size_t max_body_bytes = 200000;
};

struct ApiOptions {
  std::string url;  // "" → the server's default endpoint
  std::string method = "POST";
  std::map<std::string, std::string> headers;
  nlohmann::json params = nlohmann::json::object();  // query parameters
  nlohmann::json body;                               // json | body (JSON or text) | data
  bool body_is_text = false;                         // a string body sent as it is
  double timeout_s = 60;
  int retries = 2;
  double backoff_s = 0.5;       // first retry delay before jitter; doubles each retry
  double max_backoff_s = 30;    // cap of one delay, Retry-After included
  int concurrency = 8;          // requests in flight to this endpoint from this worker
  bool verify_tls = true;
  bool follow_redirects = true;
  bool stream = false;          // SSE: tokens go to the task log as they arrive
  ResponseOptions response;
};

inline constexpr int kMaxConcurrency = 64;

// InvalidArgument naming the key for a malformed section.
Result<ApiOptions> ParseApiOptions(const nlohmann::json& spec);

// Every NAME of a `{{credential:NAME}}` placeholder anywhere in `value` (sorted).
std::set<std::string> CredentialNames(const nlohmann::json& value);
// `text` with every credential placeholder replaced; NotFound for one not in `values`.
Result<std::string> ResolveCredentials(const std::string& text,
                                       const std::map<std::string, std::string>& values);

// The prompt text of a data item (strings as they are, {prompt: …}, else compact JSON).
std::string PromptText(const nlohmann::json& item);
// `value` with `{{prompt}}` substituted; a string that is exactly `{{prompt}}` becomes the
// item itself (so `messages: "{{prompt}}"` takes a chat item as a list of messages).
nlohmann::json SubstitutePrompt(const nlohmann::json& value, const nlohmann::json& item);

// The request of one item before credentials are resolved (url with query, headers, body).
struct PreparedRequest {
  std::string url;
  std::map<std::string, std::string> headers;
  std::string body;
};
PreparedRequest PrepareRequest(const ApiOptions& options, const std::string& url,
                               const std::optional<nlohmann::json>& item);

// Whether a header carries a credential (Authorization, X-API-Key, Api-Key, …).
bool IsCredentialHeader(const std::string& name);

// 408, 429 and 5xx are worth retrying.
bool IsRetryableStatus(int status);
// The delay before retry number `retry` (1-based): Retry-After when given (seconds or an
// HTTP date, capped at max_backoff_s), else backoff_s·2^(retry-1) capped, with full jitter
// in [½, 1] of it. `unit_random` in [0,1) is injected for tests.
std::chrono::milliseconds RetryDelay(const ApiOptions& options, int retry,
                                     const std::string& retry_after, double unit_random,
                                     double now_epoch_s);

// Text and usage of an OpenAI-wire reply (chat: choices[0].message.content; completions:
// choices[0].text). Missing fields stay empty / null.
struct ReplyContent {
  std::string text;
  nlohmann::json usage;  // null when absent
  bool has_text = false;
};
ReplyContent ReadOpenAiReply(const nlohmann::json& reply);

// Incremental SSE reader for OpenAI-wire streams: feed body chunks, get text deltas.
class SseAccumulator {
 public:
  // Returns the text deltas completed by this chunk (concatenated).
  std::string Feed(std::string_view chunk);
  const std::string& text() const { return text_; }
  const nlohmann::json& usage() const { return usage_; }
  bool done() const { return done_; }
  // The last full JSON chunk seen (id, model, finish_reason …).
  const nlohmann::json& last() const { return last_; }

 private:
  std::string DataLine(const std::string& line);
  std::string pending_;
  std::string text_;
  nlohmann::json usage_;
  nlohmann::json last_;
  bool done_ = false;
};

// Sums the numeric fields of usage objects (prompt_tokens, completion_tokens, …).
void AddUsage(nlohmann::json& total, const nlohmann::json& usage);

}  // namespace flowmesh::executors::api
