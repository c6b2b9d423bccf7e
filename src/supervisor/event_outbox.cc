#include "supervisor/event_outbox.h"

#include <vector>

#include "common/log.h"
#include "common/thread_annotations.h"

namespace flowmesh::supervisor {

EventOutbox::EventOutbox(std::shared_ptr<bus::Bus> bus) : bus_(std::move(bus)) {}

EventOutbox::~EventOutbox() { Stop(); }

void EventOutbox::Start() { thread_ = std::thread([this] { Loop(); }); }

void EventOutbox::Emit(const nlohmann::json& message) {
  {
    MutexLock lock(mu_);
    queue_.push_back(message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  cv_.notify_one();
}

void EventOutbox::Stop(std::chrono::milliseconds flush_timeout) {
  {
    MutexLock lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    give_up_ = std::chrono::steady_clock::now() + flush_timeout;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EventOutbox::Loop() {
  auto backoff = std::chrono::milliseconds(100);
  MutexLock lock(mu_);
  for (;;) {
    lock.Wait(cv_, [this]() FM_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping and drained
    std::vector<std::string> batch(queue_.begin(), queue_.end());
    lock.Unlock();
    Status status = bus_->AppendBatch(bus::kEventsStream, batch);
    lock.Lock();
    if (status.ok()) {
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(batch.size()));
      backoff = std::chrono::milliseconds(100);
      continue;
    }
    FM_LOG_WARN("cannot append {} events to {}: {}", batch.size(), bus::kEventsStream,
                status.ToString());
    if (stopping_ && std::chrono::steady_clock::now() >= give_up_) {
      FM_LOG_ERROR("dropping {} events: bus unavailable at shutdown", queue_.size());
      return;
    }
    lock.WaitFor(cv_, backoff, []() { return false; });  // back off; new events can wait
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
}

}  // namespace flowmesh::supervisor
