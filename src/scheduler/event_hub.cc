#include "scheduler/event_hub.h"
#include "common/thread_annotations.h"

namespace flowmesh::scheduler {

uint64_t EventHub::Subscribe(const std::string& key, Callback callback) {
  MutexLock lock(mu_);
  uint64_t id = next_id_++;
  entries_[id] = Entry{key, std::move(callback)};
  by_key_.emplace(key, id);
  return id;
}

void EventHub::Unsubscribe(uint64_t id) {
  MutexLock lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  auto range = by_key_.equal_range(it->second.key);
  for (auto k = range.first; k != range.second; ++k) {
    if (k->second == id) {
      by_key_.erase(k);
      break;
    }
  }
  entries_.erase(it);
}

void EventHub::Publish(const state::EventRecord& event) {
  std::vector<Callback> targets;
  {
    MutexLock lock(mu_);
    for (const std::string* key : {&event.workflow_id, &event.task_id}) {
      if (key->empty()) continue;
      auto range = by_key_.equal_range(*key);
      for (auto k = range.first; k != range.second; ++k) {
        targets.push_back(entries_[k->second].callback);
      }
    }
  }
  // Callbacks only queue frames on their streams; call them outside the lock.
  for (auto& cb : targets) cb(event);
}

size_t EventHub::subscribers() const {
  MutexLock lock(mu_);
  return entries_.size();
}

}  // namespace flowmesh::scheduler
