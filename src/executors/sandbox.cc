#include "executors/sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

namespace flowmesh::executors {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr size_t kMaxLineBytes = 16 << 10;  // longer lines are split
constexpr auto kPollSlice = std::chrono::milliseconds(50);
constexpr auto kDrainGrace = std::chrono::seconds(5);  // output still arriving after the end
constexpr int kStatusFdInChild = 3;

// Files of /etc a sandboxed program may need: the dynamic loader, users and groups (for
// getpwuid), time zone, certificates and name resolution.
constexpr std::array<const char*, 14> kEtcFiles = {
    "ld.so.cache", "ld.so.conf",    "ld.so.conf.d", "alternatives", "passwd",
    "group",       "nsswitch.conf", "localtime",    "ssl",          "ca-certificates",
    "hosts",       "resolv.conf",   "host.conf",    "gai.conf"};
// Top-level system folders: symlinks into /usr on merged-/usr systems, else bound as is.
constexpr std::array<const char*, 6> kSystemDirs = {"bin",   "sbin",  "lib",
                                                    "lib32", "lib64", "libx32"};

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.Release()) {}
  Fd& operator=(Fd&& other) noexcept {
    Reset(other.Release());
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// A pipe whose ends live above the standard descriptors, so the child's dup2 onto 0-3
// never clobbers an end it still needs.
Status MakePipe(Fd* read_end, Fd* write_end) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + strerror(errno));
  Fd r(fds[0]), w(fds[1]);
  *read_end = Fd(fcntl(r.get(), F_DUPFD_CLOEXEC, 10));
  *write_end = Fd(fcntl(w.get(), F_DUPFD_CLOEXEC, 10));
  if (read_end->get() < 0 || write_end->get() < 0) {
    return Internal(std::string("pipe: ") + strerror(errno));
  }
  return Status::Ok();
}

std::string LimitArg(const char* name, uint64_t soft, uint64_t hard) {
  return std::string("--") + name + "=" + std::to_string(soft) + ":" + std::to_string(hard);
}

// Splits a stream into lines for the sink and keeps the stderr tail.
class LineSplitter {
 public:
  LineSplitter(SandboxStream stream, const SandboxLineSink& sink, size_t* budget,
               SandboxOutcome* outcome)
      : stream_(stream), sink_(sink), budget_(budget), outcome_(outcome) {}

  void Feed(std::string_view data) {
    for (char c : data) {
      if (c == '\n') {
        Emit();
      } else {
        buffer_.push_back(c);
        if (buffer_.size() >= kMaxLineBytes) Emit();
      }
    }
  }
  void Finish() {
    if (!buffer_.empty()) Emit();
  }

 private:
  void Emit() {
    std::string line = std::move(buffer_);
    buffer_.clear();
    if (stream_ == SandboxStream::kStderr) {
      outcome_->stderr_tail.push_back(line);
      if (outcome_->stderr_tail.size() > SandboxOutcome::kStderrTailLines) {
        outcome_->stderr_tail.pop_front();
      }
    }
    if (line.size() + 1 > *budget_) {
      outcome_->dropped_output_bytes += line.size() + 1;
      *budget_ = 0;
      return;
    }
    *budget_ -= line.size() + 1;
    if (sink_) sink_(stream_, std::move(line));
  }

  SandboxStream stream_;
  const SandboxLineSink& sink_;
  size_t* budget_;
  SandboxOutcome* outcome_;
  std::string buffer_;
};

// Owns the NUL-terminated copies execve needs, built before fork (nothing allocates in
// the child).
struct ExecArgs {
  std::vector<std::string> storage;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;

