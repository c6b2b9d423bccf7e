#include "training/bridge_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

extern char** environ;

namespace flowmesh::training {
namespace {

constexpr int kPollSliceMs = 50;                       // how often `cancelled` is looked at
constexpr size_t kMaxLineBytes = 1 << 20;              // longer lines are split
constexpr auto kDrainGrace = std::chrono::seconds(2);  // output read after the child exited

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// Owns the NUL-terminated strings execve needs, built before fork (the child allocates
// nothing).
struct ExecArgs {
  std::vector<std::string> args;
  std::vector<char*> argv;
  std::vector<std::string> env_storage;
  std::vector<char*> envp;

  explicit ExecArgs(const BridgeCommand& command) : args(command.argv) {
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::map<std::string, std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string_view entry(*e);
      size_t eq = entry.find('=');
      if (eq == std::string_view::npos) continue;
      env[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
    }
    for (const auto& [k, v] : command.env) env[k] = v;
    for (const auto& [k, v] : env) env_storage.push_back(k + "=" + v);
    for (auto& s : env_storage) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

void WriteStderr(const char* message) {
  ssize_t ignored = write(2, message, strlen(message));
  (void)ignored;
}

// Splits a stream into lines.
class LineBuffer {
 public:
  void Feed(std::string_view data, const BridgeProcess::LineSink& sink) {
    for (char c : data) {
      if (c == '\n') {
        Emit(sink);
      } else {
        buffer_.push_back(c);
        if (buffer_.size() >= kMaxLineBytes) Emit(sink);
      }
    }
  }
  void Finish(const BridgeProcess::LineSink& sink) {
    if (!buffer_.empty()) Emit(sink);
  }

 private:
  void Emit(const BridgeProcess::LineSink& sink) {
    std::string line = std::move(buffer_);
    buffer_.clear();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (sink) sink(std::move(line));
  }
  std::string buffer_;
};

// Reads what is there on `fd`; returns false at end of file (or a read error).
bool ReadSome(int fd, LineBuffer* buffer, const BridgeProcess::LineSink& sink) {
  char chunk[16384];
  ssize_t n = read(fd, chunk, sizeof chunk);
  if (n > 0) {
    buffer->Feed(std::string_view(chunk, static_cast<size_t>(n)), sink);
    return true;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  return false;
}

}  // namespace

std::string BridgeExit::Describe() const {
  if (signaled) {
    const char* name = strsignal(signal);
    return "was killed by signal " + std::to_string(signal) +
           (name ? std::string(" (") + name + ")" : "");
  }
  return "exited with code " + std::to_string(exit_code);
}

Result<std::unique_ptr<BridgeProcess>> BridgeProcess::Start(const BridgeCommand& command) {
  if (command.argv.empty() || command.argv[0].empty() || command.argv[0][0] != '/') {
    return InvalidArgument("bridge: the program must be an absolute path");
  }
  if (access(command.argv[0].c_str(), X_OK) != 0) {
    return FailedPrecondition("bridge: " + command.argv[0] + " is not an executable");
  }
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + strerror(errno));
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]);
    return Internal(std::string("pipe: ") + strerror(errno));
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    return Internal(std::string("pipe: ") + strerror(errno));
  }
  ExecArgs exec(command);
  const char* dir = command.working_dir.empty() ? nullptr : command.working_dir.c_str();
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    return Internal(std::string("fork: ") + strerror(errno));
  }
  if (pid == 0) {
    // In the child: async-signal-safe calls only.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // the worker died before prctl took effect
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) _exit(126);
    syscall(SYS_close_range, 3U, ~0U, 0);
    if (dir != nullptr && chdir(dir) != 0) {
      WriteStderr("bridge: cannot enter the working directory\n");
      _exit(126);
    }
    // The worker blocks signals on its threads (it takes them with sigwait); a trainer
    // must see SIGTERM/SIGINT as usual.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    execve(exec.argv[0], exec.argv.data(), exec.envp.data());
    WriteStderr("bridge: cannot execute the trainer\n");
    _exit(127);
  }
  setpgid(pid, pid);  // also here, so Kill works even before the child ran setpgid
  close(in[0]), close(out[1]), close(err[1]);
  std::unique_ptr<BridgeProcess> process(new BridgeProcess());
  process->pid_ = pid;
  process->stdin_fd_ = in[1];
  process->stdout_fd_ = out[0];
  process->stderr_fd_ = err[0];
  return process;
}

BridgeProcess::~BridgeProcess() {
  if (!reaped_ && pid_ > 0) {
    Kill();
    int status = 0;
    Reap(&status);
  }
  CloseFd(&stdin_fd_);
  CloseFd(&stdout_fd_);
  CloseFd(&stderr_fd_);
}

