// Local-host facts for `flowmesh stack`: pid files, process discovery, ports and log
// tails for the stack (redis-server + flowmesh-server) that lives under FLOWMESH_HOME.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::cli {

// The last `n` lines of `text` (a final line without '\n' counts).
std::string TailLines(const std::string& text, size_t n);
// The last `n` lines of a file ("" when it does not exist); reads at most the last 1 MiB.
std::string TailFile(const std::string& path, size_t n);

// Reads a pid file; 0 when missing or malformed.
pid_t ReadPidFile(const std::string& path);
Status WritePidFile(const std::string& path, pid_t pid);

// True when `pid` exists and is not a zombie (a process whose parent died is reparented to
// PID 1, which in containers may reap it late; ProcessAlive() counts such zombies as alive).
bool IsRunning(pid_t pid);

// True when `pid` is alive and its command line mentions `needle` (guards against a
// stale pid file whose pid was reused by another program).
bool ProcessMatches(pid_t pid, const std::string& needle);

// All live descendants of `pid` (children first), from /proc.
std::vector<pid_t> Descendants(pid_t pid);

// Live processes (other than this one) whose environment holds `entry` ("KEY=value").
// `stack up` marks everything it starts with FLOWMESH_STACK_HOME=<home>; children inherit
// it, so `stack down` finds what a crashed server left behind.
std::vector<pid_t> ProcessesWithEnv(const std::string& entry);

// True when something listens on (or holds) 127.0.0.1:port.
bool PortInUse(int port);

// `name` if it contains '/', else the first executable PATH entry; "" if none.
std::string FindExecutable(const std::string& name, const std::string& path_env);

// "0,1" → {"0","1"}; "all" → "0".."available-1" (error when none). Rejects anything
// that is not a non-negative integer list.
Result<std::vector<std::string>> ParseGpuTargets(const std::string& spec, int available);

}  // namespace flowmesh::cli
