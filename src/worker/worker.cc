#include "worker/worker.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <map>
#include <thread>

#include "common/clock.h"
#include "common/log.h"
#include "common/thread_annotations.h"
#include "flowmesh/v1/worker.grpc.pb.h"
#include "http/http.h"
#include "worker/collection_client.h"
#include "worker/credential_client.h"
#include "worker/file_upload.h"
#include "worker/host_info.h"

namespace flowmesh::worker {

using Clock = std::chrono::steady_clock;

namespace {

// Uploads a result with one keep-alive client per pool thread (http::Client is not
// thread-safe).
Result<std::string> UploadResult(const std::string& root_url, const std::string& api_token,
                                 std::chrono::milliseconds timeout, const std::string& worker_id,
                                 const Assignment& a, const nlohmann::json& metadata,
                                 const nlohmann::json& result) {
  thread_local std::map<std::string, std::unique_ptr<http::Client>> clients;
  auto& client = clients[root_url];
  if (!client) client = std::make_unique<http::Client>(root_url, timeout);
  nlohmann::json body = {{"task_id", a.task_id},   {"worker_id", worker_id},
                         {"attempt", a.attempt},   {"metadata", metadata},
                         {"received_at", WallSeconds()}, {"result", result}};
  http::Headers headers;
  if (!api_token.empty()) headers["Authorization"] = "Bearer " + api_token;
  auto reply = client->PostJson(
      "/api/v1/results", body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
      headers);
  if (!reply.ok()) return reply.status();
  if (reply->status != 200 && reply->status != 201) {
    return Unavailable("POST " + root_url + "/api/v1/results answered " +
                       std::to_string(reply->status) + ": " + reply->body.substr(0, 300));
  }
  auto json = nlohmann::json::parse(reply->body, nullptr, false);
  if (json.is_discarded() || !json.contains("digest") || !json["digest"].is_string()) {
    return Internal("result upload reply has no digest: " + reply->body.substr(0, 300));
  }
  return json["digest"].get<std::string>();
}

}  // namespace

struct Worker::Impl {
  WorkerConfig config;
  executors::ExecutorRegistry registry;

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::WorkerSupervisor::Stub> stub;
  std::string worker_id;
  std::string root_url;
  std::chrono::milliseconds heartbeat_interval{1000};

  Mutex mu;  // guards the fields below and the stop signal
  std::condition_variable cv;
  bool stop_requested = false;
  bool reader_done = false;
  std::unique_ptr<grpc::ClientContext> context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::WorkerMessage, v1::SupervisorMessage>> stream;
  std::unique_ptr<TaskRunner> runner;
  std::shared_ptr<CollectionClient> collections;  // set with the runner when there is a cache

  Mutex write_mu;  // serialises stream writes
  bool writes_done FM_GUARDED_BY(write_mu) = false;

  Mutex shutdown_mu;  // serialises GracefulShutdown
  bool shut_down FM_GUARDED_BY(shutdown_mu) = false;

  bool Send(const v1::WorkerMessage& message) {
    MutexLock lock(write_mu);
    if (writes_done || !stream) return false;
    return stream->Write(message);
  }

  Status Register() {
    HostInfo host = DetectHost(AdvertisesGpus(config), config.cuda_devices);
    v1::RegisterRequest request;
    request.set_token(config.token);
    v1::WorkerInfo* info = request.mutable_info();
    info->set_name(config.name);
    info->set_alias(config.alias.empty() ? config.name : config.alias);
    info->set_worker_type(config.worker_type);
    for (const auto& t : registry.RegisteredTaskTypes()) info->add_task_types(t);
    info->set_cpu_cores(host.cpu_cores);
    info->set_memory_mb(host.memory_mb);
    for (const auto& g : host.gpus) {
      v1::Gpu* gpu = info->add_gpus();
      gpu->set_index(g.index);
      gpu->set_name(g.name);
      gpu->set_memory_mb(g.memory_mb);
    }
    info->set_cost_per_hour(config.cost_per_hour);
    info->set_speed(config.speed);
    info->set_training_speed(config.training_speed);
    for (const auto& t : config.tags) info->add_tags(t);
    info->set_slots(config.slots);
    info->set_pid(static_cast<int>(::getpid()));
    if (config.loaded_models) {
      for (const auto& m : config.loaded_models()) info->add_loaded_models(m);
    }
    if (config.free_sequence_slots) info->set_free_sequence_slots(config.free_sequence_slots());

    auto give_up = Clock::now() + config.register_timeout;
    auto backoff = std::chrono::milliseconds(100);
    std::string last_error;
    for (;;) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      if (!config.token.empty()) ctx.AddMetadata(kWorkerTokenMetadata, config.token);
      v1::RegisterReply reply;
      grpc::Status status = stub->Register(&ctx, request, &reply);
      if (status.ok()) {
        worker_id = reply.worker_id();
        root_url = reply.root_url();
        if (reply.heartbeat_interval_ms() > 0) {
          heartbeat_interval = std::chrono::milliseconds(reply.heartbeat_interval_ms());
        }
        return Status::Ok();
      }
      last_error = status.error_message();
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE &&
          status.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        return FailedPrecondition("supervisor at " + config.supervisor +
                                  " rejected the registration: " + last_error);
      }
      MutexLock lock(mu);
      if (Clock::now() + backoff > give_up) {
        return Unavailable("cannot reach the supervisor at " + config.supervisor + " after " +
                           std::to_string(config.register_timeout.count() / 1000) +
                           " s: " + last_error);
      }
      if (lock.WaitFor(cv, backoff, [this]() FM_REQUIRES(mu) { return stop_requested; })) {
        return Cancelled("stopped before registering");
      }
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
  }

