#include "cas/cas.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/hash.h"
#include "common/ids.h"

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
  if (::access(final_path.c_str(), F_OK) == 0) return digest;
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
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return Internal(std::string("cas: rename: ") + std::strerror(e));
  }
  return digest;
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
