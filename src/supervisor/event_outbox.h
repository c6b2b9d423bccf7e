// Batches supervisor -> server messages onto the fm:events stream. Emit() only queues;
// one flusher thread appends everything queued so far with a single AppendBatch, keeping
// the order of Emit calls and retrying with backoff while the bus is unavailable.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "bus/bus.h"
#include "common/thread_annotations.h"

namespace flowmesh::supervisor {

class EventOutbox {
 public:
  explicit EventOutbox(std::shared_ptr<bus::Bus> bus);
  ~EventOutbox();  // Stop()
  EventOutbox(const EventOutbox&) = delete;
  EventOutbox& operator=(const EventOutbox&) = delete;

  void Start();
  void Emit(const nlohmann::json& message);  // thread-safe
  // Flushes what is queued (gives up after `flush_timeout` if the bus stays down) and joins.
  void Stop(std::chrono::milliseconds flush_timeout = std::chrono::milliseconds(3000));

 private:
  void Loop();

  std::shared_ptr<bus::Bus> bus_;
  Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_ FM_GUARDED_BY(mu_);
  bool stopping_ FM_GUARDED_BY(mu_) = false;
  std::chrono::steady_clock::time_point give_up_ FM_GUARDED_BY(mu_);  // set by Stop
  std::thread thread_;
};

}  // namespace flowmesh::supervisor
