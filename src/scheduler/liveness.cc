#include "scheduler/liveness.h"

#include <set>
#include <vector>

#include "common/json_util.h"
#include "common/log.h"

namespace flowmesh::scheduler {

using nlohmann::json;
using state::TaskState;

void Liveness::Up(const json& m) {
  if (workers_->Up(m) != nullptr) graph_->RequestDispatch();
}

void Liveness::Down(const std::string& id, const std::string& reason) {
  Worker* w = workers_->Find(id);
  if (w == nullptr || !w->alive) return;
  std::vector<std::string> running = workers_->MarkDown(*w);
  counters_->workers_lost++;
  FM_LOG_WARN("worker {} ({}) down: {}", id, w->name, reason);
  for (const auto& task_id : running) {
    Task* t = graph_->Find(task_id);
    if (t == nullptr) continue;
    if (t->rec.status == TaskState::kCancelling) {
      ends_->Cancelled(*t);
    } else if (t->rec.status == TaskState::kDispatched) {
      ends_->Fail(*t, "worker " + id + " lost: " + reason, true);
    }
  }
  workers_->ClearRunning(*w);
}

void Liveness::Seen(const std::string& worker_id) {
  if (Worker* w = workers_->Find(worker_id)) w->last_seen_mono = time_->MonoMicros();
}

void Liveness::CheckSilent() {
  int64_t now = time_->MonoMicros();
  auto grace = static_cast<int64_t>(grace_s_ * 1e6);
  std::vector<std::string> dead;
  for (auto& [id, w] : workers_->all()) {
    if (w.alive && now - w.last_seen_mono > grace) dead.push_back(id);
  }
  for (const auto& id : dead) Down(id, "no heartbeat for " + std::to_string(grace_s_) + " s");
}

void Liveness::OnHeartbeat(const json& m) {
  if (!m.is_object() || !m.contains("workers") || !m["workers"].is_array()) return;
  int64_t now = time_->MonoMicros();
  double wall = time_->WallSeconds();
  for (const auto& hw : m["workers"]) {
    if (!hw.is_object()) continue;
    Worker* found = workers_->Find(JsonOr(hw, "worker_id", ""));
    if (found == nullptr) continue;
    Worker& w = *found;
    w.last_seen_mono = now;
    w.last_seen_wall = wall;
    if (!w.alive) {
      // Declared dead during a gap (Redis restart, a stall) but it is still there: its
      // supervisor only announces workers when they connect, so take it back here.
      FM_LOG_INFO("worker {} ({}) is heartbeating again; back in service", w.id, w.name);
      workers_->Revive(w);
      graph_->RequestDispatch();
    }
    if (auto lm = hw.find("loaded_models"); lm != hw.end() && lm->is_array()) {
      std::vector<std::string> models;
      for (const auto& model : *lm) {
        if (model.is_string()) models.push_back(model.get<std::string>());
      }
      if (models != w.loaded_models) {
        workers_->SetLoadedModels(w, std::move(models));
        graph_->RequestDispatch();
      }
    }
    if (int free_seq = JsonOr(hw, "free_sequence_slots", -1); free_seq != w.free_sequence_slots) {
      workers_->SetFreeSequenceSlots(w, free_seq);
      graph_->RequestDispatch();
    }
    if (hw.contains("running") && hw["running"].is_array()) Reconcile(w, hw["running"], wall);
  }
}

// A dispatch or a final event lost on the bus (Redis killed before it persisted them)
// shows as an attempt we think runs on a worker whose heartbeats do not list it.
void Liveness::Reconcile(Worker& w, const json& running, double wall) {
  std::set<std::string> listed;
  for (const auto& r : running) {
    if (r.is_object() && r.contains("task_id") && r["task_id"].is_string() && r.contains("attempt") &&
        r["attempt"].is_number_integer()) {
      listed.insert(r["task_id"].get<std::string>() + "#" + std::to_string(r["attempt"].get<int>()));
    }
  }
  std::vector<std::string> ids(w.running.begin(), w.running.end());
  for (const auto& id : ids) {
    Task* found = graph_->Find(id);
    if (found == nullptr) continue;
    Task& t = *found;
    bool is_listed = listed.count(id + "#" + std::to_string(t.rec.attempts)) > 0;
    if (t.rec.status == TaskState::kCancelling) {
      // The interrupt or the worker's answer may have been lost: ask again while the
      // attempt runs, and settle the cancellation once the worker no longer has it.
      if (is_listed) {
        ends_->SendInterrupt(t);
      } else if (wall - t.rec.dispatched_ts >= grace_s_) {
        ends_->Cancelled(t);
      }
      continue;
    }
    if (t.rec.status != TaskState::kDispatched) continue;
    if (is_listed) {
      t.missed_heartbeats = 0;
      continue;
    }
    if (wall - t.rec.dispatched_ts < grace_s_) continue;
    if (++t.missed_heartbeats < kMissedHeartbeatsToReclaim) continue;
    FM_LOG_WARN("task {} attempt {} is unknown to worker {}; dispatching it again", id,
                t.rec.attempts, w.id);
    ends_->Fail(t,
                "worker " + w.id + " does not know attempt " + std::to_string(t.rec.attempts) +
                    " (a dispatch or its outcome was lost on the bus)",
                true);
  }
}

}  // namespace flowmesh::scheduler
