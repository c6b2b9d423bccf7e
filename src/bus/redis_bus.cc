// RedisBus and the Redis subscriber, on the synchronous hiredis API.
//
// Connections: one command connection (Append, AppendBatch, EnsureGroup, Ack, Publish)
// guarded by a mutex, and one connection per (stream, group, consumer) for ReadGroup so
// that a blocking XREADGROUP never holds the command mutex. Every connection is dropped
// on an I/O error or timeout (a late reply would desynchronise it) and re-established by
// the next call. Each connection loss bumps an epoch; a consumer that sees a new epoch
// re-reads its pending entries, because an XREADGROUP whose reply was lost has still
// moved entries into its pending list.
#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "bus/bus.h"
#include "common/log.h"
#include "common/thread_annotations.h"

namespace flowmesh::bus {
namespace {

using std::chrono::milliseconds;

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

timeval ToTimeval(milliseconds d) {
  timeval tv{};
  tv.tv_sec = d.count() / 1000;
  tv.tv_usec = (d.count() % 1000) * 1000;
  return tv;
}

std::string Endpoint(const RedisConfig& config) {
  return fmt::format("{}:{}", config.host, config.port);
}

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string ReplyText(const redisReply* r) { return std::string(r->str, r->len); }

// Maps a Redis error reply to a Status.
Status ErrorReplyStatus(const RedisConfig& config, std::string_view command, const redisReply* r) {
  std::string text = ReplyText(r);
  std::string message = fmt::format("redis at {}: {} failed: {}", Endpoint(config), command, text);
  if (StartsWith(text, "NOAUTH") || StartsWith(text, "WRONGPASS") ||
      StartsWith(text, "ERR invalid password") || StartsWith(text, "ERR AUTH")) {
    return Status(StatusCode::kUnauthenticated, message);
  }
  if (StartsWith(text, "LOADING") || StartsWith(text, "BUSY ") || StartsWith(text, "MASTERDOWN") ||
      StartsWith(text, "TRYAGAIN")) {
    return Unavailable(message);
  }
  if (StartsWith(text, "ERR Invalid stream ID")) return InvalidArgument(message);
  return Internal(message);
}

// Connects, authenticates and sets the socket timeout. Returns Unavailable (naming the
// endpoint) when the server cannot be reached.
Result<Context> Connect(const RedisConfig& config, milliseconds timeout) {
  Context ctx(redisConnectWithTimeout(config.host.c_str(), config.port,
                                      ToTimeval(config.connect_timeout)));
  if (!ctx) {
    return Unavailable(fmt::format("redis at {} unavailable: out of memory", Endpoint(config)));
  }
  if (ctx->err) {
    return Unavailable(fmt::format("redis at {} unavailable: {}", Endpoint(config), ctx->errstr));
  }
  redisEnableKeepAlive(ctx.get());
  if (redisSetTimeout(ctx.get(), ToTimeval(timeout)) != REDIS_OK) {
    return Unavailable(fmt::format("redis at {} unavailable: {}", Endpoint(config), ctx->errstr));
  }
  if (!config.password.empty()) {
    const char* argv[] = {"AUTH", config.password.c_str()};
    size_t lens[] = {4, config.password.size()};
    Reply r(static_cast<redisReply*>(redisCommandArgv(ctx.get(), 2, argv, lens)));
    if (!r) {
      return Unavailable(fmt::format("redis at {} unavailable: {}", Endpoint(config), ctx->errstr));
    }
    if (r->type == REDIS_REPLY_ERROR) {
      Status s = ErrorReplyStatus(config, "AUTH", r.get());
      // Any refused AUTH is an authentication problem, whatever the wording.
      if (s.code() == StatusCode::kUnavailable) return s;
      return Status(StatusCode::kUnauthenticated, s.message());
    }
  }
  return ctx;
}

// One synchronous connection. Not thread-safe: its owner serialises calls. A failed or
// timed-out exchange drops the connection; `on_lost` runs each time a live one is lost.
class Connection {
 public:
  Connection(const RedisConfig& config, std::function<void()> on_lost)
      : config_(config), on_lost_(std::move(on_lost)) {}

  bool connected() const { return ctx_ != nullptr; }

  // `timeout` is the socket timeout for the exchange (read and write).
  Result<Reply> Run(const std::vector<std::string>& argv, milliseconds timeout) {
    FM_ASSIGN_OR_RETURN(auto replies, RunPipeline({argv}, timeout));
    return std::move(replies.front());
  }

