// StreamConsumer: the ReadGroup -> handler -> Ack loop on its own thread.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "bus/bus.h"
#include "common/log.h"
#include "common/thread_annotations.h"

namespace flowmesh::bus {
namespace {
constexpr std::chrono::milliseconds kMinBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};
// Short enough that Stop() is answered promptly while the stream is idle.
constexpr std::chrono::milliseconds kReadBlock{500};
}  // namespace

struct StreamConsumer::Impl {
  std::shared_ptr<Bus> bus;
  std::string stream;
  std::string group;
  std::string consumer;
  Handler handler;
  DeferredHandler deferred;
  int batch;
  int max_in_flight = 64;
  // Completion state of deferred batches. Shared with the acknowledge callbacks, which
  // may run after this consumer is gone.
  struct Acks {
    Mutex mu;
    std::condition_variable cv;
    std::vector<std::string> ready FM_GUARDED_BY(mu);  // ids whose batches are durable
    int in_flight FM_GUARDED_BY(mu) = 0;               // batches not yet completed
  };
  std::shared_ptr<Acks> acks = std::make_shared<Acks>();

  Mutex mu;
  std::condition_variable cv;
  bool stopping FM_GUARDED_BY(mu) = false;
  std::thread thread;     // started/joined by the owner's thread only

  // Waits `d` or until Stop(); returns false when stopping.
  bool Sleep(std::chrono::milliseconds d) {
    MutexLock lock(mu);
    return !lock.WaitFor(cv, d, [this]() FM_REQUIRES(mu) { return stopping; });
  }

  bool Stopping() {
    MutexLock lock(mu);
    return stopping;
  }

  // Waits out one failure: returns false when stopping; doubles the backoff.
  bool Backoff(std::chrono::milliseconds* backoff) {
    bool go_on = Sleep(*backoff);
    *backoff = std::min(*backoff * 2, kMaxBackoff);
    return go_on;
  }

  // Acknowledges the ids of completed deferred batches; false when stopping.
  template <typename Report>
  bool AckCompleted(std::chrono::milliseconds* backoff, Report& report) {
    std::vector<std::string> ids;
    {
      MutexLock lock(acks->mu);
      ids.swap(acks->ready);
    }
    if (ids.empty()) return true;
    while (true) {
      Status acked = bus->Ack(stream, group, ids);
      if (acked.ok()) return true;
      report("acknowledging", acked);
      if (!Backoff(backoff)) return false;
    }
  }

  void Run() {
    std::chrono::milliseconds backoff = kMinBackoff;
    bool failing = false;  // logs one warning per outage
    auto report = [&](const char* what, const Status& s) {
      if (!failing) {
        FM_LOG_WARN("bus: {} on {} (group {}) failed, retrying: {}", what, stream, group,
                    s.ToString());
      }
      failing = true;
    };
    auto recovered = [&] {
      if (failing) FM_LOG_INFO("bus: consumer {} on {} recovered", consumer, stream);
      failing = false;
      backoff = kMinBackoff;
    };

    // Entries a previous consumer loop with this name was handed but did not
    // acknowledge come first.
    bus->RewindPending(stream, group, consumer);
    while (!Stopping()) {
      Status ensured = bus->EnsureGroup(stream, group);
      if (ensured.ok()) break;
      report("creating the consumer group", ensured);
      if (!Backoff(&backoff)) return;
    }
    while (!Stopping()) {
      if (deferred && !AckCompleted(&backoff, report)) return;
      auto read = bus->ReadGroup(stream, group, consumer, batch, kReadBlock);
      if (!read.ok()) {
        report("reading", read.status());
        if (!Backoff(&backoff)) return;
        continue;
      }
      recovered();
      const std::vector<Message>& messages = *read;
      if (messages.empty()) continue;
      if (deferred) {
        {
          MutexLock lock(acks->mu);
          // Wakes every 100 ms to notice Stop().
          while (acks->in_flight >= max_in_flight) {
            lock.WaitFor(acks->cv, std::chrono::milliseconds(100));
            if (Stopping()) return;
          }
          ++acks->in_flight;
        }
        std::vector<std::string> ids;
        ids.reserve(messages.size());
        for (const auto& m : messages) ids.push_back(m.id);
        try {
          deferred(messages, [acks = acks, ids = std::move(ids)] {
            {
              MutexLock lock(acks->mu);
              acks->ready.insert(acks->ready.end(), ids.begin(), ids.end());
              --acks->in_flight;
            }
            acks->cv.notify_all();
          });
        } catch (const std::exception& e) {
          FM_LOG_ERROR("bus: handler for {} failed, batch will be redelivered: {}", stream, e.what());
          {
            MutexLock lock(acks->mu);
            --acks->in_flight;
          }
          bus->RewindPending(stream, group, consumer);
          if (!Backoff(&backoff)) return;
        }
        continue;
      }
      try {
        handler(messages);
      } catch (const std::exception& e) {
        // A programmer error in the handler; the batch stays pending and comes back.
        FM_LOG_ERROR("bus: handler for {} failed, batch will be redelivered: {}", stream, e.what());
        bus->RewindPending(stream, group, consumer);
        if (!Backoff(&backoff)) return;
        continue;
      }
      std::vector<std::string> ids;
      ids.reserve(messages.size());
      for (const auto& m : messages) ids.push_back(m.id);
      while (true) {
        Status acked = bus->Ack(stream, group, ids);
        if (acked.ok()) break;
        report("acknowledging", acked);
        if (!Backoff(&backoff)) return;  // still pending: a later consumer gets them again
      }
    }
  }
};

StreamConsumer::StreamConsumer(std::shared_ptr<Bus> bus, std::string stream, std::string group,
                               std::string consumer, Handler handler, int batch)
    : impl_(std::make_unique<Impl>()) {
  FM_CHECK(bus != nullptr);
  FM_CHECK(batch > 0);
  impl_->bus = std::move(bus);
  impl_->stream = std::move(stream);
  impl_->group = std::move(group);
  impl_->consumer = std::move(consumer);
  impl_->handler = std::move(handler);
  impl_->batch = batch;
}

StreamConsumer::StreamConsumer(std::shared_ptr<Bus> bus, std::string stream, std::string group,
                               std::string consumer, DeferredHandler handler, int batch,
                               int max_in_flight)
    : StreamConsumer(std::move(bus), std::move(stream), std::move(group), std::move(consumer),
                     Handler(nullptr), batch) {
  FM_CHECK(max_in_flight > 0);
  impl_->deferred = std::move(handler);
  impl_->max_in_flight = max_in_flight;
}

StreamConsumer::~StreamConsumer() { Stop(); }

void StreamConsumer::Start() {
  if (impl_->thread.joinable()) return;
  {
    MutexLock lock(impl_->mu);
    impl_->stopping = false;
  }
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

void StreamConsumer::Stop() {
  {
    MutexLock lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
  if (impl_->deferred) {
    // Batches completed since the last read: acknowledge them once, best effort (whatever
    // is left is redelivered to the next consumer, and handlers are idempotent).
    std::vector<std::string> ids;
    {
      MutexLock lock(impl_->acks->mu);
      ids.swap(impl_->acks->ready);
    }
    if (!ids.empty()) (void)impl_->bus->Ack(impl_->stream, impl_->group, ids);
  }
}

}  // namespace flowmesh::bus