  ExecArgs(std::vector<std::string> args, const std::map<std::string, std::string>& env)
      : storage(std::move(args)) {
    for (auto& s : storage) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (const auto& [k, v] : env) env_storage.push_back(k + "=" + v);
    for (auto& s : env_storage) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

void WriteStderr(const char* message) {
  ssize_t ignored = write(2, message, strlen(message));
  (void)ignored;
}

// In the forked child: only async-signal-safe calls from here on.
[[noreturn]] void ExecChild(const ExecArgs& exec, int stdin_fd, int stdout_fd, int stderr_fd,
                            int status_fd, bool drop_root, uid_t uid, gid_t gid) {
  setpgid(0, 0);
  if (dup2(stdin_fd, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0 ||
      dup2(status_fd, kStatusFdInChild) < 0) {
    _exit(126);
  }
  // Descriptors the worker opened without O_CLOEXEC must not reach the sandbox.
  syscall(SYS_close_range, kStatusFdInChild + 1, ~0U, 0);
  if (drop_root) {
    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
      WriteStderr("sandbox: cannot switch to the sandbox uid\n");
      _exit(126);
    }
  }
  execve(exec.argv[0], exec.argv.data(), exec.envp.data());
  WriteStderr("sandbox: cannot execute bwrap\n");
  _exit(127);
}

SandboxOutcome::End Decode(int wait_status, SandboxOutcome* outcome) {
  int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status)
                                    : 128 + (WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0);
  // bwrap reports a command killed by signal N as exit status 128+N.
  if (code > 128 && code < 128 + 65) {
    outcome->signal = code - 128;
    return SandboxOutcome::End::kSignaled;
  }
  outcome->exit_code = code;
  return SandboxOutcome::End::kExited;
}

std::string JoinTail(const std::deque<std::string>& tail) {
  std::string text;
  for (const auto& line : tail) {
    if (!text.empty()) text += "\n";
    text += line;
  }
  return text;
}

// Checks what Run needs and returns the sandbox's whole environment.
Result<std::map<std::string, std::string>> CheckedEnvironment(const SandboxRuntime& runtime,
                                                              const SandboxOptions& options) {
  if (access(runtime.bwrap.c_str(), X_OK) != 0) {
    return FailedPrecondition("sandbox: bubblewrap is not installed (" + runtime.bwrap +
                              " is missing; install the Debian package 'bubblewrap')");
  }
  if (access(runtime.prlimit.c_str(), X_OK) != 0) {
    return FailedPrecondition("sandbox: " + runtime.prlimit +
                              " is missing (Debian package 'util-linux')");
  }
  if (options.argv.empty() || options.argv[0].empty() || options.argv[0][0] != '/') {
    return InvalidArgument("sandbox: the command must be an absolute path");
  }
  if (options.home.empty() || !fs::is_directory(options.home)) {
    return InvalidArgument("sandbox: home folder '" + options.home + "' does not exist");
  }
  std::map<std::string, std::string> env = options.env;
  env["HOME"] = kSandboxHome;
  env["TMPDIR"] = "/tmp";
  if (!env.count("PATH")) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& [k, v] : env) {
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos ||
        v.find('\0') != std::string::npos) {
      return InvalidArgument("sandbox: invalid environment variable name '" + k + "'");
    }
  }
  return env;
}

}  // namespace

bool Sandbox::DropsRoot() const { return geteuid() == 0 && runtime_.uid_when_root != 0; }
uid_t Sandbox::SandboxUid() const { return DropsRoot() ? runtime_.uid_when_root : geteuid(); }
gid_t Sandbox::SandboxGid() const { return DropsRoot() ? runtime_.gid_when_root : getegid(); }

Status Sandbox::GrantAccess(const std::string& path) const {
  if (!DropsRoot()) return Status::Ok();
  auto chown_one = [&](const fs::path& p) -> Status {
    if (lchown(p.c_str(), runtime_.uid_when_root, runtime_.gid_when_root) != 0) {
      return Internal("chown " + p.string() + ": " + strerror(errno));
    }
    return Status::Ok();
  };
  FM_RETURN_IF_ERROR(chown_one(path));
  std::error_code ec;
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    FM_RETURN_IF_ERROR(chown_one(it->path()));
  }
  if (ec) return Internal("chown " + path + ": " + ec.message());
  return Status::Ok();
}