  // Sends all commands, then reads all replies (error replies included).
  Result<std::vector<Reply>> RunPipeline(const std::vector<std::vector<std::string>>& commands,
                                         milliseconds timeout) {
    FM_RETURN_IF_ERROR(EnsureConnected(timeout));
    if (timeout != timeout_) {
      if (redisSetTimeout(ctx_.get(), ToTimeval(timeout)) != REDIS_OK) return Lost();
      timeout_ = timeout;
    }
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const auto& command : commands) {
      args.clear();
      lens.clear();
      for (const auto& a : command) {
        args.push_back(a.data());
        lens.push_back(a.size());
      }
      if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(args.size()), args.data(),
                                 lens.data()) != REDIS_OK) {
        return Lost();
      }
    }
    std::vector<Reply> replies;
    replies.reserve(commands.size());
    for (size_t i = 0; i < commands.size(); ++i) {
      void* raw = nullptr;
      if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) return Lost();
      replies.emplace_back(static_cast<redisReply*>(raw));
    }
    return replies;
  }

 private:
  Status EnsureConnected(milliseconds timeout) {
    if (ctx_) return Status::Ok();
    auto ctx = Connect(config_, timeout);
    if (!ctx.ok()) return ctx.status();
    ctx_ = std::move(ctx).value();
    timeout_ = timeout;
    return Status::Ok();
  }

  Status Lost() {
    std::string why = ctx_->errstr[0] ? ctx_->errstr : "connection lost";
    if (ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) why = "timed out";
    ctx_.reset();
    if (on_lost_) on_lost_();
    return Unavailable(fmt::format("redis at {} unavailable: {}", Endpoint(config_), why));
  }

  const RedisConfig config_;
  const std::function<void()> on_lost_;
  Context ctx_;
  milliseconds timeout_{0};
};

// Parses an XREADGROUP reply into messages; entries whose data is gone (trimmed or
// deleted while pending) go to `vanished`.
Status ParseReadReply(const redisReply* r, std::vector<Message>* out,
                      std::vector<std::string>* vanished) {
  if (r->type == REDIS_REPLY_NIL) return Status::Ok();
  if (r->type != REDIS_REPLY_ARRAY) return Internal("XREADGROUP: unexpected reply type");
  for (size_t s = 0; s < r->elements; ++s) {
    const redisReply* stream = r->element[s];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2 ||
        stream->element[1]->type != REDIS_REPLY_ARRAY) {
      return Internal("XREADGROUP: malformed stream reply");
    }
    const redisReply* entries = stream->element[1];
    for (size_t e = 0; e < entries->elements; ++e) {
      const redisReply* entry = entries->element[e];
      if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
          entry->element[0]->type != REDIS_REPLY_STRING) {
        return Internal("XREADGROUP: malformed entry");
      }
      std::string id = ReplyText(entry->element[0]);
      const redisReply* fields = entry->element[1];
      if (fields->type != REDIS_REPLY_ARRAY) {
        vanished->push_back(std::move(id));
        continue;
      }
      Message m{std::move(id), ""};
      for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        if (fields->element[f]->type == REDIS_REPLY_STRING &&
            ReplyText(fields->element[f]) == "p" &&
            fields->element[f + 1]->type == REDIS_REPLY_STRING) {
          m.payload = ReplyText(fields->element[f + 1]);
        }
      }
      out->push_back(std::move(m));
    }
  }
  return Status::Ok();
}

bool IsError(const Reply& r, std::string_view prefix) {
  return r->type == REDIS_REPLY_ERROR && StartsWith(ReplyText(r.get()), prefix);
}

class RedisBus : public Bus {
 public:
  explicit RedisBus(const RedisConfig& config)
      : config_(config), command_(config, [this] { ConnectionLost(); }) {}

