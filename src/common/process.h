// Child processes: spawn a program detached in its own process group with its output
// appended to a log file, signal it, and reap it. Used by the CLI (stack up), the
// server (its supervisor) and the supervisor (native workers).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh {

struct SpawnOptions {
  std::vector<std::string> argv;           // argv[0] is the program path.
  std::map<std::string, std::string> env;  // added to (or replacing in) the parent's environment
  std::string log_file;                    // stdout+stderr appended here; empty: inherit
  bool new_session = true;                 // setsid(): survives the parent's terminal
};

Result<pid_t> Spawn(const SpawnOptions& options);

bool ProcessAlive(pid_t pid);
// Sends SIGTERM, waits up to `grace`, then SIGKILL. Reaps the child if it is ours.
void TerminateProcess(pid_t pid, std::chrono::milliseconds grace);
// Non-blocking reap; returns true if `pid` has exited (and stores its status).
bool ReapIfExited(pid_t pid, int* wait_status);

// Directory holding the running executable (to find sibling binaries).
std::string ExecutableDir();

}  // namespace flowmesh
