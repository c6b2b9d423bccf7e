#include "cli/config.h"

#include <sys/stat.h>

#include <fstream>
#include <iterator>

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
  // The published CLI's style: 4 + '*' per hidden character + 4.
  EXPECT_EQ(MaskApiKey("abcdefghijkl"), "abcd****ijkl");
  EXPECT_EQ(MaskApiKey("12345678"), "********");
  EXPECT_EQ(ResolveHome("/x/fm", "/home/u"), "/x/fm");
  EXPECT_EQ(ResolveHome("", "/home/u"), "/home/u/.flowmesh");
  EXPECT_EQ(ResolveHome(nullptr, "/home/u"), "/home/u/.flowmesh");
}

TEST(ConfigTest, PublishedTomlFileIsReadAndWritten) {
  auto parsed = ParseTomlConfig(
      "# flowmesh\nbase_url = \"http://h:8000\"\napi_key = 'k-1'\n[other]\napi_key = \"no\"\n");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->url, "http://h:8000");
  EXPECT_EQ(parsed->api_key, "k-1");
  EXPECT_FALSE(ParseTomlConfig("base_url = \"open\n").ok());
  EXPECT_FALSE(ParseTomlConfig("just words\n").ok());

  testing::TempDir dir;
  std::string path = dir / "config.toml";
  ASSERT_TRUE(SaveConfig(path, {"http://t:1", "sec\"ret"}).ok());
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "base_url = \"http://t:1\"\napi_key = \"sec\\\"ret\"\n");
  auto loaded = LoadConfig(path);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->url, "http://t:1");
  EXPECT_EQ(loaded->api_key, "sec\"ret");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST(ConfigTest, JsonConfigAcceptsBaseUrl) {
  testing::TempDir dir;
  { std::ofstream(dir / "config.json") << R"({"base_url": "http://b:2", "api_key": "k"})"; }
  auto loaded = LoadConfig(dir / "config.json");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->url, "http://b:2");
}

TEST(ConfigTest, ApiKeySourceIsReported) {
  EXPECT_EQ(ResolveEndpoint("", "f", nullptr, "e", {"", "c"}, "").api_key_source, "flag");
  EXPECT_EQ(ResolveEndpoint("", "", nullptr, "e", {"", "c"}, "").api_key_source, "env");
  EXPECT_EQ(ResolveEndpoint("", "", nullptr, nullptr, {"", "c"}, "").api_key_source, "config");
  EXPECT_EQ(ResolveEndpoint("", "", nullptr, nullptr, {}, "").api_key_source, "");
}

}  // namespace
}  // namespace flowmesh::cli
