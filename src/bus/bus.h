// The control bus between the server and supervisors: durable streams with consumer
// groups (at-least-once; handlers must be idempotent and acknowledge after applying)
// and best-effort pub/sub channels for heartbeats and telemetry.
//
// Implementations: RedisBus (Redis Streams + PUBLISH/SUBSCRIBE, reconnecting with
// backoff) and InProcessBus (same semantics in memory, for single-process tests).
// All methods are thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::bus {

// Stream and channel names shared by the server and supervisors.
inline std::string NodeStream(const std::string& node_id) { return "fm:node:" + node_id; }
inline constexpr const char* kEventsStream = "fm:events";
inline constexpr const char* kHeartbeatChannel = "fm:heartbeats";

struct Message {
  std::string id;       // stream entry id ("1700000000000-0")
  std::string payload;  // opaque bytes (JSON in practice)
};

class Bus {
 public:
  virtual ~Bus() = default;

  // Appends one entry to `stream` (created if missing). Returns the entry id.
  virtual Result<std::string> Append(const std::string& stream, const std::string& payload) = 0;
  // Appends many entries in one round trip, in order.
  virtual Status AppendBatch(const std::string& stream, const std::vector<std::string>& payloads) = 0;

  // Creates the consumer group if it does not exist (reading from the stream start).
  virtual Status EnsureGroup(const std::string& stream, const std::string& group) = 0;

  // Reads up to `max` entries for `consumer` in `group`: first any entries delivered to
  // this consumer but not yet acknowledged (after a reconnect or restart), then new ones,
  // waiting up to `block` for new entries. An empty vector means nothing arrived.
  virtual Result<std::vector<Message>> ReadGroup(const std::string& stream,
                                                 const std::string& group,
                                                 const std::string& consumer, int max,
                                                 std::chrono::milliseconds block) = 0;

  virtual Status Ack(const std::string& stream, const std::string& group,
                     const std::vector<std::string>& ids) = 0;

  // Best-effort broadcast; lost if nobody listens.
  virtual Status Publish(const std::string& channel, const std::string& payload) = 0;

  // Makes the next ReadGroup by `consumer` start again with every entry delivered to it
  // but not acknowledged, as after a restart. (ReadGroup hands out each pending entry
  // once per session, then only new ones.) StreamConsumer calls it when it starts and
  // when a batch could not be applied or acknowledged. The default does nothing, for
  // fakes that do not track pending entries.
  virtual void RewindPending(const std::string& stream, const std::string& group,
                             const std::string& consumer) {}
};

// Runs a consumer loop on its own thread: ReadGroup -> handler -> Ack, reconnecting
// with exponential backoff (100 ms .. 5 s) while the bus is unavailable. Entries the
// handler has seen but that were not acknowledged (crash, lost connection) are
// delivered again, so the handler must be idempotent.
class StreamConsumer {
 public:
  // The handler receives a batch and returns normally once it has applied all of it.
  using Handler = std::function<void(const std::vector<Message>&)>;

  // The handler receives a batch and a callback to run (once, from any thread) when the
  // batch's effects are durable; the consumer reads on without waiting and acknowledges
  // completed batches before its next read. At most `max_in_flight` batches wait at once.
  using DeferredHandler =
      std::function<void(const std::vector<Message>&, std::function<void()> acknowledge)>;

  StreamConsumer(std::shared_ptr<Bus> bus, std::string stream, std::string group,
                 std::string consumer, Handler handler, int batch = 256);
  StreamConsumer(std::shared_ptr<Bus> bus, std::string stream, std::string group,
                 std::string consumer, DeferredHandler handler, int batch = 256,
                 int max_in_flight = 64);
  ~StreamConsumer();  // Stops and joins.
  StreamConsumer(const StreamConsumer&) = delete;
  StreamConsumer& operator=(const StreamConsumer&) = delete;

  void Start();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Subscribes to pub/sub channels on a dedicated thread and connection; resubscribes
// after reconnecting.
class Subscriber {
 public:
  using Handler = std::function<void(const std::string& channel, const std::string& payload)>;
  virtual ~Subscriber() = default;
  virtual void Stop() = 0;
};

struct RedisConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;  // AUTH when non-empty
  std::chrono::milliseconds connect_timeout{2000};
  // Socket read/write timeout for commands (a blocking read adds its BLOCK time). A
  // command that times out drops the connection, which is then re-established.
  std::chrono::milliseconds command_timeout{5000};
};

// A Redis-backed bus. Keeps one command connection (guarded by a mutex; reconnects
// on failure) and opens a separate connection per blocking ReadGroup caller thread.
std::shared_ptr<Bus> MakeRedisBus(const RedisConfig& config);
std::unique_ptr<Subscriber> SubscribeRedis(const RedisConfig& config,
                                           std::vector<std::string> channels,
                                           Subscriber::Handler handler);

// In-memory bus with the same semantics (consumer groups, pending redelivery).
std::shared_ptr<Bus> MakeInProcessBus();
// Pub/sub on an in-process bus made by MakeInProcessBus.
std::unique_ptr<Subscriber> SubscribeInProcess(const std::shared_ptr<Bus>& bus,
                                               std::vector<std::string> channels,
                                               Subscriber::Handler handler);

}  // namespace flowmesh::bus
