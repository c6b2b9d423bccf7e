#include "executors/api.h"

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "executors/api_http.h"
#include "executors/api_request.h"

namespace flowmesh::executors {
namespace {

using nlohmann::json;
using api::ApiOptions;

constexpr auto kWaitSlice = std::chrono::milliseconds(20);

// Requests in flight per endpoint (scheme://host:port), shared by every api task of this
// process, so that N tasks against one endpoint still keep to its concurrency.
class EndpointGate {
 public:
  static EndpointGate& Get() {
    static EndpointGate* gate = new EndpointGate();
    return *gate;
  }
  // False when cancelled while waiting.
  bool Acquire(const std::string& endpoint, int limit, const std::atomic<bool>& cancelled) {
    MutexLock lock(mu_);
    while (in_flight_[endpoint] >= limit) {
      if (cancelled.load()) return false;
      lock.WaitFor(cv_, kWaitSlice);
    }
    ++in_flight_[endpoint];
    return true;
  }
  void Release(const std::string& endpoint) {
    {
      MutexLock lock(mu_);
      --in_flight_[endpoint];
    }
    cv_.notify_all();
  }

 private:
  Mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, int> in_flight_ FM_GUARDED_BY(mu_);
};

std::string EndpointOf(const std::string& url) {
  auto scheme = url.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  return url.substr(0, end);
}

// Sleeps `delay` unless cancelled first. Returns false when cancelled.
bool WaitUnlessCancelled(std::chrono::milliseconds delay, const std::atomic<bool>& cancelled) {
  auto deadline = std::chrono::steady_clock::now() + delay;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cancelled.load()) return false;
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
        kWaitSlice, deadline - std::chrono::steady_clock::now()));
  }
  return !cancelled.load();
}

double UnitRandom() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0, 1)(rng);
}

// Forwards streamed text to the task log a line at a time (and what is left at the end).
class LogLines {
 public:
  LogLines(TaskContext& ctx, std::string prefix) : ctx_(ctx), prefix_(std::move(prefix)) {}
  void Add(const std::string& delta) {
    buffer_ += delta;
    for (size_t nl = buffer_.find('\n'); nl != std::string::npos; nl = buffer_.find('\n')) {
      Emit(buffer_.substr(0, nl));
      buffer_.erase(0, nl + 1);
    }
    if (buffer_.size() >= 200) Flush();
  }
  void Flush() {
    if (!buffer_.empty()) Emit(buffer_);
    buffer_.clear();
  }

 private:
  void Emit(const std::string& text) {
    if (ctx_.log) ctx_.log(prefix_ + text);
  }
  TaskContext& ctx_;
  std::string prefix_;
  std::string buffer_;
};

struct Call {
  const ApiOptions& options;
  std::string url;          // as written (placeholders unresolved): what results show
  std::string default_authorization;
  const CredentialGrant& grant;
  TaskContext& ctx;
};

Result<HttpExchange> BuildExchange(const Call& call, const std::optional<json>& item) {
  api::PreparedRequest p = api::PrepareRequest(call.options, call.url, item);
  HttpExchange x;
  x.method = call.options.method;
  FM_ASSIGN_OR_RETURN(x.url, api::ResolveCredentials(p.url, call.grant.values));
  for (auto& [name, value] : p.headers) {
    FM_ASSIGN_OR_RETURN(x.headers[name], api::ResolveCredentials(value, call.grant.values));
  }
  if (!call.default_authorization.empty()) {
    bool has = false;
    for (const auto& [name, value] : x.headers) has = has || api::IsCredentialHeader(name);
    if (!has) x.headers["Authorization"] = call.default_authorization;
  }
  FM_ASSIGN_OR_RETURN(x.body, api::ResolveCredentials(p.body, call.grant.values));
  x.timeout_s = call.options.timeout_s;
  x.verify_tls = call.options.verify_tls;
  x.follow_redirects = call.options.follow_redirects;
  x.max_body_bytes = call.options.response.max_body_bytes;
  return x;
}

