#include "common/event_loop.h"

#include <future>

#include "common/status.h"

namespace flowmesh {

EventLoop::EventLoop(std::string name) : name_(std::move(name)) {}

EventLoop::~EventLoop() { Stop(); }

void EventLoop::Start() {
  FM_CHECK(!thread_.joinable());
  thread_ = std::thread([this] { Run(); });
}

void EventLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && !InLoopThread()) thread_.join();
}

void EventLoop::Post(Closure fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

EventLoop::TimerId EventLoop::PostDelayed(std::chrono::microseconds delay, Closure fn) {
  auto when = std::chrono::steady_clock::now() + delay;
  TimerId id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    id = next_timer_++;
    timers_.emplace(when, std::make_pair(id, std::move(fn)));
    timer_index_[id] = when;
  }
  cv_.notify_one();
  return id;
}

void EventLoop::CancelTimer(TimerId id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = timer_index_.find(id);
  if (it == timer_index_.end()) return;
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
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void EventLoop::Run() {
  std::vector<Closure> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        auto now = std::chrono::steady_clock::now();
        while (!timers_.empty() && timers_.begin()->first <= now) {
          auto node = timers_.extract(timers_.begin());
          timer_index_.erase(node.mapped().first);
          batch.push_back(std::move(node.mapped().second));
        }
        while (!queue_.empty()) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        if (!batch.empty()) break;
        if (stopping_) return;
        if (timers_.empty()) {
          cv_.wait(lock);
        } else {
          cv_.wait_until(lock, timers_.begin()->first);
        }
      }
    }
    for (auto& fn : batch) fn();
    if (after_batch_) after_batch_();
  }
}

}  // namespace flowmesh
