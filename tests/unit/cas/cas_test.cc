#include <fstream>
#include "cas/cas.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/hash.h"
#include "support/temp_dir.h"

namespace flowmesh::cas {
namespace {

TEST(BlobStoreTest, PutGetIdempotent) {
  testing::TempDir dir;
  BlobStore store(dir.path());
  ASSERT_TRUE(store.Init().ok());
  auto d = store.Put("{\"items\":[]}");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Sha256Hex("{\"items\":[]}"));
  EXPECT_TRUE(store.Contains(*d));
  EXPECT_EQ(*store.Get(*d), "{\"items\":[]}");
  auto again = store.Put("{\"items\":[]}");
  EXPECT_EQ(*again, *d);
  EXPECT_EQ(store.Get(std::string(64, '0')).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store.Get("../../etc/passwd").status().code(), StatusCode::kInvalidArgument);
}

TEST(BlobStoreTest, InitRemovesStaleTemporaries) {
  testing::TempDir dir;
  BlobStore store(dir.path());
  ASSERT_TRUE(store.Init().ok());
  std::filesystem::path stale = std::filesystem::path(dir.path()) / "tmp" / "half-written";
  { std::ofstream(stale) << "partial"; }
  ASSERT_TRUE(store.Init().ok());
  EXPECT_FALSE(std::filesystem::exists(stale));
}

}  // namespace
}  // namespace flowmesh::cas