std::vector<std::string> Sandbox::CommandLine(const SandboxOptions& options, int status_fd) const {
  std::vector<std::string> a = {
      runtime_.bwrap,  "--unshare-user",       "--unshare-ipc",    "--unshare-pid",
      "--unshare-uts", "--unshare-cgroup-try", "--disable-userns", "--die-with-parent",
      "--new-session", "--hostname",           "sandbox"};
  if (!options.network) a.push_back("--unshare-net");
  a.insert(a.end(), {"--ro-bind", "/usr", "/usr"});
  for (const char* name : kSystemDirs) {
    fs::path host = fs::path("/") / name;
    std::error_code ec;
    auto status = fs::symlink_status(host, ec);
    if (ec) continue;
    if (fs::is_symlink(status)) {
      a.insert(a.end(), {"--symlink", fs::read_symlink(host, ec).string(), host.string()});
    } else if (fs::is_directory(status)) {
      a.insert(a.end(), {"--ro-bind", host.string(), host.string()});
    }
  }
  for (const char* name : kEtcFiles) {
    std::string path = std::string("/etc/") + name;
    a.insert(a.end(), {"--ro-bind-try", path, path});
  }
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev"});
  if (options.limits.file_size > 0) {
    a.insert(a.end(), {"--size", std::to_string(options.limits.file_size)});
  }
  a.insert(a.end(), {"--tmpfs", "/tmp", "--bind", options.home, kSandboxHome});
  for (const SandboxBind& bind : options.binds) {
    a.insert(a.end(), {bind.writable ? "--bind" : "--ro-bind", bind.source, bind.target});
  }
  a.insert(a.end(), {"--chdir", kSandboxHome, "--remount-ro", "/", "--json-status-fd",
                     std::to_string(status_fd), "--", runtime_.prlimit});
  const SandboxLimits& l = options.limits;
  if (l.cpu_seconds > 0) a.push_back(LimitArg("cpu", l.cpu_seconds, l.cpu_seconds + 2));
  if (l.address_space > 0) a.push_back(LimitArg("as", l.address_space, l.address_space));
  if (l.processes > 0) a.push_back(LimitArg("nproc", l.processes, l.processes));
  if (l.file_size > 0) a.push_back(LimitArg("fsize", l.file_size, l.file_size));
  a.push_back("--");
  a.insert(a.end(), options.argv.begin(), options.argv.end());
  return a;
}

