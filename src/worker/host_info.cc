#include "worker/host_info.h"

#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace flowmesh::worker {
namespace {

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  for (const auto& dir : SplitList(path, ':')) {
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::path(dir) / program, ec)) return true;
  }
  return false;
}

std::string RunCommand(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  ::pclose(pipe);
  return out;
}

}  // namespace

std::vector<std::string> SplitList(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, separator)) {
    part = Trim(part);
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

int64_t ParseMemTotalMb(const std::string& proc_meminfo) {
  std::istringstream in(proc_meminfo);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemTotal:", 0) == 0) {
      return std::strtoll(line.c_str() + 9, nullptr, 10) / 1024;  // kB -> MiB
    }
  }
  return 0;
}

std::vector<GpuInfo> ParseNvidiaSmiCsv(const std::string& text) {
  std::vector<GpuInfo> gpus;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    std::stringstream ss(line);
    std::string field;
    while (std::getline(ss, field, ',')) fields.push_back(Trim(field));
    if (fields.size() < 3 || fields[0].empty()) continue;
    char* end = nullptr;
    long index = std::strtol(fields[0].c_str(), &end, 10);
    if (end == fields[0].c_str()) continue;
    GpuInfo gpu;
    gpu.index = static_cast<int>(index);
    gpu.name = fields[1];
    gpu.memory_mb = std::strtoll(fields[2].c_str(), nullptr, 10);
    gpus.push_back(gpu);
  }
  return gpus;
}

HostInfo DetectHost(bool detect_gpus, const std::string& cuda_devices) {
  HostInfo info;
  char name[256] = {0};
  if (::gethostname(name, sizeof(name) - 1) == 0) info.hostname = name;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) {
    info.cpu_cores = CPU_COUNT(&set);
  } else {
    info.cpu_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  std::ifstream meminfo("/proc/meminfo");
  std::stringstream buf;
  buf << meminfo.rdbuf();
  info.memory_mb = ParseMemTotalMb(buf.str());
  if (detect_gpus && OnPath("nvidia-smi")) {
    std::vector<GpuInfo> all = ParseNvidiaSmiCsv(RunCommand(
        "nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader,nounits "
        "2>/dev/null"));
    std::set<int> wanted;
    for (const auto& d : SplitList(cuda_devices)) wanted.insert(std::atoi(d.c_str()));
    for (const auto& gpu : all) {
      if (wanted.empty() || wanted.count(gpu.index)) info.gpus.push_back(gpu);
    }
  }
  return info;
}

nlohmann::json GpusToJson(const std::vector<GpuInfo>& gpus) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& g : gpus) {
    out.push_back({{"index", g.index}, {"name", g.name}, {"memory_mb", g.memory_mb}});
  }
  return out;
}

}  // namespace flowmesh::worker
