// The serve proxy of the published contract: /api/v1/serve/tasks/{id}/{path...} forwards a
// request to the OpenAI-compatible endpoint a running `serve` task's worker advertised
// (streaming responses included), after the API key, the caller's organisation (another
// organisation's task is 404) and the task (a running serve task with an endpoint, else
// 409) are checked. The caller's key never leaves the server: the worker gets the per-task
// key its executor reported in the update's `_internal` part, which the scheduler keeps.
//
// Proxied requests block on the worker, so they run on a pool of their own threads (each
// with one keep-alive client per worker), never on the HTTP io threads.
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <thread>

#include "api/access.h"
#include "api/routes/common.h"
#include "api/service.h"
#include "common/thread_annotations.h"

namespace flowmesh::api {

using http::Request;
using http::Response;
using nlohmann::json;

namespace {

constexpr int kProxyThreads = 32;
constexpr auto kStreamTimeout = std::chrono::seconds(60);  // between bytes; the worker pings
constexpr auto kRequestTimeout = std::chrono::minutes(10);  // a whole non-streamed generation

bool WantsStream(const Request& req) {
  if (req.method != "POST") return false;
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  return body.is_object() && body.contains("stream") && body["stream"].is_boolean() &&
         body["stream"].get<bool>();
}

std::string OpenAiError(const std::string& message) {
  return json{{"error", {{"message", message}, {"type", "server_error"}, {"param", nullptr}, {"code", nullptr}}}}
      .dump();
}

}  // namespace

// Where a request goes: the worker's endpoint, the path there, and the headers to send.
struct ServeTarget {
  std::string base_url;
  std::string path;
  http::Headers headers;
};

class ServeProxy {
 public:
  ServeProxy() {
    for (int i = 0; i < kProxyThreads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~ServeProxy() {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void Forward(ServeTarget target, std::string method, std::string body, std::shared_ptr<http::Responder> resp) {
    Queue([target = std::move(target), method = std::move(method), body = std::move(body), resp](Clients& clients) {
      http::Client& client = clients.For(target.base_url, kRequestTimeout);
      auto r = client.Request(method, target.path, body, target.headers);
      if (!r.ok()) return resp->Send(Response::Json(502, OpenAiError("serve endpoint unreachable: " + r.status().message())));
      Response out;
      out.status = r->status;
      auto type = r->headers.find("Content-Type");
      out.content_type = type == r->headers.end() ? "application/json" : type->second;
      out.body = std::move(r->body);
      resp->Send(std::move(out));
    });
  }

  void Stream(ServeTarget target, std::string body, std::shared_ptr<http::SseStream> sse) {
    Queue([target = std::move(target), body = std::move(body), sse](Clients&) {
      http::Client client(target.base_url, kStreamTimeout);  // a stream holds its connection
      Status s = client.StreamSse("POST", target.path, body, target.headers, [&](const http::SseEvent& e) {
        return sse->Send(e.id, e.event == "message" ? "" : e.event, e.data);
      });
      if (!s.ok() && !sse->closed()) sse->Send("", "", OpenAiError(s.message()));
      sse->Close();
    });
  }

 private:
  // One keep-alive client per worker endpoint, per proxy thread.
  struct Clients {
    std::map<std::string, std::unique_ptr<http::Client>> by_url;
    http::Client& For(const std::string& url, std::chrono::milliseconds timeout) {
      auto& c = by_url[url];
      if (!c) c = std::make_unique<http::Client>(url, timeout);
      return *c;
    }
  };
  using Job = std::function<void(Clients&)>;

  void Queue(Job job) {
    {
      MutexLock lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
  }

  void Loop() {
    Clients clients;
    for (;;) {
      Job job;
      {
        MutexLock lock(mu_);
        lock.Wait(cv_, [this]() FM_REQUIRES(mu_) { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job(clients);
      if (clients.by_url.size() > 64) clients.by_url.clear();  // endpoints come and go
    }
  }

  Mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_ FM_GUARDED_BY(mu_);
  bool stopping_ FM_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

Result<ServeTarget> ApiService::ServeTargetOf(const Request& req) const {
  const std::string id = req.params.at("id");
  // Calling a served model reads the task; another organisation's task is not found.
  FM_ASSIGN_OR_RETURN(state::TaskRecord t, AccessibleTask(req, id, auth::Kind::kTask, auth::Action::kRead));
  if (t.task_type != "serve") return NotFound("serve task not found: " + id);
  if (t.status != state::TaskState::kDispatched) return FailedPrecondition("serve task is not running");
  json serve = ParseOr(t.latest_update_json, json::object()).value("serve", json());
  json internal = scheduler_->InternalUpdate(id);
  std::string key = internal.is_object() ? internal.value("_internal", json::object()).value("serve_key", "") : "";
  if (!serve.is_object() || !serve.contains("host") || !serve.contains("port") || key.empty()) {
    return FailedPrecondition("serve task has no endpoint yet");
  }
  ServeTarget target;
  std::string host = serve["host"].is_string() ? serve["host"].get<std::string>() : "";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";  // IPv6 literal
  target.base_url = "http://" + host + ":" + serve["port"].dump();
  // The path after the task id, as the client sent it (still encoded, with its query).
  std::string prefix = std::string(kPrefix) + "/serve/tasks/" + id + "/";
  target.path = req.target.compare(0, prefix.size(), prefix) == 0 ? "/" + req.target.substr(prefix.size())
                                                                  : "/" + req.params.at("path");
  for (const char* name : {"Content-Type", "Accept"}) {
    if (std::string v = req.Header(name); !v.empty()) target.headers[name] = v;
  }
  target.headers["Authorization"] = "Bearer " + key;
  return target;
}

void ApiService::AddServeRoutes(http::Router& r) {
  serve_proxy_ = std::make_shared<ServeProxy>();
  std::string pattern = std::string(kPrefix) + "/serve/tasks/{id}/{path...}";
  auto forward = [this](Request& req, std::shared_ptr<http::Responder> resp) {
    auto target = ServeTargetOf(req);
    if (!target.ok()) return resp->Send(StatusResponse(target.status()));
    serve_proxy_->Forward(std::move(*target), req.method, std::move(req.body), std::move(resp));
  };
  auto stream = [this](Request& req, std::shared_ptr<http::SseStream> sse) {
    auto target = ServeTargetOf(req);  // the precheck found it
    if (!target.ok()) {
      sse->Send("", "", OpenAiError(target.status().message()));
      return sse->Close();
    }
    serve_proxy_->Stream(std::move(*target), std::move(req.body), std::move(sse));
  };
  auto precheck = [this](Request& req) -> std::optional<Response> {
    auto target = ServeTargetOf(req);
    if (!target.ok()) return StatusResponse(target.status());
    return std::nullopt;
  };
  r.AddAsyncOrSse("POST", pattern, forward, stream, WantsStream, precheck);
  for (const char* method : {"GET", "PUT", "DELETE"}) r.AddAsync(method, pattern, forward);
}

}  // namespace flowmesh::api
