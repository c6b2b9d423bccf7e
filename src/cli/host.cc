#include "cli/host.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/process.h"

namespace flowmesh::cli {

namespace fs = std::filesystem;

std::string TailLines(const std::string& text, size_t n) {
  if (n == 0 || text.empty()) return "";
  size_t end = text.size();
  if (text[end - 1] == '\n') --end;  // the final newline does not start a line
  size_t pos = end;
  size_t found = 0;
  while (pos > 0) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) return text;
    if (++found == n) return text.substr(nl + 1);
    pos = nl;
  }
  return text;
}

std::string TailFile(const std::string& path, size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  constexpr std::streamoff kMax = 1 << 20;
  std::streamoff start = size > kMax ? size - kMax : 0;
  in.seekg(start);
  std::string text(static_cast<size_t>(size - start), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return TailLines(text, n);
}

pid_t ReadPidFile(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  return static_cast<pid_t>(pid);
}

Status WritePidFile(const std::string& path, pid_t pid) {
  std::ofstream out(path, std::ios::trunc);
  out << pid << "\n";
  out.close();
  if (!out) return Internal("cannot write " + path);
  return Status::Ok();
}

bool IsRunning(pid_t pid) {
  if (!ProcessAlive(pid)) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  size_t rp = stat.rfind(')');
  if (rp == std::string::npos || rp + 2 >= stat.size()) return true;
  char state = stat[rp + 2];
  return state != 'Z' && state != 'X';
}

bool ProcessMatches(pid_t pid, const std::string& needle) {
  if (!IsRunning(pid)) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return cmdline.find(needle) != std::string::npos;
}

namespace {

// pid → parent pid for every process, from /proc/<pid>/stat.
std::map<pid_t, pid_t> ParentMap() {
  std::map<pid_t, pid_t> parents;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return parents;
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    std::getline(in, stat);
    // "pid (comm) state ppid …": comm may contain spaces and parentheses.
    size_t rp = stat.rfind(')');
    if (rp == std::string::npos) continue;
    std::istringstream rest(stat.substr(rp + 1));
    std::string state;
    long ppid = 0;
    if (rest >> state >> ppid) parents[static_cast<pid_t>(pid)] = static_cast<pid_t>(ppid);
  }
  ::closedir(dir);
  return parents;
}

}  // namespace

std::vector<pid_t> Descendants(pid_t root) {
  auto parents = ParentMap();
  std::vector<pid_t> out;
  std::set<pid_t> seen{root};
  std::vector<pid_t> frontier{root};
  while (!frontier.empty()) {
    std::vector<pid_t> next;
    for (const auto& [pid, ppid] : parents) {
      if (std::find(frontier.begin(), frontier.end(), ppid) != frontier.end() &&
          seen.insert(pid).second) {
        next.push_back(pid);
        out.push_back(pid);
      }
    }
    frontier = std::move(next);
  }
  return out;
}

std::vector<pid_t> ProcessesWithEnv(const std::string& entry) {
  std::vector<pid_t> out;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  // Never this process or its ancestors (the shell that runs `stack down` may carry it).
  std::set<pid_t> excluded;
  auto parents = ParentMap();
  for (pid_t p = ::getpid(); p > 0 && excluded.insert(p).second;) {
    auto it = parents.find(p);
    p = it == parents.end() ? 0 : it->second;
  }
  while (dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || pid <= 0) continue;
    if (excluded.count(static_cast<pid_t>(pid))) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/environ", std::ios::binary);
    if (!in) continue;  // another user's process
    std::string var;
    while (std::getline(in, var, '\0')) {
      if (var == entry) {
        if (IsRunning(static_cast<pid_t>(pid))) out.push_back(static_cast<pid_t>(pid));
        break;
      }
    }
  }
  ::closedir(dir);
  return out;
}

bool PortInUse(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool busy = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0;
  ::close(fd);
  return busy;
}

std::string FindExecutable(const std::string& name, const std::string& path_env) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  std::stringstream ss(path_env);
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
  }
  return "";
}

Result<std::vector<std::string>> ParseGpuTargets(const std::string& spec, int available) {
  std::vector<std::string> out;
  if (spec == "all") {
    if (available <= 0) return InvalidArgument("--targets all: no NVIDIA GPU found");
    for (int i = 0; i < available; ++i) out.push_back(std::to_string(i));
    return out;
  }
  std::stringstream ss(spec);
  std::string item;
  std::set<std::string> seen;
  while (std::getline(ss, item, ',')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument("--targets: '" + item + "' is not a GPU index (use 0,1 or all)");
    }
    if (seen.insert(item).second) out.push_back(item);
  }
  if (out.empty()) return InvalidArgument("--targets: no GPU given (use 0,1 or all)");
  return out;
}

}  // namespace flowmesh::cli
