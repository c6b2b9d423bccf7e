// InProcessBus: the Bus contract kept in memory, for single-process runs and tests.
//
// Streams are vectors of entries with Redis-style ids ("<ms>-<seq>", strictly increasing
// per stream). A consumer group keeps the index of the next undelivered entry and a
// pending list (entry index -> consumer); per consumer it keeps a read session that hands
// out each pending entry once (see Bus::RewindPending). One mutex guards everything; a
// condition variable wakes blocked ReadGroup calls when entries are appended.
// Subscribers get their own thread and queue so that Publish never runs handlers on the
// publisher's thread.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "bus/bus.h"
#include "common/log.h"
#include "common/thread_annotations.h"

namespace flowmesh::bus {
namespace {

struct EntryId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  auto operator<=>(const EntryId&) const = default;
};

bool ParseEntryId(const std::string& text, EntryId* out) {
  auto dash = text.find('-');
  if (dash == std::string::npos) return false;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto r1 = std::from_chars(begin, begin + dash, out->ms);
  if (r1.ec != std::errc() || r1.ptr != begin + dash) return false;
  auto r2 = std::from_chars(begin + dash + 1, end, out->seq);
  return r2.ec == std::errc() && r2.ptr == end;
}

// Delivers published messages to one subscriber's handler on its own thread.
// The thread holds a reference to the object, so Stop() may be called from the handler.
class InProcessSubscription : public std::enable_shared_from_this<InProcessSubscription> {
 public:
  InProcessSubscription(std::vector<std::string> channels, Subscriber::Handler handler)
      : channels_(channels.begin(), channels.end()), handler_(std::move(handler)) {}
  ~InProcessSubscription() { Stop(); }

  void Start() {
    thread_ = std::thread([self = shared_from_this()] { self->Run(); });
  }

  bool Wants(const std::string& channel) const { return channels_.count(channel) > 0; }

  void Push(const std::string& channel, const std::string& payload) {
    MutexLock lock(mu_);
    if (stopping_) return;
    queue_.emplace_back(channel, payload);
    cv_.notify_one();
  }

  void Stop() {
    {
      MutexLock lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // Stop() from inside the handler: the thread ends after it returns.
    } else {
      thread_.join();
    }
  }

