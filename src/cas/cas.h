// Content-addressed blob store under <root>/blobs/<d0d1>/<d2d3>/<sha256>. A blob is
// written to a temporary file, fsynced, then renamed into place, so a crash never
// leaves a partial blob under a real name. Thread-safe (the filesystem is the state).
#pragma once

#include <string>

#include "common/status.h"

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

 private:
  std::string root_;
};

}  // namespace flowmesh::cas
