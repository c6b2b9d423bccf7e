#include "executors/api_client.h"

#include <condition_variable>
#include <map>
#include <random>
#include <thread>

#include "common/clock.h"
#include "common/thread_annotations.h"

namespace flowmesh::executors::api {
namespace {

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kWaitSlice = std::chrono::milliseconds(20);

// Requests in flight per endpoint (scheme://host:port), shared by every task of this
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
  auto deadline = SteadyClock::now() + delay;
  while (SteadyClock::now() < deadline) {
    if (cancelled.load()) return false;
    std::this_thread::sleep_for(
        std::min<SteadyClock::duration>(kWaitSlice, deadline - SteadyClock::now()));
  }
  return !cancelled.load();
}

double UnitRandom() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return std::uniform_real_distribution<double>(0, 1)(rng);
}

}  // namespace

Result<HttpReply> SendWithRetries(const ApiOptions& o, HttpExchange& x, const std::string& where,
                                  const std::atomic<bool>& cancelled, const RetryHooks& hooks,
                                  std::optional<SteadyClock::time_point> deadline) {
  const std::string endpoint = EndpointOf(x.url);
  const double timeout_s = x.timeout_s;
  Result<HttpReply> reply = Unavailable("not sent");
  for (int attempt = 0;; ++attempt) {
    if (deadline) {
      double left = std::chrono::duration<double>(*deadline - SteadyClock::now()).count();
      if (left <= 0) return DeadlineExceeded(where + ": no time left before the deadline");
      x.timeout_s = std::min(timeout_s, left);
    }
    if (hooks.before_attempt) hooks.before_attempt(x);
    if (!EndpointGate::Get().Acquire(endpoint, o.concurrency, cancelled)) {
      return Cancelled("cancelled");
    }
    reply = PerformHttp(x, cancelled);
    EndpointGate::Get().Release(endpoint);
    if (hooks.after_attempt) hooks.after_attempt();
    if (!reply.ok() && reply.status().code() == StatusCode::kCancelled) return reply.status();
    bool transient = reply.ok() ? IsRetryableStatus(reply->status)
                                : (reply.status().code() == StatusCode::kUnavailable ||
                                   reply.status().code() == StatusCode::kDeadlineExceeded);
    if (!transient || attempt >= o.retries) break;
    std::string retry_after;
    if (reply.ok()) {
      auto h = reply->headers.find("retry-after");
      if (h != reply->headers.end()) retry_after = h->second;
    }
    auto delay = RetryDelay(o, attempt + 1, retry_after, UnitRandom(), WallSeconds());
    if (deadline && SteadyClock::now() + delay >= *deadline) break;
    if (hooks.log) {
      hooks.log(where + ": " +
                (reply.ok() ? "HTTP " + std::to_string(reply->status) : reply.status().message()) +
                ", retry " + std::to_string(attempt + 1) + "/" + std::to_string(o.retries) +
                " in " + std::to_string(delay.count()) + " ms");
    }
    if (!WaitUnlessCancelled(delay, cancelled)) return Cancelled("cancelled");
  }
  if (!reply.ok()) return Status(reply.status().code(), where + ": " + reply.status().message());
  return reply;
}

Result<HttpExchange> ResolveExchange(const ApiOptions& options, const PreparedRequest& p,
                                     const CredentialGrant& grant,
                                     const std::string& default_authorization) {
  HttpExchange x;
  x.method = options.method;
  FM_ASSIGN_OR_RETURN(x.url, ResolveCredentials(p.url, grant.values));
  for (const auto& [name, value] : p.headers) {
    FM_ASSIGN_OR_RETURN(x.headers[name], ResolveCredentials(value, grant.values));
  }
  if (!default_authorization.empty()) {
    bool has = false;
    for (const auto& [name, value] : x.headers) has = has || IsCredentialHeader(name);
    if (!has) x.headers["Authorization"] = default_authorization;
  }
  FM_ASSIGN_OR_RETURN(x.body, ResolveCredentials(p.body, grant.values));
  x.timeout_s = options.timeout_s;
  x.verify_tls = options.verify_tls;
  x.follow_redirects = options.follow_redirects;
  x.max_body_bytes = options.response.max_body_bytes;
  return x;
}

Result<CredentialGrant> FetchGrant(TaskContext& ctx, const json& section, bool need_default,
                                   const std::string& what) {
  std::set<std::string> names = CredentialNames(section);
  if (names.empty() && !need_default) return CredentialGrant{};
  if (!ctx.credentials) {
    return FailedPrecondition(need_default ? what + ".url is omitted and this worker has no "
                                                    "server to ask for the default endpoint"
                                           : "this worker has no server to ask for credentials");
  }
  FM_ASSIGN_OR_RETURN(CredentialGrant grant,
                      ctx.credentials({names.begin(), names.end()}, need_default));
  if (need_default && grant.default_url.empty()) {
    return FailedPrecondition(what + ".url is omitted and the server has no default endpoint "
                                     "(--api-default-url)");
  }
  return grant;
}

Result<ApiOptions> ParseApiSection(const json& section, const std::string& where) {
  Result<ApiOptions> options = ParseApiOptions(json{{"api", section}});
  if (options.ok() || where == "spec.api") return options;
  std::string message = options.status().message();
  if (message.rfind("spec.api", 0) == 0) message = where + message.substr(8);
  return Status(options.status().code(), message);
}

}  // namespace flowmesh::executors::api
