// The outbox: everything the scheduler says to the outside world leaves through here —
// store writes of task and workflow records (behind, through the group commit), events
// (appended to the store; published to live subscribers once committed), and bus
// messages to nodes (collected while a loop batch runs, appended per stream in one go by
// Flush(), retried while the bus is down). Loop-owned.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "common/clock.h"
#include "scheduler/deadlines.h"
#include "scheduler/event_hub.h"
#include "state/store.h"

namespace flowmesh::scheduler {

class Outbox {
 public:
  Outbox(state::Store* store, std::shared_ptr<bus::Bus> bus, EventHub* hub, Deadlines* deadlines,
         const TimeSource* time)
      : store_(store), bus_(std::move(bus)), hub_(hub), deadlines_(deadlines), time_(time) {}

  // The last event cursor used (recovered from the store at start).
  void set_cursor(int64_t cursor) { next_cursor_ = cursor; }
  int64_t cursor() const { return next_cursor_; }

  void PutTask(const state::TaskRecord& rec);
  void PutWorkflow(const state::WorkflowRecord& rec);

  // An event record with the next cursor; empty strings are rendered as null.
  state::EventRecord MakeEvent(const std::string& type, const std::string& workflow_id,
                               const std::string& task_id, const std::string& worker_id,
                               const std::string& status, const std::string& error,
                               bool retryable, nlohmann::json payload);
  void EmitEvent(state::EventRecord e);
  // An event about a task, carrying its current state and worker.
  void Emit(const std::string& type, const state::TaskRecord& t, const std::string& error = "",
            bool retryable = false, nlohmann::json payload = nullptr);

  // Queues a message for a bus stream; sent by the next Flush().
  void Send(const std::string& stream, const nlohmann::json& message);
  void Flush();

 private:
  state::Store* store_;
  std::shared_ptr<bus::Bus> bus_;
  EventHub* hub_;
  Deadlines* deadlines_;
  const TimeSource* time_;
  int64_t next_cursor_ = 0;
  std::map<std::string, std::vector<std::string>> outgoing_;  // stream -> payloads
  Deadlines::Id flush_retry_ = 0;
};

}  // namespace flowmesh::scheduler
