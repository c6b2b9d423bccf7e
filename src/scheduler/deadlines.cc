#include "scheduler/deadlines.h"

namespace flowmesh::scheduler {

Deadlines::Id Deadlines::After(double delay_s, std::function<void()> fn) {
  double due = time_->MonoSeconds() + (delay_s > 0 ? delay_s : 0);
  Id id = next_id_++;
  by_due_.emplace(due, std::make_pair(id, std::move(fn)));
  by_id_.emplace(id, due);
  return id;
}

void Deadlines::Cancel(Id id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  auto [first, last] = by_due_.equal_range(it->second);
  for (auto d = first; d != last; ++d) {
    if (d->second.first == id) {
      by_due_.erase(d);
      break;
    }
  }
  by_id_.erase(it);
}

int Deadlines::RunDue() {
  int ran = 0;
  double now = time_->MonoSeconds();
  while (!by_due_.empty() && by_due_.begin()->first <= now) {
    auto fn = std::move(by_due_.begin()->second.second);
    by_id_.erase(by_due_.begin()->second.first);
    by_due_.erase(by_due_.begin());
    fn();
    ++ran;
  }
  return ran;
}

std::optional<double> Deadlines::NextDue() const {
  if (by_due_.empty()) return std::nullopt;
  return by_due_.begin()->first;
}

}  // namespace flowmesh::scheduler
