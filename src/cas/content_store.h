// Content-addressed storage for results and artifacts in two tiers: blobs up to
// `inline_max` bytes live in the state database and commit in the same group transaction
// as the records that name them; larger blobs are files in the BlobStore (written to a
// temporary file, fsynced, renamed). Either way a digest is readable once its record is
// durable. Thread-safe.
#pragma once

#include <string>

#include "cas/cas.h"
#include "common/status.h"
#include "state/store.h"

namespace flowmesh::cas {

class ContentStore {
 public:
  static constexpr size_t kDefaultInlineMax = 256 << 10;

  ContentStore(BlobStore* files, state::Store* db, size_t inline_max = kDefaultInlineMax)
      : files_(files), db_(db), inline_max_(inline_max) {}

  // A blob ready to be recorded: large ones are already durable as files; small ones are
  // written by Record() inside the caller's write operation.
  struct Prepared {
    std::string digest;
    std::string inline_data;
    bool is_inline = false;
    size_t size = 0;
  };

  Result<Prepared> Prepare(std::string data);
  static Status Record(const Prepared& blob, state::WriteTxn& txn);
  Result<std::string> Get(const std::string& digest) const;

 private:
  BlobStore* files_;
  state::Store* db_;
  size_t inline_max_;
};

}  // namespace flowmesh::cas
