#include "cas/content_store.h"

#include "common/hash.h"

namespace flowmesh::cas {

Result<ContentStore::Prepared> ContentStore::Prepare(std::string data) {
  Prepared p;
  p.size = data.size();
  if (data.size() <= inline_max_) {
    p.digest = Sha256Hex(data);
    p.inline_data = std::move(data);
    p.is_inline = true;
    return p;
  }
  FM_ASSIGN_OR_RETURN(p.digest, files_->Put(data));
  return p;
}

Status ContentStore::Record(const Prepared& blob, state::WriteTxn& txn) {
  if (!blob.is_inline) return Status::Ok();
  return txn.PutBlob(blob.digest, blob.inline_data);
}

Result<std::string> ContentStore::Get(const std::string& digest) const {
  auto row = db_->GetBlob(digest);
  if (row.ok() || row.status().code() != StatusCode::kNotFound) return row;
  return files_->Get(digest);
}

}  // namespace flowmesh::cas