  void HeartbeatLoop() {
    MutexLock lock(mu);
    while (!lock.WaitFor(cv, heartbeat_interval,
                         [this]() FM_REQUIRES(mu) { return reader_done || stop_requested; })) {
      lock.Unlock();
      v1::WorkerMessage message;
      message.set_worker_id(worker_id);
      v1::Heartbeat* hb = message.mutable_heartbeat();
      for (const auto& id : runner->ActiveTaskIds()) hb->add_running_task_ids(id);
      if (config.loaded_models) {
        for (const auto& m : config.loaded_models()) hb->add_loaded_models(m);
      }
      if (config.free_sequence_slots) hb->set_free_sequence_slots(config.free_sequence_slots());
      Send(message);
      lock.Lock();
    }
  }

  // Fails the running attempts and half-closes the stream; the supervisor then ends it.
  void GracefulShutdown(const std::string& reason) {
    MutexLock lock(shutdown_mu);
    if (shut_down) return;
    shut_down = true;
    if (runner) runner->StopAll(reason);
    MutexLock write_lock(write_mu);
    if (stream && !writes_done) stream->WritesDone();
    writes_done = true;
  }
};

bool AdvertisesGpus(const WorkerConfig& config) {
  return config.worker_type == "gpu" && config.gpu_backend;
}

Worker::Worker(WorkerConfig config, executors::ExecutorRegistry registry)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
  impl_->registry = std::move(registry);
  if (impl_->config.alias.empty()) impl_->config.alias = impl_->config.name;
  if (impl_->config.worker_type == "gpu" && !impl_->config.gpu_backend) {
    FM_LOG_WARN("worker {} was started as gpu, but this build has no GPU backend (llama.cpp "
                "without CUDA): it runs on the CPU and advertises no GPUs",
                impl_->config.name);
  }
}

Worker::~Worker() = default;

