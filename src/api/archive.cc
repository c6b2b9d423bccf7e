#include "api/archive.h"

#include <zlib.h>

#include <cstring>
#include <sstream>

namespace flowmesh::api {

namespace {

void Octal(char* field, size_t width, uint64_t value) {
  // width includes the terminating NUL.
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
}

std::string TarHeader(const std::string& path, size_t size, double mtime, char type = '0') {
  char h[512];
  std::memset(h, 0, sizeof(h));
  std::string name = path, prefix;
  if (name.size() > 100) {
    // ustar splits long names at a '/' into prefix (155) + name (100).
    size_t cut = name.rfind('/', 155);
    if (cut != std::string::npos && name.size() - cut - 1 <= 100) {
      prefix = name.substr(0, cut);
      name = name.substr(cut + 1);
    } else {
      name = name.substr(0, 100);
    }
  }
  std::memcpy(h, name.data(), name.size());
  Octal(h + 100, 8, type == '5' ? 0755 : 0644);
  Octal(h + 108, 8, 0);
  Octal(h + 116, 8, 0);
  Octal(h + 124, 12, size);
  Octal(h + 136, 12, static_cast<uint64_t>(mtime));
  std::memset(h + 148, ' ', 8);
  h[156] = type;
  std::memcpy(h + 257, "ustar", 6);
  std::memcpy(h + 263, "00", 2);
  std::memcpy(h + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  h[155] = ' ';
  return std::string(h, sizeof(h));
}

// Whether ustar can hold the name: 100 characters, or a 155-character prefix and a
// 100-character name split at a '/'.
bool FitsUstar(const std::string& path) {
  if (path.size() <= 100) return true;
  size_t cut = path.rfind('/', 155);
  return cut != std::string::npos && path.size() - cut - 1 <= 100;
}

}  // namespace

Result<std::string> MakeTarGz(const std::vector<ArchiveEntry>& entries, double mtime) {
  std::string tar;
  for (const auto& e : entries) {
    if (!FitsUstar(e.path)) {
      // GNU long-name extension (read by GNU tar, bsdtar and Python's tarfile): the full
      // name travels in a preceding "././@LongLink" entry of type 'L'.
      std::string longname = e.path + '\0';
      tar += TarHeader("././@LongLink", longname.size(), mtime, 'L');
      tar += longname;
      tar.append((512 - longname.size() % 512) % 512, '\0');
    }
    bool directory = !e.path.empty() && e.path.back() == '/';
    tar += TarHeader(e.path, directory ? 0 : e.data.size(), mtime, directory ? '5' : '0');
    if (directory) continue;
    tar += e.data;
    tar.append((512 - e.data.size() % 512) % 512, '\0');
  }
  tar.append(1024, '\0');

  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Internal("gzip: deflateInit2 failed");
  }
  std::string out;
  out.resize(deflateBound(&zs, tar.size()) + 64);
  zs.next_in = reinterpret_cast<Bytef*>(tar.data());
  zs.avail_in = static_cast<uInt>(tar.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  size_t produced = out.size() - zs.avail_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Internal("gzip: deflate failed");
  out.resize(produced);
  return out;
}

Result<std::string> SanitizeRelativePath(const std::string& name) {
  if (name.empty()) return InvalidArgument("empty file name");
  if (name.find('\0') != std::string::npos || name.find('\\') != std::string::npos) {
    return InvalidArgument("file name '" + name + "' contains a forbidden character");
  }
  if (name[0] == '/') return InvalidArgument("file name '" + name + "' is absolute");
  std::string out;
  std::stringstream ss(name);
  std::string seg;
  while (std::getline(ss, seg, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") return InvalidArgument("file name '" + name + "' leaves its directory");
    if (!out.empty()) out += '/';
    out += seg;
  }
  if (out.empty()) return InvalidArgument("file name '" + name + "' names no file");
  return out;
}

}  // namespace flowmesh::api