  Result<std::string> Append(const std::string& stream, const std::string& payload) override {
    FM_ASSIGN_OR_RETURN(Reply r, Command({"XADD", stream, "*", "p", payload}));
    if (r->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(config_, "XADD", r.get());
    if (r->type != REDIS_REPLY_STRING) return Internal("XADD: unexpected reply type");
    return ReplyText(r.get());
  }

  Status AppendBatch(const std::string& stream,
                     const std::vector<std::string>& payloads) override {
    if (payloads.empty()) return Status::Ok();
    std::vector<std::vector<std::string>> commands;
    commands.reserve(payloads.size());
    for (const auto& p : payloads) commands.push_back({"XADD", stream, "*", "p", p});
    std::vector<Reply> replies;
    {
      MutexLock lock(command_mu_);
      bool was_connected = command_.connected();
      auto result = command_.RunPipeline(commands, config_.command_timeout);
      // Retrying after a lost connection may append some entries twice: at-least-once.
      if (!result.ok() && was_connected && !command_.connected()) {
        result = command_.RunPipeline(commands, config_.command_timeout);
      }
      if (!result.ok()) return result.status();
      replies = std::move(result).value();
    }
    for (const auto& r : replies) {
      if (r->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(config_, "XADD", r.get());
    }
    return Status::Ok();
  }

  Status EnsureGroup(const std::string& stream, const std::string& group) override {
    FM_ASSIGN_OR_RETURN(Reply r, Command({"XGROUP", "CREATE", stream, group, "0", "MKSTREAM"}));
    if (r->type == REDIS_REPLY_ERROR && !IsError(r, "BUSYGROUP")) {
      return ErrorReplyStatus(config_, "XGROUP CREATE", r.get());
    }
    return Status::Ok();
  }

  Result<std::vector<Message>> ReadGroup(const std::string& stream, const std::string& group,
                                         const std::string& consumer, int max,
                                         milliseconds block) override {
    if (max <= 0) return InvalidArgument("ReadGroup: max must be positive");
    ConsumerState& state = StateFor(stream, group, consumer);
    MutexLock lock(state.mu);
    std::string count = std::to_string(max);
    Status last;
    // A lost connection or a missing group (Redis restarted empty) costs one attempt.
    for (int attempt = 0; attempt < 3; ++attempt) {
      uint64_t epoch = epoch_.load();
      bool rewind = state.rewind.exchange(false);
      if (state.epoch != epoch || rewind) {
        state.epoch = epoch;
        state.drained = false;
        state.cursor = "0";
      }
      std::vector<Message> out;
      bool was_connected = state.connection.connected();
      if (!state.drained) {
        auto r = ReadOnce(state, {"XREADGROUP", "GROUP", group, consumer, "COUNT", count,
                                  "STREAMS", stream, state.cursor},
                          config_.command_timeout, stream, group, &out);
        if (!r.ok()) {
          last = r.status();
          if (was_connected && !state.connection.connected()) continue;
          if (last.code() == StatusCode::kNotFound) continue;  // group recreated
          return last;
        }
        if (!out.empty()) {
          state.cursor = out.back().id;
          return out;
        }
        // Nothing pending, unless the batch held only vanished entries (read on next call).
        if (!*r) return out;
        state.drained = true;
      }
      std::vector<std::string> argv = {"XREADGROUP", "GROUP", group, consumer, "COUNT", count};
      if (block.count() > 0) {
        argv.push_back("BLOCK");
        argv.push_back(std::to_string(block.count()));
      }
      argv.insert(argv.end(), {"STREAMS", stream, ">"});
      auto r = ReadOnce(state, argv, block + config_.command_timeout, stream, group, &out);
      if (!r.ok()) {
        last = r.status();
        if (was_connected && !state.connection.connected()) continue;
        if (last.code() == StatusCode::kNotFound) continue;
        return last;
      }
      return out;
    }
    return last;
  }

  Status Ack(const std::string& stream, const std::string& group,
             const std::vector<std::string>& ids) override {
    if (ids.empty()) return Status::Ok();
    std::vector<std::string> argv = {"XACK", stream, group};
    argv.insert(argv.end(), ids.begin(), ids.end());
    FM_ASSIGN_OR_RETURN(Reply r, Command(argv));
    if (r->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(config_, "XACK", r.get());
    return Status::Ok();
  }

  Status Publish(const std::string& channel, const std::string& payload) override {
    FM_ASSIGN_OR_RETURN(Reply r, Command({"PUBLISH", channel, payload}));
    if (r->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(config_, "PUBLISH", r.get());
    return Status::Ok();
  }

  void RewindPending(const std::string& stream, const std::string& group,
                     const std::string& consumer) override {
    // Flagged rather than applied under the consumer's lock, which a blocked read holds.
    StateFor(stream, group, consumer).rewind = true;
  }

 private:
  // The read side of one consumer: its own connection and how far it has re-read its
  // pending entries in this session.
  struct ConsumerState {
    explicit ConsumerState(const RedisConfig& config, std::function<void()> on_lost)
        : connection(config, std::move(on_lost)) {}
    Mutex mu;  // held for a whole ReadGroup call
    Connection connection FM_GUARDED_BY(mu);
    uint64_t epoch FM_GUARDED_BY(mu) = 0;        // the epoch the session began in
    bool drained FM_GUARDED_BY(mu) = false;      // pending entries all handed out
    std::string cursor FM_GUARDED_BY(mu) = "0";  // last pending id handed out
    std::atomic<bool> rewind{false};   // set by RewindPending
  };

  // Runs one command on the command connection, reconnecting and retrying once if the
  // connection was lost. Error replies are returned as replies.
  Result<Reply> Command(const std::vector<std::string>& argv) {
    MutexLock lock(command_mu_);
    bool was_connected = command_.connected();
    auto r = command_.Run(argv, config_.command_timeout);
    if (!r.ok() && was_connected && !command_.connected()) {
      r = command_.Run(argv, config_.command_timeout);
    }
    return r;
  }

  // One XREADGROUP on the consumer's connection. Returns whether the reply held no
  // vanished entries, NotFound after recreating a missing group, or the error.
  Result<bool> ReadOnce(ConsumerState& state, const std::vector<std::string>& argv,
                        milliseconds timeout, const std::string& stream, const std::string& group,
                        std::vector<Message>* out) FM_REQUIRES(state.mu) {
    FM_ASSIGN_OR_RETURN(Reply r, state.connection.Run(argv, timeout));
    if (IsError(r, "NOGROUP")) {
      FM_LOG_WARN("bus: consumer group {} on {} is missing, recreating it", group, stream);
      FM_ASSIGN_OR_RETURN(Reply created,
                          state.connection.Run({"XGROUP", "CREATE", stream, group, "0", "MKSTREAM"},
                                               config_.command_timeout));
      if (created->type == REDIS_REPLY_ERROR && !IsError(created, "BUSYGROUP")) {
        return ErrorReplyStatus(config_, "XGROUP CREATE", created.get());
      }
      return NotFound("consumer group recreated");
    }
    if (r->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(config_, "XREADGROUP", r.get());
    std::vector<std::string> vanished;
    FM_RETURN_IF_ERROR(ParseReadReply(r.get(), out, &vanished));
    if (!vanished.empty()) {
      // Their data is gone; nothing can be redelivered, so stop tracking them.
      std::vector<std::string> ack = {"XACK", stream, group};
      ack.insert(ack.end(), vanished.begin(), vanished.end());
      auto acked = state.connection.Run(ack, config_.command_timeout);
      if (!acked.ok()) return acked.status();
      if (out->empty()) state.cursor = vanished.back();
      return false;
    }
    return true;
  }

  ConsumerState& StateFor(const std::string& stream, const std::string& group,
                          const std::string& consumer) {
    MutexLock lock(consumers_mu_);
    auto& slot = consumers_[std::make_tuple(stream, group, consumer)];
    if (!slot) slot = std::make_unique<ConsumerState>(config_, [this] { ConnectionLost(); });
    return *slot;
  }

  void ConnectionLost() {
    epoch_.fetch_add(1);
    FM_LOG_WARN("bus: lost connection to redis at {}", Endpoint(config_));
  }

  const RedisConfig config_;
  std::atomic<uint64_t> epoch_{0};  // bumped whenever any connection is lost
  Mutex command_mu_;
  Connection command_ FM_GUARDED_BY(command_mu_);
  Mutex consumers_mu_;
  std::map<std::tuple<std::string, std::string, std::string>, std::unique_ptr<ConsumerState>>
      consumers_ FM_GUARDED_BY(consumers_mu_);  // entries are never removed
};

// Listens on its own connection and thread; Stop() shuts the socket down to unblock it.
class RedisSubscriber : public Subscriber {
 public:
  RedisSubscriber(const RedisConfig& config, std::vector<std::string> channels, Handler handler)
      : config_(config), channels_(std::move(channels)), handler_(std::move(handler)) {
    thread_ = std::thread([this] { Run(); });
    // Wait for the first attempt, so that messages published after this returns are
    // received when Redis is up; if it is not, the thread keeps trying.
    MutexLock lock(mu_);
    lock.Wait(cv_, [this]() FM_REQUIRES(mu_) { return first_attempt_done_ || stopping_; });
  }
  ~RedisSubscriber() override { Stop(); }

  void Stop() override {
    {
      MutexLock lock(mu_);
      stopping_ = true;
      if (ctx_) ::shutdown(ctx_->fd, SHUT_RDWR);
    }
    cv_.notify_all();
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();  // from inside the handler; the thread exits after it returns
    } else {
      thread_.join();
    }
  }

 private:
  void Run() {
    milliseconds backoff{100};
    bool failing = false;
    while (true) {
      {
        MutexLock lock(mu_);
        if (stopping_) return;
      }
      auto connected = Connect(config_, config_.connect_timeout);
      // No read timeout while listening: Stop() unblocks the read by shutting the socket down.
      if (connected.ok() &&
          redisSetTimeout(connected->get(), ToTimeval(milliseconds(0))) != REDIS_OK) {
        connected = Unavailable(
            fmt::format("redis at {}: cannot set socket timeout", Endpoint(config_)));
      }
      if (connected.ok()) {
        Context ctx = std::move(connected).value();
        {
          MutexLock lock(mu_);
          if (stopping_) return;
          ctx_ = ctx.get();
        }
        Status s = Listen(ctx.get(), &backoff, &failing);
        {
          MutexLock lock(mu_);
          ctx_ = nullptr;
          if (stopping_) return;
        }
        if (!failing) {
          FM_LOG_WARN("bus: subscription to redis at {} lost: {}", Endpoint(config_),
                      s.ToString());
        }
      } else if (!failing) {
        FM_LOG_WARN("bus: cannot subscribe, retrying: {}", connected.status().ToString());
      }
      failing = true;
      MutexLock lock(mu_);
      first_attempt_done_ = true;
      cv_.notify_all();
      if (lock.WaitFor(cv_, backoff, [this]() FM_REQUIRES(mu_) { return stopping_; })) return;
      backoff = std::min(backoff * 2, milliseconds(5000));
    }
  }

  // Subscribes and dispatches messages until the connection fails or is shut down.
  Status Listen(redisContext* ctx, milliseconds* backoff, bool* failing) {
    std::vector<const char*> args = {"SUBSCRIBE"};
    std::vector<size_t> lens = {9};
    for (const auto& c : channels_) {
      args.push_back(c.data());
      lens.push_back(c.size());
    }
    if (redisAppendCommandArgv(ctx, static_cast<int>(args.size()), args.data(), lens.data()) !=
        REDIS_OK) {
      return Unavailable(ctx->errstr);
    }
    size_t confirmed = 0;
    while (true) {
      void* raw = nullptr;
      if (redisGetReply(ctx, &raw) != REDIS_OK || raw == nullptr) {
        return Unavailable(ctx->errstr[0] ? ctx->errstr : "connection closed");
      }
      Reply r(static_cast<redisReply*>(raw));
      if (r->type == REDIS_REPLY_ERROR) return ErrorReplyStatus(config_, "SUBSCRIBE", r.get());
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
          r->element[0]->type != REDIS_REPLY_STRING) {
        continue;
      }
      std::string kind = ReplyText(r->element[0]);
      if (kind == "subscribe") {
        if (++confirmed == channels_.size()) {
          if (*failing) FM_LOG_INFO("bus: resubscribed to redis at {}", Endpoint(config_));
          *failing = false;
          *backoff = milliseconds(100);
          MutexLock lock(mu_);
          first_attempt_done_ = true;
          cv_.notify_all();
        }
      } else if (kind == "message" && r->element[1]->type == REDIS_REPLY_STRING &&
                 r->element[2]->type == REDIS_REPLY_STRING) {
        try {
          handler_(ReplyText(r->element[1]), ReplyText(r->element[2]));
        } catch (const std::exception& e) {
          FM_LOG_ERROR("bus: subscriber handler failed: {}", e.what());
        }
      }
    }
  }

  const RedisConfig config_;
  const std::vector<std::string> channels_;
  const Handler handler_;
  Mutex mu_;
  std::condition_variable cv_;
  bool stopping_ FM_GUARDED_BY(mu_) = false;
  bool first_attempt_done_ FM_GUARDED_BY(mu_) = false;  // subscribed, or failed once
  redisContext* ctx_ FM_GUARDED_BY(mu_) = nullptr;      // owned by the thread while listening
  std::thread thread_;
};

// A subscriber to no channels: nothing to do.
class IdleSubscriber : public Subscriber {
 public:
  void Stop() override {}
};

}  // namespace

std::shared_ptr<Bus> MakeRedisBus(const RedisConfig& config) {
  return std::make_shared<RedisBus>(config);
}

std::unique_ptr<Subscriber> SubscribeRedis(const RedisConfig& config,
                                           std::vector<std::string> channels,
                                           Subscriber::Handler handler) {
  if (channels.empty()) return std::make_unique<IdleSubscriber>();
  return std::make_unique<RedisSubscriber>(config, std::move(channels), std::move(handler));
}

}  // namespace flowmesh::bus