int Worker::Run() {
  Impl& w = *impl_;
  w.channel = grpc::CreateChannel(w.config.supervisor, grpc::InsecureChannelCredentials());
  w.stub = v1::WorkerSupervisor::NewStub(w.channel);
  Status registered = w.Register();
  if (!registered.ok()) {
    if (registered.code() == StatusCode::kCancelled) return kExitOk;
    FM_LOG_ERROR("worker {}: {}", w.config.name, registered.message());
    return kExitRegisterFailed;
  }
  FM_LOG_INFO("worker {} registered as {} (root {})", w.config.name, w.worker_id, w.root_url);

  {
    MutexLock lock(w.mu);
    if (w.stop_requested) return kExitOk;
    w.context = std::make_unique<grpc::ClientContext>();
    if (!w.config.token.empty()) {
      w.context->AddMetadata(kWorkerTokenMetadata, w.config.token);
    }
    {
      MutexLock write_lock(w.write_mu);
      w.stream = w.stub->Connect(w.context.get());
    }
    std::string root_url = w.root_url, api_token = w.config.api_token, worker_id = w.worker_id;
    auto timeout = w.config.upload_timeout;
    w.runner = std::make_unique<TaskRunner>(
        &w.registry, w.config.slots,
        [&w](const v1::TaskEvent& event) {
          v1::WorkerMessage message;
          message.set_worker_id(w.worker_id);
          *message.mutable_event() = event;
          w.Send(message);
        },
        [root_url, api_token, timeout, worker_id](const Assignment& a, const nlohmann::json& metadata,
                                                  const nlohmann::json& result) {
          return UploadResult(root_url, api_token, timeout, worker_id, a, metadata, result);
        });
    w.runner->SetCredentialFetcher(
        [root_url, api_token, timeout, worker_id](const Assignment& a,
                                                  const std::vector<std::string>& names,
                                                  bool default_endpoint) {
          return FetchCredentials({root_url, api_token, timeout, worker_id}, a.task_id, a.attempt,
                                  names, default_endpoint);
        });
    if (!w.config.collection_cache_dir.empty()) {
      CollectionCacheConfig cache;
      cache.dir = w.config.collection_cache_dir;
      cache.max_disk_bytes = w.config.collection_cache_bytes;
      cache.max_loaded = w.config.collections_loaded;
      w.collections = std::make_shared<CollectionClient>(
          ServerLink{root_url, api_token, timeout, worker_id}, cache);
      w.runner->SetCollectionFetcher(
          [collections = w.collections](const Assignment& a, const std::string& name,
                                        int64_t version) {
            return collections->Fetch(a.task_id, a.attempt, name, version);
          });
    }
    w.runner->SetFileUploader([root_url, api_token, timeout, worker_id](
                                  const Assignment& a,
                                  const std::vector<executors::OutputFile>& files) {
      return UploadFiles({root_url, api_token, timeout, worker_id}, a.task_id, files);
    });
  }

  v1::WorkerMessage hello;
  hello.set_worker_id(w.worker_id);
  hello.mutable_hello();
  bool connected = w.Send(hello);
  std::thread heartbeat;
  if (connected) heartbeat = std::thread([&w] { w.HeartbeatLoop(); });

  v1::SupervisorMessage message;
  while (connected && w.stream->Read(&message)) {
    switch (message.body_case()) {
      case v1::SupervisorMessage::kTask: {
        auto assignment = AssignmentFromProto(message.task());
        if (!assignment.ok()) {
          v1::WorkerMessage reply;
          reply.set_worker_id(w.worker_id);
          v1::TaskEvent* event = reply.mutable_event();
          event->set_task_id(message.task().task_id());
          event->set_attempt(message.task().attempt());
          event->set_type("TASK_FAILED");
          event->set_ts(WallSeconds());
          event->set_error(assignment.status().message());
          event->set_retryable(false);
          event->set_payload_json("{}");
          w.Send(reply);
          break;
        }
        std::string key = assignment->task_id + " attempt " + std::to_string(assignment->attempt);
        if (!w.runner->Submit(std::move(assignment).value())) {
          FM_LOG_INFO("ignoring duplicate or late assignment of {}", key);
        }
        break;
      }
      case v1::SupervisorMessage::kInterrupt:
        w.runner->Interrupt(message.interrupt().task_id(), message.interrupt().attempt());
        break;
      case v1::SupervisorMessage::kStop:
        FM_LOG_INFO("worker {} asked to stop: {}", w.config.name, message.stop().reason());
        {
          MutexLock lock(w.mu);
          w.stop_requested = true;
        }
        w.cv.notify_all();
        w.GracefulShutdown("worker " + w.config.name + " stopped: " + message.stop().reason());
        break;
      default:
        break;
    }
  }

  bool requested;
  {
    MutexLock lock(w.mu);
    w.reader_done = true;
    requested = w.stop_requested;
  }
  w.cv.notify_all();
  if (heartbeat.joinable()) heartbeat.join();
  w.runner->StopAll(requested ? "worker " + w.config.name + " stopped"
                              : "worker " + w.config.name + " lost its supervisor");
  {
    MutexLock write_lock(w.write_mu);
    w.writes_done = true;  // no writes after Finish
  }
  {
    MutexLock lock(w.shutdown_mu);
    w.shut_down = true;
  }
  grpc::Status status = w.stream->Finish();
  if (requested) {
    FM_LOG_INFO("worker {} stopped", w.config.name);
    return kExitOk;
  }
  FM_LOG_ERROR("worker {}: stream to the supervisor lost ({}); exiting", w.config.name,
               status.error_message());
  return kExitStreamLost;
}

void Worker::RequestStop() {
  Impl& w = *impl_;
  {
    MutexLock lock(w.mu);
    if (w.stop_requested) return;
    w.stop_requested = true;
    if (!w.runner) {
      w.cv.notify_all();
      return;  // Run is still registering (it sees the flag) or never started
    }
  }
  w.cv.notify_all();
  w.GracefulShutdown("worker " + w.config.name + " stopped");
  // The supervisor closes the stream when it sees our half-close; if it does not,
  // cancel the call so Run returns.
  MutexLock lock(w.mu);
  if (!lock.WaitFor(w.cv, std::chrono::seconds(3),
                    [&w]() FM_REQUIRES(w.mu) { return w.reader_done; })) {
    w.context->TryCancel();
  }
}

}  // namespace flowmesh::worker
