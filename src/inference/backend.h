// What the engine of this build can run on. A worker started as `gpu` from a build without
// a GPU backend runs every layer on the CPU, so it must not advertise GPUs (placement would
// send it GPU work it runs slowly, and bill GPU hours for it).
#pragma once

namespace flowmesh::inference {

// Whether llama.cpp in this build can offload layers to a GPU (a CUDA build).
bool GpuOffloadSupported();
// "cuda" when GpuOffloadSupported(), else "cpu".
const char* BackendName();

}  // namespace flowmesh::inference
