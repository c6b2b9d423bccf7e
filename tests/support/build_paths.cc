#include "support/build_paths.h"

namespace flowmesh::testing {
const char* SourceDir() { return FLOWMESH_SOURCE_DIR_VALUE; }
const char* BinDir() { return FLOWMESH_BIN_DIR_VALUE; }
}  // namespace flowmesh::testing