// One item: request with retries, then the item record of the result.
Result<json> RunItem(const Call& call, size_t index, const std::optional<json>& item) {
  const ApiOptions& o = call.options;
  FM_ASSIGN_OR_RETURN(HttpExchange x, BuildExchange(call, item));
  std::string where = "item " + std::to_string(index) + ": " + o.method + " " + call.url;
  std::string endpoint = EndpointOf(x.url);
  api::SseAccumulator sse;
  Result<HttpReply> reply = Unavailable("not sent");
  for (int attempt = 0;; ++attempt) {
    LogLines lines(call.ctx, "[" + std::to_string(index) + "] ");
    sse = api::SseAccumulator();
    if (o.stream) {
      x.on_chunk = [&](std::string_view chunk) { lines.Add(sse.Feed(chunk)); };
    }
    if (!EndpointGate::Get().Acquire(endpoint, o.concurrency, call.ctx.cancelled)) {
      return Cancelled("api: cancelled");
    }
    reply = PerformHttp(x, call.ctx.cancelled);
    EndpointGate::Get().Release(endpoint);
    lines.Flush();
    if (!reply.ok() && reply.status().code() == StatusCode::kCancelled) return reply.status();
    bool transient = reply.ok() ? api::IsRetryableStatus(reply->status)
                                : (reply.status().code() == StatusCode::kUnavailable ||
                                   reply.status().code() == StatusCode::kDeadlineExceeded);
    if (!transient || attempt >= o.retries) break;
    std::string retry_after;
    if (reply.ok()) {
      auto h = reply->headers.find("retry-after");
      if (h != reply->headers.end()) retry_after = h->second;
    }
    auto delay = api::RetryDelay(o, attempt + 1, retry_after, UnitRandom(), WallSeconds());
    if (call.ctx.log) {
      call.ctx.log(where + ": " +
                   (reply.ok() ? "HTTP " + std::to_string(reply->status)
                               : reply.status().message()) +
                   ", retry " + std::to_string(attempt + 1) + "/" + std::to_string(o.retries) +
                   " in " + std::to_string(delay.count()) + " ms");
    }
    if (!WaitUnlessCancelled(delay, call.ctx.cancelled)) return Cancelled("api: cancelled");
  }
  if (!reply.ok()) return Status(reply.status().code(), where + ": " + reply.status().message());

  json out = {{"index", index},
              {"url", call.url},
              {"status_code", reply->status},
              {"truncated", reply->truncated}};
  if (item) out["prompt"] = api::PromptText(*item);
  if (o.response.include_headers) out["headers"] = reply->headers;
  if (o.response.raise_for_status && reply->status >= 400) {
    std::string msg = where + " answered HTTP " + std::to_string(reply->status) + ": " +
                      reply->body.substr(0, 200);
    // 4xx other than 408/429 will not change on retry; the rest may.
    return api::IsRetryableStatus(reply->status) ? Unavailable(msg) : FailedPrecondition(msg);
  }
  if (o.stream) {
    out["text"] = sse.text();
    out["usage"] = sse.usage();
    if (!sse.last().is_null()) out["response_json"] = sse.last();
    return out;
  }
  if (o.response.parse_json) {
    json body = json::parse(reply->body, nullptr, false);
    if (body.is_discarded()) {
      if (!o.response.return_body) return FailedPrecondition(where + ": the reply is not JSON");
      out["text"] = reply->body;
      return out;
    }
    out["response_json"] = body;
    api::ReplyContent content = api::ReadOpenAiReply(body);
    out["usage"] = content.usage;
    if (content.has_text) {
      out["text"] = content.text;
    } else if (o.response.return_body) {
      out["text"] = reply->body;
    }
  } else if (o.response.return_body) {
    out["text"] = reply->body;
  }
  return out;
}

// Resolves the endpoint and the credentials the spec names.
Status Prepare(TaskContext& ctx, const ApiOptions& options, std::string* url,
               CredentialGrant* grant, std::string* default_authorization) {
  std::set<std::string> names = api::CredentialNames(ctx.spec.value("api", json::object()));
  bool need_default = options.url.empty();
  if (names.empty() && !need_default) return Status::Ok();
  if (!ctx.credentials) {
    return FailedPrecondition(need_default ? "spec.api.url is omitted and this worker has no "
                                             "server to ask for the default endpoint"
                                           : "this worker has no server to ask for credentials");
  }
  FM_ASSIGN_OR_RETURN(*grant, ctx.credentials({names.begin(), names.end()}, need_default));
  if (need_default) {
    if (grant->default_url.empty()) {
      return FailedPrecondition("spec.api.url is omitted and the server has no default endpoint "
                                "(--api-default-url)");
    }
    std::string base = grant->default_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    *url = base + "/v1/chat/completions";
    *default_authorization = grant->default_authorization;
  }
  return Status::Ok();
}

}  // namespace

Result<json> ApiExecutor::Run(TaskContext& ctx) {
  FM_ASSIGN_OR_RETURN(ApiOptions options, api::ParseApiOptions(ctx.spec));
  std::string url = options.url;
  CredentialGrant grant;
  std::string default_authorization;
  FM_RETURN_IF_ERROR(Prepare(ctx, options, &url, &grant, &default_authorization));
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return InvalidArgument("spec.api.url must start with http:// or https://");
  }

  std::vector<std::optional<json>> items;
  const json& data = ctx.spec.value("data", json::object());
  if (data.is_object() && data.contains("items") && data["items"].is_array()) {
    for (const auto& item : data["items"]) items.emplace_back(item);
    if (items.empty()) return InvalidArgument("spec.data produced no items");
  } else {
    items.emplace_back(std::nullopt);
  }

  Call call{options, url, default_authorization, grant, ctx};
  std::vector<Result<json>> results(items.size(), Result<json>(Internal("not run")));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    for (size_t i = next++; i < items.size() && !failed.load() && !ctx.cancelled.load();
         i = next++) {
      results[i] = RunItem(call, i, items[i]);
      if (!results[i].ok()) failed = true;
    }
  };
  size_t threads = std::min<size_t>(items.size(), static_cast<size_t>(options.concurrency));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (ctx.cancelled.load()) return Cancelled("api: cancelled");

  json out_items = json::array();
  json usage = json::object();
  for (auto& r : results) {
    if (!r.ok() && r.status().message() != "not run") return r.status();
  }
  for (auto& r : results) {
    api::AddUsage(usage, r->value("usage", json()));
    out_items.push_back(std::move(*r));
  }
  bool truncated = false;
  for (const auto& i : out_items) truncated = truncated || i.value("truncated", false);
  return json{{"ok", true},
              {"executor", "api"},
              {"method", options.method},
              {"url", url},
              {"status_code", out_items[0].value("status_code", 0)},
              {"truncated", truncated},
              {"usage", usage},
              {"items", std::move(out_items)}};
}

}  // namespace flowmesh::executors
