#include "scheduler/outbox.h"

#include "common/log.h"

namespace flowmesh::scheduler {

using nlohmann::json;

namespace {
constexpr double kFlushRetrySeconds = 0.2;

json NullIfEmpty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
}  // namespace

void Outbox::PutTask(const state::TaskRecord& rec) {
  store_->Write([rec](state::WriteTxn& txn) { return txn.PutTask(rec); });
}

void Outbox::PutWorkflow(const state::WorkflowRecord& rec) {
  store_->Write([rec](state::WriteTxn& txn) { return txn.PutWorkflow(rec); });
}

state::EventRecord Outbox::MakeEvent(const std::string& type, const std::string& workflow_id,
                                     const std::string& task_id, const std::string& worker_id,
                                     const std::string& status, const std::string& error,
                                     bool retryable, json payload) {
  state::EventRecord e;
  e.cursor = ++next_cursor_;
  e.workflow_id = workflow_id;
  e.task_id = task_id;
  e.ts = time_->WallSeconds();
  e.type = type;
  json j = {{"type", type},
            {"ts", e.ts},
            {"workflow_id", workflow_id},
            {"task_id", NullIfEmpty(task_id)},
            {"worker_id", NullIfEmpty(worker_id)},
            {"status", NullIfEmpty(status)},
            {"error", NullIfEmpty(error)},
            {"retryable", retryable},
            {"payload", payload.is_null() ? json::object() : std::move(payload)}};
  e.json = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return e;
}

void Outbox::EmitEvent(state::EventRecord e) {
  store_->Write([e](state::WriteTxn& txn) { return txn.AppendEvent(e); },
                [hub = hub_, e](const Status& s) {
                  if (s.ok()) hub->Publish(e);
                });
}

void Outbox::Emit(const std::string& type, const state::TaskRecord& t, const std::string& error,
                  bool retryable, json payload) {
  EmitEvent(MakeEvent(type, t.workflow_id, t.task_id, t.assigned_worker,
                      std::string(state::TaskStateName(t.status)), error, retryable,
                      std::move(payload)));
}

void Outbox::Send(const std::string& stream, const json& message) {
  outgoing_[stream].push_back(message.dump(-1, ' ', false, json::error_handler_t::replace));
}

void Outbox::Flush() {
  if (outgoing_.empty() || flush_retry_ != 0) return;
  for (auto it = outgoing_.begin(); it != outgoing_.end();) {
    Status s = bus_->AppendBatch(it->first, it->second);
    if (!s.ok()) {
      FM_LOG_WARN("bus append to {} failed ({}); retrying", it->first, s.ToString());
      flush_retry_ = deadlines_->After(kFlushRetrySeconds, [this] {
        flush_retry_ = 0;
        Flush();
      });
      return;
    }
    it = outgoing_.erase(it);
  }
}

}  // namespace flowmesh::scheduler
