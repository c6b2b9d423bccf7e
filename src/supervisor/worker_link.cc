// The WorkerSupervisor gRPC service: workers register, hold one stream each, and send
// task events that are relayed to the bus.
#include <grpcpp/grpcpp.h>

#include "common/ids.h"
#include "common/log.h"
#include "supervisor/supervisor_impl.h"
#include "worker/worker.h"

namespace flowmesh::supervisor {

std::string Supervisor::Impl::TokenOf(const grpc::ServerContext* context, const std::string& fallback) {
  const auto& md = context->client_metadata();
  auto it = md.find(worker::kWorkerTokenMetadata);
  return it == md.end() ? fallback : std::string(it->second.data(), it->second.size());
}

grpc::Status Supervisor::Impl::Register(grpc::ServerContext* context, const v1::RegisterRequest* request,
                      v1::RegisterReply* reply) {
  MutexLock lock(mu);
  if (stopping) return {grpc::StatusCode::UNAVAILABLE, "supervisor is stopping"};
  const std::string& name = request->info().name();
  const std::string token = TokenOf(context, request->token());
  auto m = managed.find(name);
  bool managed_with_token = m != managed.end() && !m->second.token.empty();
  if (!config.worker_token.empty() || managed_with_token) {
    // A worker this supervisor started presents its own per-process token; others the
    // node's worker token.
    bool ok = (!config.worker_token.empty() && token == config.worker_token) ||
              (managed_with_token && token == m->second.token);
    if (!ok) return {grpc::StatusCode::UNAUTHENTICATED, "invalid worker token"};
  }
  std::string worker_id = NewId("wkr");
  workers[worker_id].info = request->info();
  workers[worker_id].token = token;
  reply->set_worker_id(worker_id);
  reply->set_node_id(node_id);
  reply->set_root_url(config.root_url);
  reply->set_heartbeat_interval_ms(static_cast<int>(config.heartbeat_interval.count()));
  FM_LOG_INFO("worker {} registered as {} (pid {})", name, worker_id, request->info().pid());
  return grpc::Status::OK;
}

grpc::Status Supervisor::Impl::Connect(grpc::ServerContext* context, Stream* stream) {
  v1::WorkerMessage message;
  if (!stream->Read(&message)) return grpc::Status::OK;
  if (!message.has_hello()) {
    return {grpc::StatusCode::FAILED_PRECONDITION, "the first message must be a Hello"};
  }
  const std::string worker_id = message.worker_id();
  auto connection = std::make_shared<Connection>();
  connection->worker_id = worker_id;
  {
    MutexLock write(connection->write_mu);  // not yet shared: taken for the analysis
    connection->stream = stream;
  }
  {
    MutexLock lock(mu);
    auto it = workers.find(worker_id);
    if (it == workers.end()) {
      return {grpc::StatusCode::UNAUTHENTICATED, "unknown worker id " + worker_id};
    }
    if (!it->second.token.empty() && TokenOf(context, "") != it->second.token) {
      return {grpc::StatusCode::UNAUTHENTICATED, "invalid worker token for " + worker_id};
    }
    if (it->second.connection) {
      return {grpc::StatusCode::ALREADY_EXISTS, "worker " + worker_id + " is already connected"};
    }
    if (stopping) return {grpc::StatusCode::UNAVAILABLE, "supervisor is stopping"};
    it->second.connection = connection;
    outbox.Emit({{"kind", "worker_up"},
                 {"node_id", node_id},
                 {"worker_id", worker_id},
                 {"info", InfoToJson(it->second.info)}});
    auto m = managed.find(it->second.info.name());
    if (m != managed.end() && m->second.pid == static_cast<pid_t>(it->second.info.pid())) {
      m->second.worker_id = worker_id;
      m->second.status = "RUNNING";
      EmitSnapshotLocked();
    }
  }
  FM_LOG_INFO("worker {} connected", worker_id);
  while (stream->Read(&message)) {
    switch (message.body_case()) {
      case v1::WorkerMessage::kEvent:
        HandleEvent(worker_id, message.event());
        break;
      case v1::WorkerMessage::kHeartbeat: {
        // Liveness is the open stream and running tasks are tracked here; the heartbeat
        // carries what the worker holds loaded, relayed in the node heartbeat.
        MutexLock lock(mu);
        auto it = workers.find(worker_id);
        if (it != workers.end()) {
          *it->second.info.mutable_loaded_models() = message.heartbeat().loaded_models();
          it->second.info.set_free_sequence_slots(message.heartbeat().free_sequence_slots());
        }
        break;
      }
      default:
        break;
    }
  }
  connection->Close();
  {
    MutexLock lock(mu);
    auto it = workers.find(worker_id);
    if (it != workers.end() && it->second.connection == connection) {
      DropWorkerLocked(worker_id, context->IsCancelled() ? "stream cancelled" : "stream closed");
    }
  }
  FM_LOG_INFO("worker {} disconnected", worker_id);
  return grpc::Status::OK;
}

void Supervisor::Impl::HandleEvent(const std::string& worker_id, const v1::TaskEvent& event) {
  json payload = json::parse(event.payload_json(), nullptr, false);
  if (payload.is_discarded() || !payload.is_object()) payload = json::object();
  const std::string& type = event.type();
  MutexLock lock(mu);
  if (type == "TASK_SUCCEEDED" || type == "TASK_FAILED" || type == "TASK_CANCELLED") {
    auto it = workers.find(worker_id);
    if (it != workers.end()) it->second.running.erase(Key(event.task_id(), event.attempt()));
  }
  EmitTaskEvent(worker_id, event.task_id(), event.attempt(), type, event.error(),
                event.retryable(), std::move(payload));
}

}  // namespace flowmesh::supervisor
