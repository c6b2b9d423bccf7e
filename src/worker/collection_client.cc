#include "worker/collection_client.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "common/hash.h"
#include "common/ids.h"
#include "common/log.h"
#include "http/http.h"

namespace flowmesh::worker {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

bool IsDigest(const std::string& d) {
  return d.size() == 64 && std::all_of(d.begin(), d.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string Detail(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    for (const char* key : {"detail", "error", "message"}) {
      if (j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
    }
  }
  return body.substr(0, 200);
}

}  // namespace

std::optional<std::string> BlobCache::Find(const std::string& digest, int64_t size) const {
  if (!IsDigest(digest)) return std::nullopt;
  fs::path path = fs::path(dir_) / digest;
  std::error_code ec;
  auto actual = fs::file_size(path, ec);
  if (ec) return std::nullopt;
  if (size >= 0 && actual != static_cast<uintmax_t>(size)) return std::nullopt;
  fs::last_write_time(path, fs::file_time_type::clock::now(), ec);  // just used
  return path.string();
}

Result<std::string> BlobCache::Put(const std::string& digest, std::string_view bytes) const {
  if (!IsDigest(digest)) return InvalidArgument("not a sha256 digest: " + digest);
  std::string actual = Sha256Hex(bytes);
  if (actual != digest) {
    return Status(StatusCode::kAborted,
                  "collection blob " + digest + " arrived with sha256 " + actual + ": refused");
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return Internal("cannot create " + dir_ + ": " + ec.message());
  fs::path path = fs::path(dir_) / digest;
  fs::path tmp =
      fs::path(dir_) / (".tmp-" + digest + "-" + std::to_string(::getpid()) + "-" + RandomHex(4));
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      fs::remove(tmp, ec);
      return Internal("cannot write " + tmp.string());
    }
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Internal("cannot keep " + path.string());
  }
  return path.string();
}

uint64_t BlobCache::Bytes() const {
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    if (!IsDigest(it->path().filename().string())) continue;
    std::error_code size_ec;
    auto size = it->file_size(size_ec);
    if (!size_ec) total += size;
  }
  return total;
}

size_t BlobCache::Trim(const std::set<std::string>& keep) const {
  struct Blob {
    fs::path path;
    fs::file_time_type used;
    uint64_t size;
  };
  std::vector<Blob> blobs;
  uint64_t total = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!IsDigest(name)) continue;
    std::error_code e1, e2;
    uint64_t size = it->file_size(e1);
    auto used = it->last_write_time(e2);
    if (e1 || e2) continue;
    total += size;
    if (!keep.count(name)) blobs.push_back({it->path(), used, size});
  }
  std::sort(blobs.begin(), blobs.end(), [](const Blob& a, const Blob& b) {
    return a.used != b.used ? a.used < b.used : a.path < b.path;
  });
  size_t removed = 0;
  for (const Blob& b : blobs) {
    if (total <= max_bytes_) break;
    std::error_code rm;
    if (fs::remove(b.path, rm)) {
      total -= b.size;
      ++removed;
    }
  }
  return removed;
}

CollectionClient::CollectionClient(ServerLink link, CollectionCacheConfig config)
    : link_(std::move(link)),
      config_(std::move(config)),
      blobs_(config_.dir, config_.max_disk_bytes) {}

uint64_t CollectionClient::downloads() const {
  MutexLock lock(mu_);
  return downloads_;
}

size_t CollectionClient::loaded() const {
  MutexLock lock(mu_);
  return loaded_.size();
}

