// Writes (once per test binary) tiny random-weight llama GGUF models with tools/gguf-gen.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace flowmesh::inference::testing {

inline std::string TestModel(const std::string& name, const std::string& args) {
  // Shared by test processes: written under a temporary name, then renamed into place.
  std::string dir = (std::filesystem::temp_directory_path() / "fm-inference-test").string();
  std::filesystem::create_directories(dir);
  std::string path = dir + "/" + name + ".gguf";
  if (!std::filesystem::exists(path)) {
    std::string tmp = path + "." + std::to_string(::getpid());
    std::string cmd = std::string("python3 ") + FLOWMESH_SOURCE_DIR + "/tools/gguf-gen " + tmp + " " + args;
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::filesystem::rename(tmp, path);
  }
  return path;
}

// 64-dim, 2 layers, f32: fast, and batch/alone arithmetic stays comparable.
inline std::string TinyModel() { return TestModel("tiny", "--dim 64 --layers 2 --type f32 --seed 7"); }

}  // namespace flowmesh::inference::testing
