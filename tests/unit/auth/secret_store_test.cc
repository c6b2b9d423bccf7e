// SecretStore: AES-256-GCM at rest, per-organisation isolation, names only in lists.
#include "auth/secret_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "support/temp_dir.h"

namespace flowmesh::auth {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(SecretStoreTest, RoundTripAndEncryptedAtRest) {
  testing::TempDir dir;
  const std::string value = "sk-plaintext-marker-1234567890";
  {
    auto store = SecretStore::Open(dir.path());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Set("org-a", "OPENAI", value).ok());
    auto got = (*store)->Get("org-a", "OPENAI");
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, value);
  }
  // Neither the database nor its WAL holds the plaintext; the key file is 0600.
  for (const char* f : {"secrets.db", "secrets.db-wal"}) {
    EXPECT_EQ(ReadAll(dir / f).find(value), std::string::npos) << f;
  }
  struct stat st {};
  ASSERT_EQ(::stat((dir / "secrets.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Reopened with the same key file: still readable.
  auto again = SecretStore::Open(dir.path());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*(*again)->Get("org-a", "OPENAI"), value);
}

TEST(SecretStoreTest, OrganisationsAreIsolated) {
  testing::TempDir dir;
  auto store = SecretStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Set("org-a", "K", "a-value").ok());
  ASSERT_TRUE((*store)->Set("org-b", "K", "b-value").ok());
  EXPECT_EQ(*(*store)->Get("org-a", "K"), "a-value");
  EXPECT_EQ(*(*store)->Get("org-b", "K"), "b-value");
  EXPECT_EQ((*store)->Get("org-c", "K").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE((*store)->Delete("org-a", "K").ok());
  EXPECT_FALSE((*store)->Get("org-a", "K").ok());
  EXPECT_TRUE((*store)->Get("org-b", "K").ok());
  EXPECT_EQ((*store)->Delete("org-a", "K").code(), StatusCode::kNotFound);
}

TEST(SecretStoreTest, ListShowsNamesOnlyAndReplaceKeepsOneRow) {
  testing::TempDir dir;
  auto store = SecretStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Set("o", "b name", "v1").ok());
  ASSERT_TRUE((*store)->Set("o", "a", "v2").ok());
  ASSERT_TRUE((*store)->Set("o", "a", "v3").ok());
  auto list = (*store)->List("o");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "a");
  EXPECT_EQ((*list)[1].name, "b name");
  EXPECT_EQ(*(*store)->Get("o", "a"), "v3");
}

TEST(SecretStoreTest, RejectsBadNamesAndValues) {
  testing::TempDir dir;
  auto store = SecretStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  for (const char* bad : {"", " lead", "a}b", "a/b", "a$b"}) {
    EXPECT_EQ((*store)->Set("o", bad, "v").code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ((*store)->Set("o", "ok", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->Set("o", "ok", std::string(SecretStore::kMaxValueBytes + 1, 'x')).code(),
            StatusCode::kInvalidArgument);
}

TEST(SecretStoreTest, SealedValueIsBoundToItsRow) {
  std::string key(32, 'k');
  auto sealed = SealSecret(key, "org-a/K", "value");
  ASSERT_TRUE(sealed.ok());
  EXPECT_TRUE(OpenSecret(key, "org-a/K", *sealed).ok());
  EXPECT_FALSE(OpenSecret(key, "org-b/K", *sealed).ok());  // moved to another org
  std::string tampered = *sealed;
  tampered[14] ^= 1;
  EXPECT_FALSE(OpenSecret(key, "org-a/K", tampered).ok());
  EXPECT_FALSE(OpenSecret(std::string(32, 'j'), "org-a/K", *sealed).ok());
  // Two seals of one value differ (fresh nonce).
  EXPECT_NE(*sealed, *SealSecret(key, "org-a/K", "value"));
}

}  // namespace
}  // namespace flowmesh::auth
