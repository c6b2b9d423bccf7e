#include "inference/serve_endpoint.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <optional>
#include <thread>

#include "common/clock.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/thread_annotations.h"
#include "http/http.h"
#include "inference/serve_openai.h"

namespace flowmesh::inference {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr auto kWaitSlice = std::chrono::milliseconds(100);  // how often a job sees Stop

http::Response OpenAiError(int status, const std::string& message, const std::string& type) {
  return http::Response::Json(status, openai::ErrorBody(message, type).dump());
}

http::Response InvalidRequest(const Status& s) {
  return OpenAiError(400, s.message(), "invalid_request_error");
}

// Whether a body asks for a stream; malformed bodies do not (the handler reports them).
bool WantsStream(const http::Request& req) {
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  return body.is_object() && body.contains("stream") && body["stream"].is_boolean() &&
         body["stream"].get<bool>();
}

}  // namespace

struct ServeEndpoint::Impl {
  ServeEndpointConfig config;
  std::shared_ptr<Engine> engine;
  std::unique_ptr<http::Server> server;
  int64_t created = static_cast<int64_t>(WallSeconds());

  Mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> jobs FM_GUARDED_BY(mu);
  bool stopping FM_GUARDED_BY(mu) = false;
  std::vector<std::thread> pool;
  std::atomic<bool> stopped{false};

  std::atomic<int> in_flight{0};
  std::atomic<uint64_t> served{0};
  std::atomic<int64_t> last_activity_ns{Clock::now().time_since_epoch().count()};

  void Touch() { last_activity_ns.store(Clock::now().time_since_epoch().count()); }
  bool Stopping() {
    MutexLock lock(mu);
    return stopping;
  }

  // A request entering: counted as activity until Leave.
  void Enter() {
    in_flight.fetch_add(1);
    Touch();
  }
  void Leave() {
    served.fetch_add(1);
    Touch();
    in_flight.fetch_sub(1);
  }

  std::optional<http::Response> Refuse(const http::Request& req) const {
    if (config.api_keys.empty()) return std::nullopt;
    std::string header = req.Header("Authorization");
    const std::string prefix = "Bearer ";
    if (header.compare(0, prefix.size(), prefix) == 0) {
      std::string key = header.substr(prefix.size());
      for (const auto& k : config.api_keys) {
        if (!k.empty() && k == key) return std::nullopt;
      }
    }
    http::Response r = OpenAiError(401, "invalid or missing API key", "invalid_request_error");
    r.headers["WWW-Authenticate"] = "Bearer";
    return r;
  }

  // Runs `job` on the pool; once stopping, at once on the caller's thread (the pool may be
  // gone, and a job then only answers that the endpoint is stopping).
  void Queue(std::function<void()> job) {
    {
      MutexLock lock(mu);
      if (!stopping) {
        jobs.push_back(std::move(job));
        cv.notify_one();
        return;
      }
    }
    job();
  }

