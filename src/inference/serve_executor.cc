#include "inference/serve_executor.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/ids.h"
#include "common/log.h"
#include "inference/serve_endpoint.h"
#include "spec/operator.h"

namespace flowmesh::inference {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(50);  // how soon cancel and timeouts are seen

struct ServeOptions {
  double ttl_s = 0;
  double idle_s = 0;  // 0: no idle timeout
  std::string mode = "forward";
  int port = 0;
  std::string api_key;
};

double Seconds(const json& serve, const char* key) {
  auto it = serve.find(key);
  return it != serve.end() && it->is_number() ? it->get<double>() : 0;
}

Result<ServeOptions> ReadOptions(const json& spec, const ServeSettings& settings) {
  json serve = spec.contains("serve") && spec["serve"].is_object() ? spec["serve"] : json::object();
  ServeOptions o;
  double ttl = Seconds(serve, "ttlSeconds");
  o.ttl_s = std::min(ttl > 0 ? ttl : settings.default_ttl_s, settings.max_ttl_s);
  o.idle_s = std::max(0.0, Seconds(serve, "idleTimeoutSeconds"));
  if (serve.contains("accessMode") && serve["accessMode"].is_string()) {
    o.mode = serve["accessMode"].get<std::string>();
  }
  if (o.mode != "forward" && o.mode != "proxy" && o.mode != "direct") {
    return InvalidArgument("serve.accessMode must be direct, proxy or forward");
  }
  if (serve.contains("port") && serve["port"].is_number_integer()) o.port = serve["port"].get<int>();
  if (o.port < 0 || o.port > 65535) return InvalidArgument("serve.port must be 1..65535");
  if (serve.contains("apiKey") && serve["apiKey"].is_string()) o.api_key = serve["apiKey"].get<std::string>();
  if (o.mode == "direct" && o.api_key.empty()) {
    return InvalidArgument("serve.accessMode direct needs serve.apiKey: clients call the worker itself");
  }
  return o;
}

// The name clients use in `model`: the model's identifier as the author wrote it.
std::string ModelName(const json& spec) {
  if (spec.contains("model") && spec["model"].is_object()) {
    const json& model = spec["model"];
    if (model.contains("source") && model["source"].is_object()) {
      const json& source = model["source"];
      if (source.contains("identifier") && source["identifier"].is_string()) {
        return source["identifier"].get<std::string>();
      }
    }
  }
  return spec::ModelKey(spec);
}

std::string HostName() {
  char name[256] = {};
  return ::gethostname(name, sizeof(name) - 1) == 0 ? std::string(name) : "localhost";
}

}  // namespace

Result<json> ServeExecutor::Run(executors::TaskContext& ctx) {
  FM_ASSIGN_OR_RETURN(ServeOptions o, ReadOptions(ctx.spec, settings_));
  if (ctx.cancelled.load()) return Cancelled("serve: cancelled");
  FM_ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, models_->Acquire(ctx.spec));

  ServeEndpointConfig config;
  // Direct mode is an explicit opt-in to an endpoint clients reach themselves.
  config.address = o.mode == "direct" ? "0.0.0.0" : settings_.listen_address;
  config.port = o.port;
  config.model = ModelName(ctx.spec);
  std::string key = RandomHex(32);  // what the server's proxy presents
  config.api_keys = {key};
  if (!o.api_key.empty()) config.api_keys.push_back(o.api_key);
  config.max_concurrent = settings_.max_concurrent;
  auto started = ServeEndpoint::Start(config, engine);
  if (!started.ok()) {
    return FailedPrecondition("serve: cannot listen on " + config.address + ":" + std::to_string(o.port) +
                              ": " + started.status().message());
  }
  std::unique_ptr<ServeEndpoint> endpoint = std::move(started).value();

  std::string host = settings_.advertise_host;
  if (host.empty()) host = config.address == "0.0.0.0" ? HostName() : config.address;
  if (ctx.update) {
    ctx.update({{"serve", {{"mode", o.mode}, {"host", host}, {"port", endpoint->port()}, {"model", config.model}}},
                {"_internal", {{"serve_key", key}}}});
  }
  if (ctx.log) {
    ctx.log("serve: " + config.model + " on " + host + ":" + std::to_string(endpoint->port()) + " (ttl " +
            std::to_string(static_cast<int64_t>(o.ttl_s)) + "s" +
            (o.idle_s > 0 ? ", idle timeout " + std::to_string(static_cast<int64_t>(o.idle_s)) + "s" : "") + ")");
  }

  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.ttl_s));
  auto idle = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.idle_s));
  std::string stopped;
  while (stopped.empty()) {
    std::this_thread::sleep_for(kPoll);  // ctx.cancelled is a flag without a wake-up
    auto now = Clock::now();
    if (ctx.cancelled.load()) {
      endpoint->Stop();
      return Cancelled("serve: cancelled");
    }
    if (now >= deadline) stopped = "ttl";
    if (o.idle_s > 0 && endpoint->in_flight() == 0 && now - endpoint->last_activity() >= idle) stopped = "idle";
  }
  endpoint->Stop();
  if (ctx.log) ctx.log("serve: stopped (" + stopped + ") after " + std::to_string(endpoint->requests()) + " requests");
  return json{{"model", config.model},
              {"port", endpoint->port()},
              {"mode", o.mode},
              {"requests", endpoint->requests()},
              {"stopped", stopped}};
}

void RegisterServeExecutor(executors::ExecutorRegistry& registry, std::shared_ptr<ModelCache> models,
                           ServeSettings settings) {
  registry.Register("serve", [models, settings] { return std::make_unique<ServeExecutor>(models, settings); });
}

}  // namespace flowmesh::inference
