// One fuzz input for the workflow parser: the first byte picks the format (odd: n8n,
// even: native flowmesh/v1), the rest is the document. Shared by the libFuzzer target and
// the corpus replay test so that both exercise exactly the same path. Header-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "spec/workflow.h"

namespace flowmesh::fuzz {

// Parses the input and checks the parser's contract; aborts (a fuzzer "crash") when broken:
// success comes with no errors and at least one task, failure with at least one error,
// each with a message and a sane location.
inline void RunParseInput(const uint8_t* data, size_t size) {
  if (size == 0) return;
  spec::Format format = (data[0] & 1) != 0 ? spec::Format::kN8n : spec::Format::kNative;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<spec::SpecError> errors;
  Result<spec::WorkflowDef> def = spec::ParseWorkflow(text, format, &errors);
  auto fail = [](const char* what) {
    std::fprintf(stderr, "parser contract broken: %s\n", what);
    std::abort();
  };
  if (def.ok()) {
    if (!errors.empty()) fail("success with errors");
    if (def.value().tasks.empty()) fail("success without tasks");
    for (const spec::TaskDef& task : def.value().tasks) {
      if (task.task_name.empty() || task.task_type.empty()) fail("task without name or type");
    }
  } else {
    if (errors.empty()) fail("failure without errors");
    for (const spec::SpecError& e : errors) {
      if (e.message.empty()) fail("error without message");
      if (e.line < 0 || e.column < 0 || (e.line == 0) != (e.column == 0)) fail("bad location");
    }
  }
}

}  // namespace flowmesh::fuzz
