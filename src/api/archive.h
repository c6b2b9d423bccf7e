// Builds .tar.gz bundles in memory (POSIX ustar entries, gzip via zlib).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::api {

struct ArchiveEntry {
  std::string path;  // relative, already sanitised; ending in '/': a directory entry
  std::string data;
};

Result<std::string> MakeTarGz(const std::vector<ArchiveEntry>& entries, double mtime);

// Checks a client-supplied relative file name: no absolute paths, no "..", no empty or
// "." segments after normalisation, no NUL or backslash. Returns the normalised path.
Result<std::string> SanitizeRelativePath(const std::string& name);

}  // namespace flowmesh::api