Status BridgeProcess::Send(std::string_view line) {
  if (stdin_fd_ < 0) return Unavailable("bridge: the trainer's input is closed");
  std::string data(line);
  data.push_back('\n');
  size_t done = 0;
  while (done < data.size()) {
    // MSG_NOSIGNAL does not apply to pipes; the worker ignores SIGPIPE, so EPIPE comes back.
    ssize_t n = write(stdin_fd_, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Unavailable(std::string("bridge: write to the trainer: ") + strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

void BridgeProcess::CloseInput() { CloseFd(&stdin_fd_); }

void BridgeProcess::Kill() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);  // the group; ESRCH once it is gone
  if (!reaped_) kill(pid_, SIGKILL);
}

void BridgeProcess::Reap(int* wait_status) {
  while (!reaped_) {
    pid_t r = waitpid(pid_, wait_status, 0);
    if (r == pid_ || (r < 0 && errno != EINTR)) reaped_ = true;
  }
}

Result<BridgeExit> BridgeProcess::Pump(const std::atomic<bool>& cancelled,
                                       const LineSink& on_stdout, const LineSink& on_stderr) {
  BridgeExit exit;
  LineBuffer out_buffer, err_buffer;
  LineSink err_sink = [&](std::string line) {
    exit.stderr_tail.push_back(line);
    if (exit.stderr_tail.size() > BridgeExit::kStderrTailLines) exit.stderr_tail.pop_front();
    if (on_stderr) on_stderr(std::move(line));
  };
  bool out_open = stdout_fd_ >= 0, err_open = stderr_fd_ >= 0;
  int wait_status = 0;
  bool exited = false;
  std::chrono::steady_clock::time_point drain_deadline;
  while (true) {
    if (cancelled.load()) {
      Kill();
      Reap(&wait_status);
      return Cancelled("training cancelled");
    }
    if (!exited) {
      pid_t r = waitpid(pid_, &wait_status, WNOHANG);
      if (r == pid_) {
        exited = reaped_ = true;
        kill(-pid_, SIGKILL);  // whatever it left running in its group
        drain_deadline = std::chrono::steady_clock::now() + kDrainGrace;
      }
    }
    if (exited &&
        ((!out_open && !err_open) || std::chrono::steady_clock::now() >= drain_deadline)) {
      break;
    }
    pollfd fds[2];
    nfds_t n = 0;
    if (out_open) fds[n++] = {stdout_fd_, POLLIN, 0};
    if (err_open) fds[n++] = {stderr_fd_, POLLIN, 0};
    if (n == 0) {
      // Both pipes closed before the exit: wait for it in slices (cancellation still counts).
      pid_t r = 0;
      for (int i = 0; i < 10 && r == 0 && !cancelled.load(); ++i) {
        r = waitpid(pid_, &wait_status, WNOHANG);
        if (r == 0) poll(nullptr, 0, kPollSliceMs / 10 + 1);
      }
      if (r == pid_) {
        exited = reaped_ = true;
        kill(-pid_, SIGKILL);
        break;
      }
      continue;
    }
    int ready = poll(fds, n, kPollSliceMs);
    if (ready < 0 && errno != EINTR) return Internal(std::string("poll: ") + strerror(errno));
    for (nfds_t i = 0; ready > 0 && i < n; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      bool is_out = fds[i].fd == stdout_fd_;
      bool open = is_out ? ReadSome(stdout_fd_, &out_buffer, on_stdout)
                         : ReadSome(stderr_fd_, &err_buffer, err_sink);
      if (!open) {
        if (is_out) {
          out_open = false;
          CloseFd(&stdout_fd_);
        } else {
          err_open = false;
          CloseFd(&stderr_fd_);
        }
      }
    }
  }
  out_buffer.Finish(on_stdout);
  err_buffer.Finish(err_sink);
  CloseInput();
  if (WIFSIGNALED(wait_status)) {
    exit.signaled = true;
    exit.signal = WTERMSIG(wait_status);
  } else {
    exit.exit_code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
  }
  return exit;
}

Result<std::string> RunToCompletion(const BridgeCommand& command, size_t max_bytes) {
  FM_ASSIGN_OR_RETURN(std::unique_ptr<BridgeProcess> process, BridgeProcess::Start(command));
  process->CloseInput();
  std::string out;
  std::atomic<bool> never{false};
  FM_ASSIGN_OR_RETURN(BridgeExit exit, process->Pump(
                                           never,
                                           [&](std::string line) {
                                             if (out.size() + line.size() < max_bytes)
                                               out += line + "\n";
                                           },
                                           nullptr));
  if (exit.signaled || exit.exit_code != 0) {
    std::string tail;
    for (const auto& line : exit.stderr_tail) tail += "\n" + line;
    return FailedPrecondition(command.argv[0] + " " + exit.Describe() + tail);
  }
  return out;
}

}  // namespace flowmesh::training
