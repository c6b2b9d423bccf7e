// A single-threaded event loop: other threads Post() closures onto it; timers run
// closures after a delay. The component that owns a loop touches its state only from
// closures running on it, so that state needs no locks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"

namespace flowmesh {

class EventLoop {
 public:
  using Closure = std::function<void()>;
  using TimerId = uint64_t;

  explicit EventLoop(std::string name);
  ~EventLoop();  // Stops and joins.
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  void Start();
  // Runs queued closures already posted, then stops the thread.
  void Stop();

  void Post(Closure fn);
  TimerId PostDelayed(std::chrono::microseconds delay, Closure fn);
  void CancelTimer(TimerId id);
  // Runs once after every batch of closures drained from the queue (e.g. to flush
  // outgoing messages collected while handling them).
  void SetAfterBatch(Closure fn);
  bool InLoopThread() const { return std::this_thread::get_id() == thread_.get_id(); }
  // Posts `fn` and blocks until it ran. Must not be called from the loop thread.
  void RunSync(const Closure& fn);
  size_t queued() const;

 private:
  void Run();

  std::string name_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::deque<Closure> queue_ FM_GUARDED_BY(mu_);
  std::multimap<std::chrono::steady_clock::time_point, std::pair<TimerId, Closure>> timers_
      FM_GUARDED_BY(mu_);
  std::map<TimerId, std::chrono::steady_clock::time_point> timer_index_ FM_GUARDED_BY(mu_);
  TimerId next_timer_ FM_GUARDED_BY(mu_) = 1;
  bool stopping_ FM_GUARDED_BY(mu_) = false;
  Closure after_batch_;
  std::thread thread_;
};

}  // namespace flowmesh
