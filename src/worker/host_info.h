// What a machine offers: CPU cores, memory and (when nvidia-smi is present) GPUs.
// Shared by the worker (advertised in Register) and the supervisor (node registration).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace flowmesh::worker {

struct GpuInfo {
  int index = 0;
  std::string name;
  int64_t memory_mb = 0;
};

struct HostInfo {
  std::string hostname;
  int cpu_cores = 1;
  int64_t memory_mb = 0;
  std::vector<GpuInfo> gpus;
};

// Detects the host. GPUs are queried only when `detect_gpus` and nvidia-smi is on PATH;
// `cuda_devices` ("0,2"; empty = all) filters them by index.
HostInfo DetectHost(bool detect_gpus, const std::string& cuda_devices = "");

// Parsers, exposed for tests.
int64_t ParseMemTotalMb(const std::string& proc_meminfo);
// Lines of `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits`.
std::vector<GpuInfo> ParseNvidiaSmiCsv(const std::string& text);
std::vector<std::string> SplitList(const std::string& text, char separator = ',');

nlohmann::json GpusToJson(const std::vector<GpuInfo>& gpus);

}  // namespace flowmesh::worker
