// MakeTarGz output is read back by the system's GNU tar; SanitizeRelativePath's rules.
#include "api/archive.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace flowmesh::api {
namespace {

using flowmesh::testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
}

// Runs `command` through the shell; returns its exit status (-1 if it did not exit).
int Shell(const std::string& command) {
  int rc = std::system(command.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

TEST(MakeTarGzTest, GnuTarListsAndExtractsEntries) {
  TempDir dir;
  // 120 characters, split by ustar into prefix + name at a '/'.
  std::string long_path =
      std::string(60, 'd') + "/" + std::string(40, 'e') + "/file-" + std::string(8, 'f') + ".txt";
  ASSERT_GT(long_path.size(), 100u);
  std::string binary("\0\x01\xff\n", 4);
  std::string big(5000, 'x');  // spans several 512-byte blocks, not a multiple of 512
  std::vector<ArchiveEntry> entries = {
      {"hello.txt", "hello, world\n"}, {"sub/dir/bin.dat", binary}, {"empty", ""}, {"big.txt", big},
      {long_path, "long\n"},
  };
  auto tgz = MakeTarGz(entries, 1700000000.0);
  ASSERT_TRUE(tgz.ok()) << tgz.status().ToString();
  ASSERT_GE(tgz->size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>((*tgz)[0]), 0x1f);  // gzip magic
  EXPECT_EQ(static_cast<unsigned char>((*tgz)[1]), 0x8b);

  std::string archive = dir / "out.tar.gz";
  WriteFile(archive, *tgz);
  std::string listing = dir / "listing.txt";
  ASSERT_EQ(Shell("tar -tzf '" + archive + "' > '" + listing + "' 2>&1"), 0) << ReadFile(listing);
  std::vector<std::string> names = Lines(ReadFile(listing));
  std::vector<std::string> want;
  for (const auto& e : entries) want.push_back(e.path);
  EXPECT_EQ(names, want);

  std::string out_dir = dir / "x";
  ASSERT_EQ(
      Shell("mkdir -p '" + out_dir + "' && tar -xzf '" + archive + "' -C '" + out_dir + "' 2>&1"),
      0);
  for (const auto& e : entries) {
    EXPECT_EQ(ReadFile(out_dir + "/" + e.path), e.data) << e.path;
  }

  // The mtime is the one given.
  std::string verbose = dir / "verbose.txt";
  ASSERT_EQ(Shell("TZ=UTC tar --full-time -tvzf '" + archive + "' > '" + verbose + "'"), 0);
  EXPECT_NE(ReadFile(verbose).find("2023-11-14 22:13:20 hello.txt"), std::string::npos)
      << ReadFile(verbose);
}

TEST(MakeTarGzTest, EmptyArchiveIsReadable) {
  TempDir dir;
  auto tgz = MakeTarGz({}, 0);
  ASSERT_TRUE(tgz.ok());
  std::string archive = dir / "empty.tar.gz";
  WriteFile(archive, *tgz);
  std::string listing = dir / "listing.txt";
  ASSERT_EQ(Shell("tar -tzf '" + archive + "' > '" + listing + "' 2>&1"), 0);
  EXPECT_EQ(ReadFile(listing), "");
}

TEST(MakeTarGzTest, PythonTarfileReadsLongPath) {
  if (Shell("command -v python3 > /dev/null") != 0) GTEST_SKIP() << "no python3";
  TempDir dir;
  std::string long_path = std::string(90, 'a') + "/" + std::string(50, 'b') + ".txt";
  auto tgz = MakeTarGz({{long_path, "py"}}, 1);
  ASSERT_TRUE(tgz.ok());
  std::string archive = dir / "py.tar.gz";
  WriteFile(archive, *tgz);
  std::string out = dir / "py.txt";
  std::string script =
      "import sys, tarfile\n"
      "t = tarfile.open(sys.argv[1])\n"
      "m = t.getmembers()[0]\n"
      "print(m.name)\n"
      "print(t.extractfile(m).read().decode())\n";
  WriteFile(dir / "read.py", script);
  ASSERT_EQ(Shell("python3 '" + (dir / "read.py") + "' '" + archive + "' > '" + out + "' 2>&1"), 0)
      << ReadFile(out);
  EXPECT_EQ(ReadFile(out), long_path + "\npy\n");
}

TEST(MakeTarGzTest, NamesUstarCannotHoldUseGnuLongNames) {
  TempDir dir;
  // One segment over 100 characters, and a prefix over 155: neither fits ustar.
  std::string long_segment = "dir/" + std::string(130, 'x') + ".txt";
  std::string long_prefix = std::string(160, 'p') + "/f.txt";
  auto tgz = MakeTarGz({{long_segment, "one"}, {long_prefix, "two"}}, 1);
  ASSERT_TRUE(tgz.ok());
  std::string archive = dir / "long.tar.gz";
  WriteFile(archive, *tgz);
  std::string listing = dir / "list.txt";
  ASSERT_EQ(Shell("tar -tzf '" + archive + "' > '" + listing + "' 2>&1"), 0) << ReadFile(listing);
  EXPECT_EQ(ReadFile(listing), long_segment + "\n" + long_prefix + "\n");
  ASSERT_EQ(Shell("cd '" + dir.path() + "' && tar -xzf long.tar.gz"), 0);
  EXPECT_EQ(ReadFile(dir / long_segment), "one");
  EXPECT_EQ(ReadFile(dir / long_prefix), "two");
}

TEST(SanitizeRelativePathTest, AcceptsAndNormalises) {
  struct Case {
    std::string in, out;
  };
  for (const Case& c : std::vector<Case>{{"a/b.txt", "a/b.txt"},
                                         {"./a//b", "a/b"},
                                         {"a/./b/", "a/b"},
                                         {"file", "file"},
                                         {"..a/b..", "..a/b.."}}) {
    auto r = SanitizeRelativePath(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
    EXPECT_EQ(*r, c.out) << c.in;
  }
}

TEST(SanitizeRelativePathTest, Refuses) {
  for (const std::string& bad :
       {std::string("../x"), std::string("a/../../x"), std::string("a/.."), std::string(".."),
        std::string("/etc/passwd"), std::string("a\\b"), std::string(""), std::string("."),
        std::string("./"), std::string("//"), std::string("a\0b", 3)}) {
    auto r = SanitizeRelativePath(bad);
    EXPECT_FALSE(r.ok()) << "accepted '" << bad << "' as '" << (r.ok() ? *r : "") << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
}

}  // namespace
}  // namespace flowmesh::api
