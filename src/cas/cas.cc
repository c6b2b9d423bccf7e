#include "cas/cas.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "common/hash.h"
#include "common/ids.h"
#include "common/thread_annotations.h"
#include "state/store.h"

namespace flowmesh::cas {

namespace fs = std::filesystem;

BlobStore::BlobStore(std::string root) : root_(std::move(root)) {}

Status BlobStore::Init() {
  std::error_code ec;
  fs::create_directories(fs::path(root_) / "blobs", ec);
  if (ec) return Internal("cannot create " + root_ + "/blobs: " + ec.message());
  fs::create_directories(fs::path(root_) / "tmp", ec);
  if (ec) return Internal("cannot create " + root_ + "/tmp: " + ec.message());
  for (const auto& entry : fs::directory_iterator(fs::path(root_) / "tmp", ec)) {
    fs::remove(entry.path(), ec);
  }
  return Status::Ok();
}

std::string BlobStore::PathFor(const std::string& digest) const {
  return root_ + "/blobs/" + digest.substr(0, 2) + "/" + digest.substr(2, 2) + "/" + digest;
}

static bool ValidDigest(const std::string& d) {
  if (d.size() != 64) return false;
  for (char c : d) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::string> BlobStore::Put(std::string_view data) {
  std::string digest = Sha256Hex(data);
  std::string final_path = PathFor(digest);
  {
    MutexLock lock(mu_);
    // Present already: refresh its mtime so a collection pass in progress keeps it.
    if (::utimensat(AT_FDCWD, final_path.c_str(), nullptr, 0) == 0) return digest;
  }
  std::error_code ec;
  fs::create_directories(fs::path(final_path).parent_path(), ec);
  if (ec) return Internal("cas: mkdir: " + ec.message());
  std::string tmp = root_ + "/tmp/" + RandomHex(8);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Internal("cas: open " + tmp + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Internal(std::string("cas: write: ") + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return Internal(std::string("cas: fsync: ") + std::strerror(e));
  }
  ::close(fd);
  {
    MutexLock lock(mu_);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
      int e = errno;
      ::unlink(tmp.c_str());
      return Internal(std::string("cas: rename: ") + std::strerror(e));
    }
  }
  // The rename is durable once its directory is.
  int dir = ::open(fs::path(final_path).parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return digest;
}

static double MtimeSeconds(const struct stat& st) {
  return static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) / 1e9;
}

int64_t BlobStore::RemoveIfOlder(const std::string& digest, double cutoff) {
  if (!ValidDigest(digest)) return 0;
  MutexLock lock(mu_);
  std::string path = PathFor(digest);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || MtimeSeconds(st) >= cutoff) return 0;
  if (::unlink(path.c_str()) != 0) return 0;
  return static_cast<int64_t>(st.st_size);
}

void BlobStore::ForEach(const std::function<void(const std::string&, double)>& fn) const {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(fs::path(root_) / "blobs", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    std::string name = it->path().filename().string();
    if (!ValidDigest(name)) continue;
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0) continue;
    fn(name, MtimeSeconds(st));
  }
}

int64_t BlobStore::RemoveStaleTemporaries(double cutoff) {
  int64_t removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(root_) / "tmp", ec)) {
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) == 0 && MtimeSeconds(st) < cutoff &&
        ::unlink(entry.path().c_str()) == 0) {
      ++removed;
    }
  }
  return removed;
}

Status CollectGarbage(BlobStore* files, state::Store* db, double grace_s, state::GcStats* stats) {
  state::GcStats local;
  FM_ASSIGN_OR_RETURN(std::vector<std::string> unreferenced,
                      db->CollectUnreferencedBlobs(grace_s, &local));
  double cutoff = WallSeconds() - grace_s;
  for (const auto& digest : unreferenced) files->RemoveIfOlder(digest, cutoff);
  // Files no row tracks: an upload whose record never committed.
  std::vector<std::string> candidates;
  files->ForEach([&](const std::string& digest, double mtime) {
    if (mtime < cutoff) candidates.push_back(digest);
  });
  for (const auto& digest : candidates) {
    auto refs = db->BlobRefs(digest);
    if (refs.ok() || refs.status().code() != StatusCode::kNotFound) continue;
    if (files->RemoveIfOlder(digest, cutoff) > 0) local.orphan_files_removed += 1;
  }
  local.temp_files_removed += files->RemoveStaleTemporaries(cutoff);
  if (stats != nullptr) {
    stats->blobs_removed += local.blobs_removed;
    stats->bytes_removed += local.bytes_removed;
    stats->orphan_files_removed += local.orphan_files_removed;
    stats->temp_files_removed += local.temp_files_removed;
  }
  return Status::Ok();
}

Result<std::string> BlobStore::Get(const std::string& digest) const {
  if (!ValidDigest(digest)) return InvalidArgument("not a sha256 digest: " + digest);
  std::ifstream in(PathFor(digest), std::ios::binary);
  if (!in) return NotFound("blob " + digest + " not found");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool BlobStore::Contains(const std::string& digest) const {
  return ValidDigest(digest) && ::access(PathFor(digest).c_str(), F_OK) == 0;
}

}  // namespace flowmesh::cas