Result<rag::CollectionInfo> CollectionClient::Resolve(const std::string& task_id, int attempt,
                                                      const std::string& name, int64_t version) {
  if (link_.root_url.empty()) return FailedPrecondition("collections: no server to ask");
  thread_local std::map<std::string, std::unique_ptr<http::Client>> clients;
  auto& client = clients[link_.root_url];
  if (!client) client = std::make_unique<http::Client>(link_.root_url, link_.timeout);
  json body = {
      {"task_id", task_id}, {"attempt", attempt}, {"worker_id", link_.worker_id}, {"name", name}};
  if (version > 0) body["version"] = version;
  http::Headers headers;
  if (!link_.api_token.empty()) headers["Authorization"] = "Bearer " + link_.api_token;
  // 409: the attempt is not recorded yet (its dispatch overtook the store's commit), or the
  // version is still building: asked again until the deadline.
  auto deadline = std::chrono::steady_clock::now() + config_.resolve_deadline;
  auto backoff = std::chrono::milliseconds(20);
  Result<http::ClientResponse> reply = Unavailable("not asked");
  for (;;) {
    reply = client->PostJson("/api/v1/collections/resolve", body.dump(), headers);
    if (!reply.ok()) return reply.status();
    if (reply->status != 409 || std::chrono::steady_clock::now() + backoff > deadline) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
  std::string detail = Detail(reply->body);
  switch (reply->status) {
    case 200:
      break;
    case 404:
      return NotFound(detail);
    case 403:
    case 409:
      return FailedPrecondition("collection '" + name + "' refused by the server: " + detail);
    default:
      return Unavailable("collections: the server answered " + std::to_string(reply->status) +
                         ": " + detail);
  }
  return rag::CollectionInfo::FromJson(json::parse(reply->body, nullptr, false));
}

Result<std::string> CollectionClient::BlobPath(const std::string& digest, int64_t size) {
  if (auto path = blobs_.Find(digest, size)) return *path;
  thread_local std::map<std::string, std::unique_ptr<http::Client>> clients;
  auto& client = clients[link_.root_url];
  if (!client) client = std::make_unique<http::Client>(link_.root_url, link_.timeout);
  http::Headers headers;
  if (!link_.api_token.empty()) headers["Authorization"] = "Bearer " + link_.api_token;
  FM_ASSIGN_OR_RETURN(http::ClientResponse reply,
                      client->Get("/api/v1/collections/blobs/" + digest, headers));
  if (reply.status == 404) return NotFound("collection blob " + digest + ": " + Detail(reply.body));
  if (reply.status != 200) {
    return Unavailable("collection blob " + digest + ": the server answered " +
                       std::to_string(reply.status) + ": " + Detail(reply.body));
  }
  FM_ASSIGN_OR_RETURN(std::string path, blobs_.Put(digest, reply.body));
  {
    MutexLock lock(mu_);
    ++downloads_;
  }
  return path;
}

Result<std::shared_ptr<const rag::Collection>> CollectionClient::Fetch(const std::string& task_id,
                                                                       int attempt,
                                                                       const std::string& name,
                                                                       int64_t version) {
  FM_ASSIGN_OR_RETURN(rag::CollectionInfo info, Resolve(task_id, attempt, name, version));
  std::string key = info.name + "@" + std::to_string(info.version) + "/" + info.index_digest + "/" +
                    info.entries_digest;
  auto cached = [&]() -> std::shared_ptr<const rag::Collection> {
    MutexLock lock(mu_);
    for (auto it = loaded_.begin(); it != loaded_.end(); ++it) {
      if (it->key != key) continue;
      loaded_.splice(loaded_.begin(), loaded_, it);
      return loaded_.front().collection;
    }
    return nullptr;
  };
  if (auto c = cached()) return c;
  MutexLock load_lock(load_mu_);
  if (auto c = cached()) return c;  // loaded while this one waited
  // Another worker process of this node may trim a blob between its download and its load:
  // loaded again once.
  Result<std::unique_ptr<rag::Collection>> made = Internal("not loaded");
  for (int attempt_no = 0; attempt_no < 2; ++attempt_no) {
    FM_ASSIGN_OR_RETURN(std::string index_path, BlobPath(info.index_digest, info.index_size));
    FM_ASSIGN_OR_RETURN(std::string entries_path, BlobPath(info.entries_digest, info.entries_size));
    made = rag::Collection::Load(info, index_path, entries_path);
    if (made.ok() || (fs::exists(index_path) && fs::exists(entries_path))) break;
  }
  if (!made.ok()) return made.status();
  std::shared_ptr<const rag::Collection> collection = std::move(made).value();
  blobs_.Trim({info.index_digest, info.entries_digest});
  {
    MutexLock lock(mu_);
    loaded_.push_front({key, collection});
    while (loaded_.size() > std::max<size_t>(1, config_.max_loaded)) loaded_.pop_back();
  }
  FM_LOG_INFO("collection {} version {} loaded: {} vectors, {} bytes in memory", info.name,
              info.version, collection->index().size(), collection->MemoryBytes());
  return collection;
}

}  // namespace flowmesh::worker