 private:
  void Run() {
    MutexLock lock(mu_);
    while (true) {
      lock.Wait(cv_, [this]() FM_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      auto [channel, payload] = std::move(queue_.front());
      queue_.pop_front();
      lock.Unlock();
      try {
        handler_(channel, payload);
      } catch (const std::exception& e) {
        FM_LOG_ERROR("bus: subscriber handler failed on channel {}: {}", channel, e.what());
      }
      lock.Lock();
    }
  }

  const std::set<std::string> channels_;
  const Subscriber::Handler handler_;
  Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, std::string>> queue_ FM_GUARDED_BY(mu_);
  bool stopping_ FM_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class InProcessBus : public Bus {
 public:
  Result<std::string> Append(const std::string& stream, const std::string& payload) override {
    MutexLock lock(mu_);
    std::string id = AppendLocked(streams_[stream], payload);
    cv_.notify_all();
    return id;
  }

  Status AppendBatch(const std::string& stream,
                     const std::vector<std::string>& payloads) override {
    MutexLock lock(mu_);
    Stream& s = streams_[stream];
    for (const auto& payload : payloads) AppendLocked(s, payload);
    cv_.notify_all();
    return Status::Ok();
  }

  Status EnsureGroup(const std::string& stream, const std::string& group) override {
    MutexLock lock(mu_);
    streams_[stream].groups[group];
    return Status::Ok();
  }

  Result<std::vector<Message>> ReadGroup(const std::string& stream, const std::string& group,
                                         const std::string& consumer, int max,
                                         std::chrono::milliseconds block) override {
    if (max <= 0) return InvalidArgument("ReadGroup: max must be positive");
    auto deadline = std::chrono::steady_clock::now() + block;
    MutexLock lock(mu_);
    // Like the Redis implementation, reading recreates a missing group (from the start).
    Stream& s = streams_[stream];
    Group& g = s.groups[group];
    Session& session = g.sessions[consumer];
    std::vector<Message> out;
    if (!session.drained) {
      for (auto it = g.pending.lower_bound(session.next_pending);
           it != g.pending.end() && static_cast<int>(out.size()) < max; ++it) {
        if (it->second != consumer) continue;
        out.push_back(s.entries[it->first]);
        session.next_pending = it->first + 1;
      }
      if (!out.empty()) return out;
      session.drained = true;
    }
    if (block.count() > 0) {
      lock.WaitUntil(cv_, deadline,
                     [&]() FM_REQUIRES(mu_) { return g.next_undelivered < s.entries.size(); });
    }
    while (g.next_undelivered < s.entries.size() && static_cast<int>(out.size()) < max) {
      size_t index = g.next_undelivered++;
      g.pending[index] = consumer;
      out.push_back(s.entries[index]);
    }
    return out;
  }

  Status Ack(const std::string& stream, const std::string& group,
             const std::vector<std::string>& ids) override {
    std::vector<EntryId> parsed(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!ParseEntryId(ids[i], &parsed[i])) {
        return InvalidArgument(fmt::format("Ack: invalid stream entry id '{}'", ids[i]));
      }
    }
    MutexLock lock(mu_);
    auto sit = streams_.find(stream);
    if (sit == streams_.end()) return Status::Ok();
    auto git = sit->second.groups.find(group);
    if (git == sit->second.groups.end()) return Status::Ok();
    const auto& entries = sit->second.entry_ids;
    for (const EntryId& id : parsed) {
      auto it = std::lower_bound(entries.begin(), entries.end(), id);
      if (it != entries.end() && *it == id) git->second.pending.erase(it - entries.begin());
    }
    return Status::Ok();
  }

  Status Publish(const std::string& channel, const std::string& payload) override {
    MutexLock lock(mu_);
    for (const auto& sub : subscriptions_) {
      if (sub->Wants(channel)) sub->Push(channel, payload);
    }
    return Status::Ok();
  }

  void RewindPending(const std::string& stream, const std::string& group,
                     const std::string& consumer) override {
    MutexLock lock(mu_);
    auto sit = streams_.find(stream);
    if (sit == streams_.end()) return;
    auto git = sit->second.groups.find(group);
    if (git == sit->second.groups.end()) return;
    git->second.sessions.erase(consumer);
  }

  void AddSubscription(std::shared_ptr<InProcessSubscription> sub) {
    MutexLock lock(mu_);
    subscriptions_.push_back(std::move(sub));
  }

  void RemoveSubscription(const InProcessSubscription* sub) {
    MutexLock lock(mu_);
    std::erase_if(subscriptions_, [&](const auto& s) { return s.get() == sub; });
  }

 private:
  // What one consumer has been handed in this session.
  struct Session {
    bool drained = false;     // pending entries all handed out; only new ones from now
    size_t next_pending = 0;  // pending entries below this index were handed out already
  };
  struct Group {
    size_t next_undelivered = 0;             // index of the first never-delivered entry
    std::map<size_t, std::string> pending;   // entry index -> consumer, until acknowledged
    std::map<std::string, Session> sessions;
  };
  struct Stream {
    std::vector<Message> entries;
    std::vector<EntryId> entry_ids;  // parallel to entries, sorted
    std::map<std::string, Group> groups;
  };

  static std::string AppendLocked(Stream& s, const std::string& payload) {
    using namespace std::chrono;
    EntryId id{static_cast<uint64_t>(
                   duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()),
               0};
    if (!s.entry_ids.empty() && id <= s.entry_ids.back()) {
      id = {s.entry_ids.back().ms, s.entry_ids.back().seq + 1};
    }
    s.entry_ids.push_back(id);
    s.entries.push_back(Message{fmt::format("{}-{}", id.ms, id.seq), payload});
    return s.entries.back().id;
  }

  Mutex mu_;
  std::condition_variable cv_;                  // signalled on every append
  std::map<std::string, Stream> streams_ FM_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<InProcessSubscription>> subscriptions_ FM_GUARDED_BY(mu_);
};

// Subscriber handle: unregisters from the bus (if it still exists) and stops the thread.
class InProcessSubscriber : public Subscriber {
 public:
  InProcessSubscriber(std::weak_ptr<InProcessBus> bus, std::shared_ptr<InProcessSubscription> sub)
      : bus_(std::move(bus)), sub_(std::move(sub)) {}
  ~InProcessSubscriber() override { Stop(); }

  void Stop() override {
    if (auto bus = bus_.lock()) bus->RemoveSubscription(sub_.get());
    sub_->Stop();
  }

 private:
  std::weak_ptr<InProcessBus> bus_;
  std::shared_ptr<InProcessSubscription> sub_;
};

}  // namespace

std::shared_ptr<Bus> MakeInProcessBus() { return std::make_shared<InProcessBus>(); }

std::unique_ptr<Subscriber> SubscribeInProcess(const std::shared_ptr<Bus>& bus,
                                               std::vector<std::string> channels,
                                               Subscriber::Handler handler) {
  auto in_process = std::dynamic_pointer_cast<InProcessBus>(bus);
  FM_CHECK(in_process != nullptr);  // SubscribeInProcess needs a bus from MakeInProcessBus
  auto sub = std::make_shared<InProcessSubscription>(std::move(channels), std::move(handler));
  sub->Start();
  in_process->AddSubscription(sub);
  return std::make_unique<InProcessSubscriber>(in_process, std::move(sub));
}

}  // namespace flowmesh::bus
