// Content-addressed blob store under <root>/blobs/<d0d1>/<d2d3>/<sha256>. A blob is
// written to a temporary file, fsynced, then renamed into place (and the directory
// fsynced), so a crash never leaves a partial blob under a real name. Thread-safe.
//
// Garbage collection removes a file only if it was not written or re-put within the grace
// period: Put of an existing blob refreshes its mtime, under the same lock as removal, so
// a blob that is being referenced again cannot disappear between the collector's decision
// and the new reference's commit.
#pragma once

#include <functional>
#include <mutex>
#include <string>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace flowmesh::cas {

class BlobStore {
 public:
  explicit BlobStore(std::string root);

  Status Init();  // creates directories, removes stale temporary files
  // Stores `data`; returns its SHA-256 hex digest. Idempotent.
  Result<std::string> Put(std::string_view data);
  Result<std::string> Get(const std::string& digest) const;
  bool Contains(const std::string& digest) const;
  std::string PathFor(const std::string& digest) const;  // for streaming large blobs

  // Removes the blob's file if it was last written before `cutoff` (wall seconds).
  // Returns the bytes removed (0 if kept or absent).
  int64_t RemoveIfOlder(const std::string& digest, double cutoff);
  // Calls fn(digest, mtime) for every blob file.
  void ForEach(const std::function<void(const std::string&, double)>& fn) const;
  // Removes temporary files older than `cutoff` (a crashed writer's leftovers).
  int64_t RemoveStaleTemporaries(double cutoff);

 private:
  std::string root_;
  Mutex mu_;  // orders Put's existence check/refresh with removal
};

}  // namespace flowmesh::cas

namespace flowmesh::state {
class Store;
struct GcStats;
}  // namespace flowmesh::state

namespace flowmesh::cas {

// One collection pass: drops blobs with no references (results, result files, operator
// results) untouched for `grace_s`, files nobody tracks (uploads that were never
// recorded), and stale temporaries.
Status CollectGarbage(BlobStore* files, state::Store* db, double grace_s, state::GcStats* stats);

}  // namespace flowmesh::cas
