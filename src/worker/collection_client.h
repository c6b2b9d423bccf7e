// The worker's side of collections (docs/internals/collections.md): resolves a running
// attempt's collection name with the server (POST /api/v1/collections/resolve, the fleet's
// token; asked again on 409 while the attempt is not recorded yet, within a deadline),
// fetches the two blobs by digest (GET /api/v1/collections/blobs/{digest}), checks their
// sha256, and keeps them in a cache directory by digest, shared by the worker processes of
// a node (files appear by rename, so a reader never sees half a blob), trimmed least
// recently used first to a byte budget. Loaded collections are kept in memory, least
// recently used first out, so tasks searching one collection load it once.
//
// Thread-safe: Fetch may be called from every executor thread at once; loads happen one at
// a time (a second task asking for the same collection waits for the first's load).
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "rag/collection.h"
#include "worker/credential_client.h"

namespace flowmesh::worker {

struct CollectionCacheConfig {
  std::string dir;                                    // blobs by digest; created when missing
  uint64_t max_disk_bytes = uint64_t{4} << 30;        // blobs kept on disk
  size_t max_loaded = 8;                              // collections kept loaded in memory
  std::chrono::milliseconds resolve_deadline{10000};  // asking again on 409 until then
};

// Blobs by sha256 digest in one directory. Last use is the file's modification time.
class BlobCache {
 public:
  BlobCache(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  // The blob's path when it is here with `size` bytes (-1: any), marked as just used.
  std::optional<std::string> Find(const std::string& digest, int64_t size = -1) const;
  // Keeps `bytes` as `digest` after checking that they hash to it (Aborted otherwise).
  Result<std::string> Put(const std::string& digest, std::string_view bytes) const;
  // Removes the least recently used blobs, never those in `keep`, until the directory holds
  // at most max_bytes. Returns how many it removed.
  size_t Trim(const std::set<std::string>& keep) const;
  uint64_t Bytes() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  uint64_t max_bytes_;
};

class CollectionClient {
 public:
  CollectionClient(ServerLink link, CollectionCacheConfig config);
  CollectionClient(const CollectionClient&) = delete;
  CollectionClient& operator=(const CollectionClient&) = delete;

  // The collection `name` (version 0: the newest ready one) of the attempt's organisation.
  // NotFound when it has none; FailedPrecondition when the server refuses the attempt;
  // Aborted when a blob's bytes do not match its digest; Unavailable when the server
  // cannot be reached.
  Result<std::shared_ptr<const rag::Collection>> Fetch(const std::string& task_id, int attempt,
                                                       const std::string& name, int64_t version);

  // Blobs downloaded (not found in the cache) since start: for tests and logs.
  uint64_t downloads() const;
  size_t loaded() const;
  const BlobCache& blobs() const { return blobs_; }

 private:
  Result<rag::CollectionInfo> Resolve(const std::string& task_id, int attempt,
                                      const std::string& name, int64_t version);
  Result<std::string> BlobPath(const std::string& digest, int64_t size);

  struct Loaded {
    std::string key;
    std::shared_ptr<const rag::Collection> collection;
  };
  ServerLink link_;
  CollectionCacheConfig config_;
  BlobCache blobs_;
  mutable Mutex mu_;
  std::list<Loaded> loaded_ FM_GUARDED_BY(mu_);  // most recently used first
  uint64_t downloads_ FM_GUARDED_BY(mu_) = 0;
  Mutex load_mu_;  // one download and load at a time
};

}  // namespace flowmesh::worker
