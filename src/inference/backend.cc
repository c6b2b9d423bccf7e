#include "inference/backend.h"

#include <llama.h>

namespace flowmesh::inference {

bool GpuOffloadSupported() { return llama_supports_gpu_offload(); }

const char* BackendName() { return GpuOffloadSupported() ? "cuda" : "cpu"; }

}  // namespace flowmesh::inference
