// What a running task's worker reports for the fabric only: the keys of its TASK_UPDATE
// payloads that start with "_" (a serve endpoint's per-task key, say). They are taken out
// of the payload before it is stored or sent as an event, and kept here, in memory only,
// until the attempt ends. Written on the scheduler loop, read from API threads.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>

#include "common/thread_annotations.h"

namespace flowmesh::scheduler {

class InternalUpdates {
 public:
  // Moves the "_" keys out of `payload` and keeps them as the task's latest.
  void Keep(const std::string& task_id, nlohmann::json* payload);
  void Forget(const std::string& task_id);
  // The task's latest "_" keys; null when there are none.
  nlohmann::json Get(const std::string& task_id) const;

 private:
  mutable Mutex mu_;
  std::map<std::string, nlohmann::json> by_task_ FM_GUARDED_BY(mu_);
};

}  // namespace flowmesh::scheduler
