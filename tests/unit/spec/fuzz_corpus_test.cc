// Replays the libFuzzer seed corpus (tests/fuzz/corpus/) through the same entry point as the
// fuzz target, with the normal compiler: nothing crashes and the parser keeps its contract.
// Files found by `bench/run.sh fuzz-parser` that once crashed belong in that folder too.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/parse_input.h"
#include "spec/workflow.h"

namespace flowmesh::spec {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = fs::path(FLOWMESH_SOURCE_DIR) / "tests/fuzz/corpus";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(FuzzCorpus, EveryInputKeepsTheParserContract) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(kCorpus)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 12u);
  size_t native = 0, n8n = 0;
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.filename().string());
    std::string data = ReadFile(file);
    ASSERT_FALSE(data.empty());
    ((data[0] & 1) != 0 ? n8n : native)++;
    fuzz::RunParseInput(reinterpret_cast<const uint8_t*>(data.data()), data.size());
  }
  EXPECT_GE(native, 4u);
  EXPECT_GE(n8n, 4u);
}

// The first byte really selects the format: seeds that are valid parse in their format.
TEST(FuzzCorpus, SeedsParseInTheirFormat) {
  for (const char* name : {"native_single.yaml", "native_stages.yaml",
                           "native_graph_condition.yaml", "n8n_hf_summarise_and_check.json",
                           "n8n_status_check_branches.json", "n8n_refs.json"}) {
    SCOPED_TRACE(name);
    std::string data = ReadFile(kCorpus / name);
    ASSERT_GT(data.size(), 1u);
    Format format = (data[0] & 1) != 0 ? Format::kN8n : Format::kNative;
    std::vector<SpecError> errors;
    Result<WorkflowDef> def = ParseWorkflow(data.substr(1), format, &errors);
    EXPECT_TRUE(def.ok()) << def.status().ToString();
  }
}

}  // namespace
}  // namespace flowmesh::spec
