#include "scheduler/internal_updates.h"

namespace flowmesh::scheduler {

using nlohmann::json;

void InternalUpdates::Keep(const std::string& task_id, json* payload) {
  json internal = json::object();
  for (auto it = payload->begin(); it != payload->end();) {
    if (!it.key().empty() && it.key()[0] == '_') {
      internal[it.key()] = std::move(it.value());
      it = payload->erase(it);
    } else {
      ++it;
    }
  }
  if (internal.empty()) return;
  MutexLock lock(mu_);
  by_task_[task_id] = std::move(internal);
}

void InternalUpdates::Forget(const std::string& task_id) {
  MutexLock lock(mu_);
  by_task_.erase(task_id);
}

json InternalUpdates::Get(const std::string& task_id) const {
  MutexLock lock(mu_);
  auto it = by_task_.find(task_id);
  return it == by_task_.end() ? json() : it->second;
}

}  // namespace flowmesh::scheduler
