// One child process of the training bridge, talking over pipes: the child's stdin takes
// the worker's messages, its stdout carries the protocol, its stderr is the trainer's own
// log. The child leads its own process group (and dies with the thread that started it,
// PR_SET_PDEATHSIG); Kill, cancellation and the destructor SIGKILL that whole group, so
// nothing the trainer started (data loader workers, torch compile workers) outlives it.
//
// Not thread-safe: one thread starts, pumps and ends a process. Pump blocks its caller.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::training {

struct BridgeCommand {
  std::vector<std::string> argv;           // argv[0]: absolute path of the program
  std::map<std::string, std::string> env;  // set in (or replacing) the worker's environment
  std::string working_dir;                 // "" keeps the worker's
};

struct BridgeExit {
  bool signaled = false;
  int exit_code = -1;                   // when !signaled
  int signal = 0;                       // when signaled
  std::deque<std::string> stderr_tail;  // the last kStderrTailLines lines of stderr
  static constexpr size_t kStderrTailLines = 20;
  std::string Describe() const;  // "exited with code 1" / "was killed by signal 9 (Killed)"
};

class BridgeProcess {
 public:
  using LineSink = std::function<void(std::string line)>;

  static Result<std::unique_ptr<BridgeProcess>> Start(const BridgeCommand& command);
  ~BridgeProcess();  // Kill() and reap when still running
  BridgeProcess(const BridgeProcess&) = delete;
  BridgeProcess& operator=(const BridgeProcess&) = delete;

  pid_t pid() const { return pid_; }

  // Writes one line (a newline is added) to the child's stdin. Unavailable once the child
  // closed it.
  Status Send(std::string_view line);
  // Closes the child's stdin (it reads end of file).
  void CloseInput();

  // Forwards every complete line of stdout and stderr to the sinks (on this thread) until
  // the child exits, then kills what is left of its group and returns how it ended. When
  // `cancelled` becomes true first: kills the group, reaps it and returns Cancelled.
  Result<BridgeExit> Pump(const std::atomic<bool>& cancelled, const LineSink& on_stdout,
                          const LineSink& on_stderr);

  // SIGKILL to the whole process group (idempotent).
  void Kill();

 private:
  BridgeProcess() = default;
  void Reap(int* wait_status);

  pid_t pid_ = -1;
  bool reaped_ = false;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
};

// Runs `command` to completion with no input and returns its stdout (at most `max_bytes`);
// FailedPrecondition when it cannot start or exits non-zero (with its stderr tail).
Result<std::string> RunToCompletion(const BridgeCommand& command, size_t max_bytes = 1 << 20);

}  // namespace flowmesh::training
