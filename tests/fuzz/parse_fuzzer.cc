// libFuzzer target over ParseWorkflow (native and n8n; see parse_input.h). Built only by
// `bench/run.sh fuzz-parser` with clang++ -fsanitize=fuzzer,address; the seed corpus in
// tests/fuzz/corpus/ is replayed by the unit test fuzz_corpus_test with the normal build.
#include <cstddef>
#include <cstdint>

#include "parse_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  flowmesh::fuzz::RunParseInput(data, size);
  return 0;
}
