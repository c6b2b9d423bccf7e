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

// Random LoRA adapters (rank 8) for TinyModel's shapes, and one for a 32-dim model.
inline std::string TinyLora(int seed) {
  return TestModel("tiny-lora-" + std::to_string(seed),
                   "--dim 64 --layers 2 --type f32 --lora-rank 8 --seed " + std::to_string(seed));
}
inline std::string NarrowLora() { return TestModel("narrow-lora", "--dim 32 --layers 2 --type f32 --lora-rank 4"); }

}  // namespace flowmesh::inference::testing