Result<SandboxOutcome> Sandbox::Run(const SandboxOptions& options,
                                    const std::atomic<bool>& cancelled,
                                    const SandboxLineSink& sink) const {
  FM_ASSIGN_OR_RETURN(auto env, CheckedEnvironment(runtime_, options));
  ExecArgs exec(CommandLine(options, kStatusFdInChild), env);

  Fd out_r, out_w, err_r, err_w, st_r, st_w;
  FM_RETURN_IF_ERROR(MakePipe(&out_r, &out_w));
  FM_RETURN_IF_ERROR(MakePipe(&err_r, &err_w));
  FM_RETURN_IF_ERROR(MakePipe(&st_r, &st_w));
  Fd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (devnull.get() < 0) return Internal(std::string("/dev/null: ") + strerror(errno));
  const bool drop_root = DropsRoot();

  pid_t pid = fork();
  if (pid < 0) return Internal(std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    ExecChild(exec, devnull.get(), out_w.get(), err_w.get(), st_w.get(), drop_root,
              runtime_.uid_when_root, runtime_.gid_when_root);
  }
  setpgid(pid, pid);  // also done by the child; whichever runs first wins the race
  out_w.Reset();
  err_w.Reset();
  st_w.Reset();
  Fd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));

  SandboxOutcome outcome;
  size_t budget = options.max_output_bytes;
  LineSplitter out_lines(SandboxStream::kStdout, sink, &budget, &outcome);
  LineSplitter err_lines(SandboxStream::kStderr, sink, &budget, &outcome);
  std::string status_text;
  std::optional<SandboxOutcome::End> stopped;  // kTimedOut or kCancelled once killed
  std::optional<int> wait_status;
  auto deadline =
      options.timeout.count() > 0 ? Clock::now() + options.timeout : Clock::time_point::max();
  auto drain_until = Clock::time_point::max();

  auto reap = [&](int flags) {
    int st = 0;
    pid_t r = waitpid(pid, &st, flags);
    if (r == pid) wait_status = st;
  };
  auto kill_group = [&](SandboxOutcome::End why) {
    stopped = why;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
  };

  char chunk[8192];
  while (out_r.get() >= 0 || err_r.get() >= 0 || st_r.get() >= 0 || !wait_status) {
    auto now = Clock::now();
    if (!stopped && !wait_status) {
      if (cancelled.load())
        kill_group(SandboxOutcome::End::kCancelled);
      else if (now >= deadline)
        kill_group(SandboxOutcome::End::kTimedOut);
    }
    if (wait_status && drain_until == Clock::time_point::max()) drain_until = now + kDrainGrace;
    if (now >= drain_until) break;  // something still holds the pipes: stop reading

    std::array<pollfd, 4> fds{};
    std::array<Fd*, 3> streams = {&out_r, &err_r, &st_r};
    for (size_t i = 0; i < 3; ++i) fds[i] = {streams[i]->get(), POLLIN, 0};
    fds[3] = {wait_status ? -1 : pidfd.get(), POLLIN, 0};
    int ready = poll(fds.data(), fds.size(), static_cast<int>(kPollSlice.count()));
    if (ready < 0 && errno != EINTR) return Internal(std::string("poll: ") + strerror(errno));
    if (pidfd.get() < 0 && !wait_status) reap(WNOHANG);  // no pidfd: poll the child
    if (ready <= 0) continue;
    if (fds[3].revents != 0) reap(0);
    for (size_t i = 0; i < 3; ++i) {
      if (fds[i].revents == 0) continue;
      ssize_t n = read(streams[i]->get(), chunk, sizeof chunk);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        streams[i]->Reset();
        continue;
      }
      std::string_view data(chunk, static_cast<size_t>(n));
      if (i == 0) out_lines.Feed(data);
      if (i == 1) err_lines.Feed(data);
      if (i == 2 && status_text.size() < 4096) status_text.append(data);
    }
  }
  if (!wait_status) {
    kill(-pid, SIGKILL);
    reap(0);
  }
  out_lines.Finish();
  err_lines.Finish();

  if (stopped) {
    outcome.end = *stopped;
    return outcome;
  }
  outcome.end = Decode(wait_status.value_or(0), &outcome);
  // bwrap reports its own setup failures (a mount it could not make) on stderr and exits 1.
  bool setup_failed =
      status_text.find("\"child-pid\"") == std::string::npos ||
      (outcome.end == SandboxOutcome::End::kExited && outcome.exit_code == 1 &&
       !outcome.stderr_tail.empty() && outcome.stderr_tail.back().rfind("bwrap: ", 0) == 0);
  if (setup_failed) return Internal("sandbox setup failed: " + JoinTail(outcome.stderr_tail));
  return outcome;
}

Status Sandbox::Probe() const {
  std::error_code ec;
  fs::path home =
      fs::temp_directory_path(ec) / ("flowmesh-probe-" + std::to_string(getpid()) + "-" +
                                     std::to_string(Clock::now().time_since_epoch().count()));
  if (ec || !fs::create_directory(home, ec)) {
    return FailedPrecondition("sandbox probe: cannot create " + home.string());
  }
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } cleanup{home};
  FM_RETURN_IF_ERROR(GrantAccess(home.string()));
  SandboxOptions options;
  options.argv = {"/usr/bin/true"};
  options.home = home.string();
  options.timeout = std::chrono::seconds(30);
  std::atomic<bool> never{false};
  auto outcome = Run(options, never, nullptr);
  if (!outcome.ok()) return FailedPrecondition(outcome.status().message());
  if (outcome->end != SandboxOutcome::End::kExited || outcome->exit_code != 0) {
    return FailedPrecondition("sandbox probe failed: " + JoinTail(outcome->stderr_tail));
  }
  return Status::Ok();
}

}  // namespace flowmesh::executors
