// Where the tests find the source tree and the built binaries. Defined in one compiled file
// (build_paths.cc) so test objects do not embed the checkout's path, which keeps ccache
// hits across checkouts; force-included into every test by flowmesh_test().
#pragma once

namespace flowmesh::testing {
const char* SourceDir();
const char* BinDir();
}  // namespace flowmesh::testing

#define FLOWMESH_SOURCE_DIR (::flowmesh::testing::SourceDir())
#define FLOWMESH_BIN_DIR (::flowmesh::testing::BinDir())
