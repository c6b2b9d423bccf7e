#include "common/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

extern char** environ;

namespace flowmesh {

namespace {

// Moves a close-on-exec descriptor that landed on 0, 1 or 2 (the parent runs with some of
// its standard descriptors closed) above them, so that the child's dup2() onto 0-2 cannot
// clobber it and it keeps close-on-exec. Returns the descriptor to use (-1 on failure).
int AboveStdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

}  // namespace

Result<pid_t> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return InvalidArgument("spawn: empty argv");
  // Build argv/envp before fork: only async-signal-safe calls after it.
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : options.env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  int log_fd = -1;
  if (!options.log_file.empty()) {
    log_fd = AboveStdio(
        ::open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (log_fd < 0) {
      return Internal("cannot open log file " + options.log_file + ": " + std::strerror(errno));
    }
  }
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    if (log_fd >= 0) ::close(log_fd);
    return Internal(std::string("pipe: ") + std::strerror(errno));
  }
  err_pipe[0] = AboveStdio(err_pipe[0]);
  err_pipe[1] = AboveStdio(err_pipe[1]);
  if (err_pipe[0] < 0 || err_pipe[1] < 0) {
    int e = errno;
    if (log_fd >= 0) ::close(log_fd);
    if (err_pipe[0] >= 0) ::close(err_pipe[0]);
    if (err_pipe[1] >= 0) ::close(err_pipe[1]);
    return Internal(std::string("pipe: ") + std::strerror(e));
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    if (log_fd >= 0) ::close(log_fd);
    ::close(err_pipe[0]);
    ::close(err_pipe[1]);
    return Internal(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    if (options.new_session) ::setsid();
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (log_fd >= 0) {
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
    }
    // Inherit nothing else: a listening socket left open in a long-lived child (the
    // supervisor, a worker) would keep the parent's port bound after the parent dies.
    // err_pipe[1] stays open (it is close-on-exec) to report an exec failure.
    ::close_range(3, static_cast<unsigned>(err_pipe[1]) - 1, 0);
    ::close_range(static_cast<unsigned>(err_pipe[1]) + 1, ~0U, 0);
    ::execve(argv[0], argv.data(), envp.data());
    int e = errno;
    [[maybe_unused]] ssize_t n = ::write(err_pipe[1], &e, sizeof(e));
    ::_exit(127);
  }
  ::close(err_pipe[1]);
  if (log_fd >= 0) ::close(log_fd);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(err_pipe[0]);
  if (n == sizeof(child_errno)) {
    ::waitpid(pid, nullptr, 0);
    return Internal("cannot execute " + options.argv[0] + ": " + std::strerror(child_errno));
  }
  return pid;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  int status = 0;
  if (::waitpid(pid, &status, WNOHANG) == pid) return false;
  if (::kill(pid, 0) != 0) return false;
  // A zombie that is not our child (its parent reaps slowly) still answers kill(0).
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto paren = line.rfind(')');
  return paren == std::string::npos || paren + 2 >= line.size() || line[paren + 2] != 'Z';
}

bool ReapIfExited(pid_t pid, int* wait_status) {
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  if (r == pid) {
    if (wait_status) *wait_status = status;
    return true;
  }
  if (r < 0 && errno == ECHILD) return ::kill(pid, 0) != 0;
  return false;
}

void TerminateProcess(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!ProcessAlive(pid)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

std::string ExecutableDir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return ".";
  return p.parent_path().string();
}

}  // namespace flowmesh
