#include "cli/config.h"

#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace flowmesh::cli {
namespace {

TEST(ConfigTest, SaveWritesMode0600AndLoadRoundTrips) {
  testing::TempDir dir;
  std::string path = dir / "home/config.json";  // parent created on demand
  ASSERT_TRUE(SaveConfig(path, {"http://10.0.0.5:8000", "secret-key-123456"}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto loaded = LoadConfig(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->url, "http://10.0.0.5:8000");
  EXPECT_EQ(loaded->api_key, "secret-key-123456");
}

TEST(ConfigTest, SaveTightensAnExistingLooseFile) {
  testing::TempDir dir;
  std::string path = dir / "config.json";
  { std::ofstream(path) << "{}"; }
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  ASSERT_TRUE(SaveConfig(path, {"http://h:1", "k"}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST(ConfigTest, MissingFileIsEmptyMalformedIsAnError) {
  testing::TempDir dir;
  auto missing = LoadConfig(dir / "nope.json");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->url.empty());
  { std::ofstream(dir / "bad.json") << "{not json"; }
  auto bad = LoadConfig(dir / "bad.json");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("bad.json"), std::string::npos);
}

TEST(ConfigTest, EndpointPrecedenceFlagEnvFileStackDefault) {
  CliConfig file{"http://file:1", "file-key"};
  auto ep = ResolveEndpoint("http://flag:1/", "flag-key", "http://env:1", "env-key", file, "");
  EXPECT_EQ(ep.url, "http://flag:1");
  EXPECT_EQ(ep.api_key, "flag-key");
  EXPECT_EQ(ep.url_source, "flag");
  ep = ResolveEndpoint("", "", "http://env:1", "env-key", file, "");
  EXPECT_EQ(ep.url, "http://env:1");
  EXPECT_EQ(ep.api_key, "env-key");
  ep = ResolveEndpoint("", "", "", nullptr, file, "http://127.0.0.1:9000");
  EXPECT_EQ(ep.url, "http://file:1");
  EXPECT_EQ(ep.api_key, "file-key");
  ep = ResolveEndpoint("", "", nullptr, nullptr, {}, "http://127.0.0.1:9000");
  EXPECT_EQ(ep.url, "http://127.0.0.1:9000");
  EXPECT_EQ(ep.url_source, "stack");
  ep = ResolveEndpoint("", "", nullptr, nullptr, {}, "");
  EXPECT_EQ(ep.url, kDefaultUrl);
  EXPECT_EQ(ep.url_source, "default");
  EXPECT_TRUE(ep.api_key.empty());
}

TEST(ConfigTest, NormalizeMaskAndHome) {
  EXPECT_EQ(NormalizeUrl("localhost:8000//"), "http://localhost:8000");
  EXPECT_EQ(NormalizeUrl("https://x.org/"), "https://x.org");
  EXPECT_EQ(MaskApiKey(""), "");
  EXPECT_EQ(MaskApiKey("short"), "*****");
  std::string masked = MaskApiKey("fm_abcdefghijklmnop");
  EXPECT_EQ(masked.find("efghijkl"), std::string::npos);
  EXPECT_EQ(masked.rfind("fm_a", 0), 0u);
  EXPECT_EQ(ResolveHome("/x/fm", "/home/u"), "/x/fm");
  EXPECT_EQ(ResolveHome("", "/home/u"), "/home/u/.flowmesh");
  EXPECT_EQ(ResolveHome(nullptr, "/home/u"), "/home/u/.flowmesh");
}

}  // namespace
}  // namespace flowmesh::cli
