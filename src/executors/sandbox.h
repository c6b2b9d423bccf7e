// Runs one command in a bubblewrap (bwrap) sandbox: new user, pid, ipc, uts, cgroup and
// (unless allowed) network namespaces; a read-only view of the system (/usr and a few
// files of /etc), fresh /proc, /dev and /tmp, a private writable home, and only the
// host folders the caller binds. Nothing else of the host is visible: not other tasks'
// folders, not the worker's home, state or token files.
//
// Limits are rlimits applied inside the sandbox (prlimit runs as the sandbox's first
// command, so RLIMIT_NPROC counts only the sandbox's own processes). When the caller is
// root, bwrap itself runs as an unprivileged uid (65534 by default), so the sandbox holds
// no privilege on the host even if it escaped its namespaces.
//
// The sandbox is its own process group; timeout and cancellation SIGKILL that group, and
// bwrap's --die-with-parent tears the pid namespace (every process in it) down with it.
//
// A Sandbox is immutable and may be used from any thread; Run blocks its caller.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::executors {

// Where the sandbox's private home is mounted (also $HOME and the working directory).
inline constexpr const char* kSandboxHome = "/home/sandbox";

struct SandboxLimits {
  uint64_t cpu_seconds = 0;    // RLIMIT_CPU; 0: none
  uint64_t address_space = 0;  // RLIMIT_AS in bytes; 0: none
  uint64_t processes = 0;      // RLIMIT_NPROC inside the sandbox; 0: none
  uint64_t file_size = 0;      // RLIMIT_FSIZE in bytes; 0: none
};

struct SandboxBind {
  std::string source;  // host path (must exist)
  std::string target;  // absolute path inside the sandbox
  bool writable = false;
};

struct SandboxOptions {
  std::vector<std::string> argv;           // argv[0]: absolute path inside the sandbox
  std::map<std::string, std::string> env;  // the whole environment besides HOME/PATH/TMPDIR
  std::string home;                        // host folder bound writable at kSandboxHome
  std::vector<SandboxBind> binds;
  bool network = false;  // share the host's network namespace
  SandboxLimits limits;
  std::chrono::milliseconds timeout{0};  // 0: none
  size_t max_output_bytes = 8 << 20;     // output forwarded to the sink; the rest dropped
};

enum class SandboxStream { kStdout, kStderr };
using SandboxLineSink = std::function<void(SandboxStream stream, std::string line)>;

struct SandboxOutcome {
  enum class End { kExited, kSignaled, kTimedOut, kCancelled };
  End end = End::kExited;
  int exit_code = -1;                   // kExited
  int signal = 0;                       // kSignaled
  std::deque<std::string> stderr_tail;  // the last lines of stderr (at most kStderrTailLines)
  size_t dropped_output_bytes = 0;      // beyond max_output_bytes
  static constexpr size_t kStderrTailLines = 20;
};

struct SandboxRuntime {
  std::string bwrap = "/usr/bin/bwrap";
  std::string prlimit = "/usr/bin/prlimit";
  // The uid/gid bwrap runs as when the caller is root; 0 keeps root (not recommended).
  uid_t uid_when_root = 65534;
  gid_t gid_when_root = 65534;
};

class Sandbox {
 public:
  explicit Sandbox(SandboxRuntime runtime = {}) : runtime_(std::move(runtime)) {}

  // OK when bwrap and prlimit are installed and a trivial sandbox starts here (user
  // namespaces allowed); otherwise FailedPrecondition saying what is missing.
  Status Probe() const;

  // Runs `options.argv` to completion, timeout or cancellation (`cancelled` is polled).
  // Every complete line of output goes to `sink` from the calling thread. Errors:
  // FailedPrecondition (bwrap missing), InvalidArgument (bad options), Internal (the
  // sandbox could not be set up; the message carries bwrap's own words).
  Result<SandboxOutcome> Run(const SandboxOptions& options, const std::atomic<bool>& cancelled,
                             const SandboxLineSink& sink) const;

  // Whether bwrap runs as SandboxUid() instead of the caller's root.
  bool DropsRoot() const;
  uid_t SandboxUid() const;
  gid_t SandboxGid() const;

  // Chowns `path` (recursively, not following links) to the sandbox's uid when it drops
  // root, so the sandbox may use it (a read-only bind stays read-only). No-op otherwise.
  Status GrantAccess(const std::string& path) const;

  // The bwrap command line Run would execute (for tests and diagnostics).
  std::vector<std::string> CommandLine(const SandboxOptions& options, int status_fd) const;

 private:
  SandboxRuntime runtime_;
};

}  // namespace flowmesh::executors
