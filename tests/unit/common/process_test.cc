// Spawn / ProcessAlive / ReapIfExited / TerminateProcess against real /bin/sh children.
// Waiting uses waitpid/waitid or a FIFO the child writes to, never a sleep.
#include "common/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "support/temp_dir.h"

namespace flowmesh {
namespace {

using flowmesh::testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Blocks until `pid` exits and returns its wait status.
int WaitExit(pid_t pid) {
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  return status;
}

// Blocks until `pid` (our child) has exited, leaving it a zombie (not reaped).
void WaitExitedNoReap(pid_t pid) {
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
}

// A FIFO used as a child's log file: the read end is opened first (non-blocking, so that
// Spawn's open for writing does not block), then switched to blocking reads.
class LogFifo {
 public:
  explicit LogFifo(std::string path) : path_(std::move(path)) {
    EXPECT_EQ(::mkfifo(path_.c_str(), 0600), 0);
    fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    EXPECT_GE(fd_, 0);
  }
  ~LogFifo() {
    if (fd_ >= 0) ::close(fd_);
  }
  const std::string& path() const { return path_; }
  // Reads until `text` has been seen (or EOF).
  std::string ReadUntil(const std::string& text) {
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
    std::string got;
    char buf[256];
    while (got.find(text) == std::string::npos) {
      ssize_t n = ::read(fd_, buf, sizeof(buf));
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST(SpawnTest, WritesOutputToLogFileWithExtraEnvironment) {
  TempDir dir;
  std::string log = dir / "child.log";
  {
    std::ofstream(log) << "earlier\n";
  }
  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", "echo out-$FM_TEST_VAR; echo err-$HOME >&2; exit 3"};
  opts.env = {{"FM_TEST_VAR", "hello world"}, {"HOME", "/nowhere"}};
  opts.log_file = log;
  auto pid = Spawn(opts);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  int status = WaitExit(*pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
  // Appended, not truncated; stdout and stderr both land in it.
  EXPECT_EQ(ReadFile(log), "earlier\nout-hello world\nerr-/nowhere\n");
}

TEST(SpawnTest, InheritsTheParentEnvironment) {
  TempDir dir;
  ASSERT_EQ(::setenv("FM_PROCESS_TEST_PARENT", "from-parent", 1), 0);
  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", "echo $FM_PROCESS_TEST_PARENT"};
  opts.log_file = dir / "env.log";
  auto pid = Spawn(opts);
  ::unsetenv("FM_PROCESS_TEST_PARENT");
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  WaitExit(*pid);
  EXPECT_EQ(ReadFile(opts.log_file), "from-parent\n");
}

TEST(SpawnTest, NewSessionMakesTheChildASessionLeader) {
  TempDir dir;
  LogFifo fifo(dir / "fifo");
  SpawnOptions opts;
  opts.log_file = fifo.path();
  opts.argv = {"/bin/sh", "-c", "echo ready; exec sleep 60"};
  auto pid = Spawn(opts);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  fifo.ReadUntil("ready\n");
  EXPECT_EQ(::getsid(*pid), *pid);
  EXPECT_EQ(::getpgid(*pid), *pid);
  TerminateProcess(*pid, std::chrono::seconds(5));
}

TEST(SpawnTest, ReportsExecFailure) {
  SpawnOptions opts;
  opts.argv = {"/nonexistent/flowmesh-no-such-program", "--flag"};
  auto pid = Spawn(opts);
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.status().message().find("flowmesh-no-such-program"), std::string::npos)
      << pid.status().ToString();
  EXPECT_NE(pid.status().message().find("No such file"), std::string::npos)
      << pid.status().ToString();
  // The failed child was reaped: no child is left to wait for.
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(SpawnTest, ReportsNonExecutableFile) {
  TempDir dir;
  std::string script = dir / "not-executable.sh";
  std::ofstream(script) << "#!/bin/sh\nexit 0\n";
  SpawnOptions opts;
  opts.argv = {script};
  auto pid = Spawn(opts);
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.status().message().find("Permission denied"), std::string::npos)
      << pid.status().ToString();
}

TEST(SpawnTest, RejectsEmptyArgvAndUnwritableLog) {
  SpawnOptions empty;
  auto r = Spawn(empty);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);

  SpawnOptions bad_log;
  bad_log.argv = {"/bin/true"};
  bad_log.log_file = "/nonexistent-dir/flowmesh/child.log";
  auto r2 = Spawn(bad_log);
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("log file"), std::string::npos);
}

TEST(SpawnTest, ChildInheritsNoDescriptorsBeyondStdio) {
  TempDir dir;
  // A listening socket and a plain file, both without close-on-exec, at high numbers so
  // that they cannot be confused with the directory descriptor ls opens itself.
  int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(sock, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(sock, 4), 0);
  ASSERT_EQ(::dup2(sock, 57), 57);
  int file = ::open((dir / "plain").c_str(), O_WRONLY | O_CREAT, 0600);
  ASSERT_GE(file, 0);
  ASSERT_EQ(::dup2(file, 58), 58);

  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", "ls /proc/self/fd"};
  opts.log_file = dir / "fds.log";
  auto pid = Spawn(opts);
  ::close(57);
  ::close(58);
  ::close(file);
  ::close(sock);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  int status = WaitExit(*pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(opts.log_file);

  std::set<int> fds;
  std::stringstream ss(ReadFile(opts.log_file));
  std::string word;
  while (ss >> word) fds.insert(std::stoi(word));
  // 0, 1, 2 and the one descriptor ls holds on /proc/self/fd while reading it.
  EXPECT_TRUE(fds.count(0) && fds.count(1) && fds.count(2)) << ReadFile(opts.log_file);
  EXPECT_EQ(fds.count(57), 0u) << "listening socket leaked into the child";
  EXPECT_EQ(fds.count(58), 0u) << "plain file leaked into the child";
  EXPECT_LE(fds.size(), 4u) << ReadFile(opts.log_file);
  for (int fd : fds) EXPECT_LE(fd, 3) << ReadFile(opts.log_file);
}

// A parent running with its standard descriptors closed: the log file and the exec-error
// pipe then land on 0-2, where the child's dup2() calls used to clobber them.
TEST(SpawnTest, WorksWhenTheParentHasNoStandardDescriptors) {
  TempDir dir;
  std::string log = dir / "child.log";
  pid_t helper = ::fork();
  ASSERT_GE(helper, 0);
  if (helper == 0) {
    ::close(0);
    ::close(1);
    ::close(2);
    SpawnOptions ok;
    ok.argv = {"/bin/sh", "-c", "echo out; echo err >&2"};
    ok.log_file = log;
    auto pid = Spawn(ok);
    if (!pid.ok()) ::_exit(10);
    int status = 0;
    if (::waitpid(*pid, &status, 0) != *pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ::_exit(11);
    }
    SpawnOptions missing;
    missing.argv = {"/nonexistent/flowmesh-no-such-program"};
    missing.log_file = log;
    if (Spawn(missing).ok()) ::_exit(12);
    ::_exit(0);
  }
  int status = WaitExit(helper);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: spawn failed, 11: child failed, 12: exec error lost";
  EXPECT_EQ(ReadFile(log), "out\nerr\n");
}

TEST(ProcessAliveTest, RunningChildIsAliveExitedChildIsNot) {
  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", "exit 0"};
  auto pid = Spawn(opts);
  ASSERT_TRUE(pid.ok());
  WaitExitedNoReap(*pid);  // a zombie now, still our child
  EXPECT_FALSE(ProcessAlive(*pid));
  // ProcessAlive reaped it: nothing is left behind.
  EXPECT_EQ(::waitpid(*pid, nullptr, WNOHANG), -1);
  EXPECT_FALSE(ProcessAlive(*pid));
  EXPECT_FALSE(ProcessAlive(0));
  EXPECT_FALSE(ProcessAlive(-1));
}

TEST(ProcessAliveTest, ReapIfExitedReportsExitStatus) {
  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", "exit 7"};
  auto pid = Spawn(opts);
  ASSERT_TRUE(pid.ok());
  WaitExitedNoReap(*pid);
  int status = -1;
  ASSERT_TRUE(ReapIfExited(*pid, &status));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
  // Already reaped: still reported as exited.
  EXPECT_TRUE(ReapIfExited(*pid, nullptr));
}

TEST(ProcessAliveTest, ReapIfExitedLeavesARunningChild) {
  TempDir dir;
  LogFifo fifo(dir / "fifo");
  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", "echo ready; exec sleep 60"};
  opts.log_file = fifo.path();
  auto pid = Spawn(opts);
  ASSERT_TRUE(pid.ok());
  fifo.ReadUntil("ready\n");
  int status = -1;
  EXPECT_FALSE(ReapIfExited(*pid, &status));
  EXPECT_TRUE(ProcessAlive(*pid));
  ASSERT_EQ(::kill(*pid, SIGKILL), 0);
  WaitExitedNoReap(*pid);
  ASSERT_TRUE(ReapIfExited(*pid, &status));
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(TerminateProcessTest, StopsAChildWithSigterm) {
  TempDir dir;
  LogFifo fifo(dir / "fifo");
  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", "echo ready; exec sleep 60"};
  opts.log_file = fifo.path();
  auto pid = Spawn(opts);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  fifo.ReadUntil("ready\n");
  EXPECT_TRUE(ProcessAlive(*pid));
  auto start = std::chrono::steady_clock::now();
  TerminateProcess(*pid, std::chrono::seconds(20));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_FALSE(ProcessAlive(*pid));
  EXPECT_EQ(::kill(*pid, 0), -1);  // reaped, not a zombie
}

TEST(TerminateProcessTest, KillsAChildIgnoringSigtermAfterGrace) {
  TempDir dir;
  LogFifo fifo(dir / "fifo");
  SpawnOptions opts;
  opts.argv = {"/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 60"};
  opts.log_file = fifo.path();
  auto pid = Spawn(opts);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  fifo.ReadUntil("ready\n");  // the trap is installed
  auto start = std::chrono::steady_clock::now();
  TerminateProcess(*pid, std::chrono::milliseconds(200));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(200));
  EXPECT_FALSE(ProcessAlive(*pid));
  EXPECT_EQ(::kill(*pid, 0), -1);
}

TEST(TerminateProcessTest, IgnoresInvalidPids) {
  TerminateProcess(0, std::chrono::milliseconds(10));
  TerminateProcess(-1, std::chrono::milliseconds(10));
}

TEST(ExecutableDirTest, NamesTheDirectoryOfThisBinary) {
  std::string dir = ExecutableDir();
  struct stat st{};
  ASSERT_EQ(::stat((dir + "/common_process_test").c_str(), &st), 0) << dir;
}

}  // namespace
}  // namespace flowmesh
