#include "common/event_loop.h"

#include <future>

#include "common/log.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace flowmesh {

namespace {
// timer_index_ value of a timer taken off timers_ into the running batch.
constexpr auto kFiring = std::chrono::steady_clock::time_point::min();
}  // namespace

EventLoop::EventLoop(std::string name) : name_(std::move(name)) {}

EventLoop::~EventLoop() { Stop(); }

void EventLoop::Start() {
  FM_CHECK(!thread_.joinable());
  thread_ = std::thread([this] { Run(); });
}

void EventLoop::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && !InLoopThread()) thread_.join();
}

void EventLoop::Post(Closure fn) {
  {
    MutexLock lock(mu_);
    queue_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

EventLoop::TimerId EventLoop::PostDelayed(std::chrono::microseconds delay, Closure fn) {
  auto when = std::chrono::steady_clock::now() + delay;
  TimerId id;
  {
    MutexLock lock(mu_);
    id = next_timer_++;
    timers_.emplace(when, std::make_pair(id, std::move(fn)));
    timer_index_[id] = when;
  }
  cv_.notify_one();
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  MutexLock lock(mu_);
  auto it = timer_index_.find(id);
  if (it == timer_index_.end()) return;
  // A due timer already moved into the running batch is marked kFiring: dropping its
  // index entry is enough to keep it from running.
  auto range = timers_.equal_range(it->second);
  for (auto t = range.first; t != range.second; ++t) {
    if (t->second.first == id) {
      timers_.erase(t);
      break;
    }
  }
  timer_index_.erase(it);
}

void EventLoop::SetAfterBatch(Closure fn) { after_batch_ = std::move(fn); }

void EventLoop::RunSync(const Closure& fn) {
  FM_CHECK(!InLoopThread());
  std::promise<void> done;
  Post([&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

size_t EventLoop::queued() const {
  MutexLock lock(mu_);
  return queue_.size();
}

void EventLoop::Run() {
  // Timer closures carry their id (posts carry 0) so that a timer cancelled by an earlier
  // closure of the same batch is skipped.
  std::vector<std::pair<TimerId, Closure>> batch;
  for (;;) {
    batch.clear();
    {
      MutexLock lock(mu_);
      for (;;) {
        auto now = std::chrono::steady_clock::now();
        while (!timers_.empty() && timers_.begin()->first <= now) {
          auto node = timers_.extract(timers_.begin());
          TimerId id = node.mapped().first;
          timer_index_[id] = kFiring;
          batch.emplace_back(id, std::move(node.mapped().second));
        }
        while (!queue_.empty()) {
          batch.emplace_back(0, std::move(queue_.front()));
          queue_.pop_front();
        }
        if (!batch.empty()) break;
        if (stopping_) return;
        if (timers_.empty()) {
          lock.Wait(cv_);
        } else {
          lock.WaitUntil(cv_, timers_.begin()->first);
        }
      }
    }
    for (auto& [id, fn] : batch) {
      if (id != 0) {
        MutexLock lock(mu_);
        if (timer_index_.erase(id) == 0) continue;  // cancelled since it became due
      }
      // A backstop: a closure that throws is a bug, but it must not take the process down
      // with std::terminate; log it and keep serving.
      try {
        fn();
      } catch (const std::exception& e) {
        FM_LOG_ERROR("event loop {}: a handler threw: {}", name_, e.what());
      } catch (...) {
        FM_LOG_ERROR("event loop {}: a handler threw a non-standard exception", name_);
      }
    }
    if (after_batch_) after_batch_();
  }
}

}  // namespace flowmesh
