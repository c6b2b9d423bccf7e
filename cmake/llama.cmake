# llama.cpp, built from the source tree that scripts/fetch-llama caches (node-llama-cpp's
# bundle). Only the `llama` and ggml static libraries are built (never llama-common, which
# carries its own HTTP stack); only the worker's inference library links them.
if(DEFINED ENV{FLOWMESH_CACHE_DIR})
  set(_fm_llama_default "$ENV{FLOWMESH_CACHE_DIR}/llama.cpp-3.21.1")
else()
  set(_fm_llama_default "/var/cache/flowmesh/llama.cpp-3.21.1")
endif()
set(FLOWMESH_LLAMA_SOURCE_DIR "${_fm_llama_default}" CACHE PATH "llama.cpp source tree")
if(NOT EXISTS "${FLOWMESH_LLAMA_SOURCE_DIR}/include/llama.h")
  message(FATAL_ERROR "llama.cpp source not found in ${FLOWMESH_LLAMA_SOURCE_DIR}: "
                      "run scripts/install-deps (or scripts/fetch-llama)")
endif()
# The CUDA backend: auto builds it when nvcc is found (PATH or /usr/local/cuda/bin).
set(FLOWMESH_CUDA "auto" CACHE STRING "llama.cpp CUDA backend for the worker: auto | ON | OFF")
if(FLOWMESH_CUDA STREQUAL "auto")
  find_program(FLOWMESH_NVCC nvcc PATHS /usr/local/cuda/bin)
  if(FLOWMESH_NVCC)
    set(_fm_cuda ON)
    set(CMAKE_CUDA_COMPILER "${FLOWMESH_NVCC}" CACHE FILEPATH "" FORCE)
  else()
    set(_fm_cuda OFF)
  endif()
else()
  set(_fm_cuda ${FLOWMESH_CUDA})
endif()
message(STATUS "FlowMesh: llama.cpp CUDA backend: ${_fm_cuda} (FLOWMESH_CUDA=${FLOWMESH_CUDA})")

set(LLAMA_BUILD_COMMON OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TESTS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_TOOLS OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_EXAMPLES OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_SERVER OFF CACHE BOOL "" FORCE)
set(LLAMA_BUILD_APP OFF CACHE BOOL "" FORCE)
set(LLAMA_OPENSSL OFF CACHE BOOL "" FORCE)
set(LLAMA_ALL_WARNINGS OFF CACHE BOOL "" FORCE)
set(GGML_NATIVE OFF CACHE BOOL "" FORCE)
set(GGML_BLAS OFF CACHE BOOL "" FORCE)
# llamafile's sgemm (CPU) makes batched matrix products faster, but its tiles sum in an
# order that depends on how many tokens share a batch: greedy decoding of a sequence then
# differs alone and inside a batch, and a reused KV prefix differs from a fresh one (on
# random-weight test models within 64 tokens). ggml's own kernels compute each output
# element with one dot product over the whole row, so results are batch-invariant, which
# equal-work-equal-result (de-duplication, greedy determinism) relies on. Off by default;
# CPU-only fleets that prefer throughput may turn it on.
option(FLOWMESH_LLAMAFILE "CPU inference: llamafile sgemm (faster batches, not batch-invariant)" OFF)
set(GGML_LLAMAFILE ${FLOWMESH_LLAMAFILE} CACHE BOOL "" FORCE)
set(GGML_CUDA ${_fm_cuda} CACHE BOOL "" FORCE)

# Static libraries, whatever the parent project builds.
set(_fm_shared ${BUILD_SHARED_LIBS})
set(BUILD_SHARED_LIBS OFF)
add_subdirectory(${FLOWMESH_LLAMA_SOURCE_DIR} ${CMAKE_BINARY_DIR}/llama.cpp EXCLUDE_FROM_ALL SYSTEM)
set(BUILD_SHARED_LIBS ${_fm_shared})
