// Fans committed events out to live subscribers (SSE streams). Subscribers register by
// workflow id or task id; Publish runs on the store's writer thread after commit, so a
// subscriber never sees an event that a reader of the store could not find.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "state/records.h"
#include "common/thread_annotations.h"

namespace flowmesh::scheduler {

class EventHub {
 public:
  using Callback = std::function<void(const state::EventRecord&)>;

  uint64_t Subscribe(const std::string& key, Callback callback);
  void Unsubscribe(uint64_t id);
  void Publish(const state::EventRecord& event);
  size_t subscribers() const;

 private:
  struct Entry {
    std::string key;
    Callback callback;
  };
  mutable Mutex mu_;
  uint64_t next_id_ FM_GUARDED_BY(mu_) = 1;
  std::unordered_map<uint64_t, Entry> entries_ FM_GUARDED_BY(mu_);
  std::unordered_multimap<std::string, uint64_t> by_key_ FM_GUARDED_BY(mu_);
};

}  // namespace flowmesh::scheduler