  void PoolLoop() {
    for (;;) {
      std::function<void()> job;
      {
        MutexLock lock(mu);
        lock.Wait(cv, [this]() FM_REQUIRES(mu) { return stopping || !jobs.empty(); });
        if (jobs.empty()) return;  // stopping, nothing left
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      job();
    }
  }

  Result<openai::GenerationRequest> Parse(const http::Request& req, openai::Endpoint endpoint) const {
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return InvalidArgument("the request body is not valid JSON");
    return endpoint == openai::Endpoint::kChat ? openai::ParseChatRequest(body)
                                               : openai::ParseCompletionRequest(body);
  }

  Result<std::shared_ptr<Generation>> Submit(const openai::GenerationRequest& r) {
    std::string prompt = r.prompt;
    if (r.endpoint == openai::Endpoint::kChat) {
      FM_ASSIGN_OR_RETURN(prompt, engine->ApplyChatTemplate(r.messages));
    }
    return engine->Submit(prompt, r.params);
  }

  openai::ResponseMeta Meta(openai::Endpoint endpoint) const {
    return {(endpoint == openai::Endpoint::kChat ? "chatcmpl-" : "cmpl-") + RandomHex(12), created,
            config.model};
  }

  // Waits for `gen` to finish; false (after cancelling it) when the endpoint stops first.
  bool Finish(const std::shared_ptr<Generation>& gen) {
    while (!gen->WaitFor(kWaitSlice)) {
      if (Stopping()) {
        engine->Cancel(gen);
        return false;
      }
    }
    return true;
  }

  void Generate(openai::GenerationRequest r, std::shared_ptr<http::Responder> resp) {
    auto gen = Submit(r);
    if (!gen.ok()) return resp->Send(InvalidRequest(gen.status()));
    if (!Finish(*gen)) return resp->Send(OpenAiError(503, "the serve task is stopping", "server_error"));
    Completion c = (*gen)->completion();
    if (c.finish_reason == "error") return resp->Send(OpenAiError(500, c.error, "server_error"));
    openai::ResponseMeta meta = Meta(r.endpoint);
    json body = r.endpoint == openai::Endpoint::kChat
                    ? openai::ChatResponse(meta, c)
                    : openai::CompletionResponse(meta, c, r.echo ? r.prompt : "");
    resp->Send(http::Response::Json(200, body.dump()));
  }

  void Stream(openai::GenerationRequest r, const std::shared_ptr<http::SseStream>& sse) {
    auto gen = Submit(r);
    if (!gen.ok()) {
      sse->Send("", "", openai::ErrorBody(gen.status().message(), "invalid_request_error").dump());
      return sse->Close();
    }
    openai::ResponseMeta meta = Meta(r.endpoint);
    bool first = true;
    auto send = [&](const std::string& text, const std::string& finish) {
      json chunk = r.endpoint == openai::Endpoint::kChat ? openai::ChatChunk(meta, text, first, finish)
                                                         : openai::CompletionChunk(meta, text, finish);
      first = false;
      return sse->Send("", "", chunk.dump());
    };
    if (r.echo && !send(r.prompt, "")) return engine->Cancel(*gen);
    for (;;) {
      bool ready = (*gen)->WaitForText(kWaitSlice);
      if (sse->closed() || Stopping()) {  // client gone or stopping
        engine->Cancel(*gen);
        return sse->Close();
      }
      if (!ready) continue;
      // Read before taking: all text published before the end is in this delta.
      bool finished = (*gen)->done();
      std::string delta = (*gen)->TakeDelta();
      if (!delta.empty() && !send(delta, "")) return engine->Cancel(*gen);
      if (finished) break;
    }
    Completion c = (*gen)->completion();
    if (c.finish_reason == "error") {
      sse->Send("", "", openai::ErrorBody(c.error, "server_error").dump());
      return sse->Close();
    }
    send("", openai::FinishReason(c.finish_reason));
    if (r.include_usage) sse->Send("", "", openai::UsageChunk(meta, r.endpoint, c).dump());
    sse->Send("", "", "[DONE]");
    sse->Close();
  }

  void Embeddings(const http::Request& req, std::shared_ptr<http::Responder> resp) {
    json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    auto input = openai::ParseEmbeddingInput(body);
    if (!input.ok()) return resp->Send(InvalidRequest(input.status()));
    auto vectors = engine->Embed(*input);
    if (!vectors.ok()) return resp->Send(InvalidRequest(vectors.status()));
    int tokens = 0;
    for (const auto& text : *input) tokens += static_cast<int>(text.size() + 3) / 4;  // estimate
    resp->Send(http::Response::Json(200, openai::EmbeddingResponse(config.model, *vectors, tokens).dump()));
  }

  // Runs `job` on the pool as one in-flight request.
  void Run(std::function<void()> job) {
    Enter();
    Queue([this, job = std::move(job)] {
      job();
      Leave();
    });
  }

  void AddGenerationRoute(http::Router& router, const std::string& path, openai::Endpoint endpoint) {
    auto precheck = [this, endpoint](http::Request& req) -> std::optional<http::Response> {
      if (auto refused = Refuse(req)) return refused;
      auto parsed = Parse(req, endpoint);
      if (!parsed.ok()) return InvalidRequest(parsed.status());
      return std::nullopt;
    };
    auto answer = [this, endpoint, precheck](http::Request& req, std::shared_ptr<http::Responder> resp) {
      if (auto refused = precheck(req)) return resp->Send(std::move(*refused));
      auto parsed = Parse(req, endpoint);
      Run([this, r = std::move(*parsed), resp] { Generate(r, resp); });
    };
    auto stream = [this, endpoint](http::Request& req, std::shared_ptr<http::SseStream> sse) {
      auto parsed = Parse(req, endpoint);  // the precheck accepted it
      Run([this, r = std::move(*parsed), sse] { Stream(r, sse); });
    };
    router.AddAsyncOrSse("POST", path, answer, stream, WantsStream, precheck);
  }

  std::shared_ptr<http::Router> MakeRouter() {
    auto router = std::make_shared<http::Router>();
    router->Add("GET", "/health", [](http::Request&) { return http::Response::Json(200, R"({"status":"ok"})"); });
    router->Add("GET", "/v1/models", [this](http::Request& req) {
      if (auto refused = Refuse(req)) return std::move(*refused);
      Touch();
      return http::Response::Json(200, openai::ModelsResponse(config.model, created).dump());
    });
    AddGenerationRoute(*router, "/v1/chat/completions", openai::Endpoint::kChat);
    AddGenerationRoute(*router, "/v1/completions", openai::Endpoint::kCompletion);
    router->AddAsync("POST", "/v1/embeddings", [this](http::Request& req, std::shared_ptr<http::Responder> resp) {
      if (auto refused = Refuse(req)) return resp->Send(std::move(*refused));
      Run([this, req, resp] { Embeddings(req, resp); });
    });
    return router;
  }
};

Result<std::unique_ptr<ServeEndpoint>> ServeEndpoint::Start(ServeEndpointConfig config,
                                                            std::shared_ptr<Engine> engine) {
  if (!engine) return InvalidArgument("serve endpoint: no engine");
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  impl->engine = std::move(engine);
  http::ServerConfig sc;
  sc.address = impl->config.address;
  sc.port = impl->config.port;
  sc.threads = std::max(1, impl->config.io_threads);
  impl->server = std::make_unique<http::Server>(sc, impl->MakeRouter());
  FM_RETURN_IF_ERROR(impl->server->Start());
  for (int i = 0; i < std::max(1, impl->config.max_concurrent); ++i) {
    impl->pool.emplace_back([p = impl.get()] { p->PoolLoop(); });
  }
  return std::unique_ptr<ServeEndpoint>(new ServeEndpoint(std::move(impl)));
}

ServeEndpoint::ServeEndpoint(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ServeEndpoint::~ServeEndpoint() { Stop(); }

void ServeEndpoint::Stop() {
  if (impl_->stopped.exchange(true)) return;
  {
    MutexLock lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  // Jobs see the stop within a wait slice: they cancel their sequences and answer (503, or
  // close their streams) while the server still runs; then the server closes what is left.
  for (auto& t : impl_->pool) t.join();
  impl_->server->Stop();
}

int ServeEndpoint::port() const { return impl_->server->port(); }

std::chrono::steady_clock::time_point ServeEndpoint::last_activity() const {
  return Clock::time_point(Clock::duration(impl_->last_activity_ns.load()));
}

int ServeEndpoint::in_flight() const { return impl_->in_flight.load(); }

uint64_t ServeEndpoint::requests() const { return impl_->served.load(); }

}  // namespace flowmesh::inference
