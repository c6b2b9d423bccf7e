// RedisServer: a real redis-server child process for integration and end-to-end tests.
//
// Start() picks a free port on 127.0.0.1, runs redis-server with its data in a temp
// directory and waits until it answers PING. Kill() simulates a crash (SIGKILL),
// Restart() kills and starts it again on the same port; data survives a restart only with
// `appendonly` (written with appendfsync always, so nothing acknowledged is lost). The
// child gets SIGKILL if the thread that started it dies, so a crashed test leaves no
// server behind; start and stop it from the same thread (the test's). Not thread-safe.
//
//   flowmesh::testing::RedisServer redis;
//   ASSERT_TRUE(redis.Start().ok());   // or GTEST_SKIP() when !RedisServer::Available()
//   config.port = redis.port();
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "support/temp_dir.h"

namespace flowmesh::testing {

struct RedisServerOptions {
  std::string password;     // --requirepass when non-empty
  bool appendonly = false;  // keep data across Restart()
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {}) : options_(std::move(options)) {}
  ~RedisServer() { Kill(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // The redis-server binary ($PATH, then /usr/bin), or "" when there is none.
  static std::string Binary() {
    if (const char* path = std::getenv("PATH")) {
      std::stringstream dirs(path);
      std::string dir;
      while (std::getline(dirs, dir, ':')) {
        std::string candidate = dir + "/redis-server";
        if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
      }
    }
    return ::access("/usr/bin/redis-server", X_OK) == 0 ? "/usr/bin/redis-server" : "";
  }
  static bool Available() { return !Binary().empty(); }

  // A port nothing listened on a moment ago (bind to port 0, read it back, close).
  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    int port = -1;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    return port;
  }

  // Starts the server (on a new free port the first time, the same port afterwards) and
  // waits until it answers PING.
  Status Start() {
    if (pid_ > 0) return FailedPrecondition("redis-server already running");
    std::string binary = Binary();
    if (binary.empty()) return NotFound("redis-server not found on PATH or in /usr/bin");
    if (port_ > 0) return Launch(binary);
    Status last;
    for (int attempt = 0; attempt < 3; ++attempt) {  // the free port may be taken meanwhile
      port_ = FreePort();
      last = Launch(binary);
      if (last.ok()) return last;
    }
    port_ = 0;
    return last;
  }

  // SIGKILL, as in a crash; waits for the process to be gone.
  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // SIGTERM (a clean shutdown); waits for the process to be gone.
  void Stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Kills the server and starts it again on the same port.
  Status Restart() {
    Kill();
    return Start();
  }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }
  const std::string& password() const { return options_.password; }
  const std::string& dir() const { return dir_.path(); }
  std::string log_file() const { return dir_ / "redis.log"; }

 private:
  Status Launch(const std::string& binary) {
    std::vector<std::string> args = {binary,
                                     "--port", std::to_string(port_),
                                     "--bind", "127.0.0.1",
                                     "--save", "",
                                     "--dir", dir_.path(),
                                     "--logfile", log_file(),
                                     "--daemonize", "no",
                                     "--appendonly", options_.appendonly ? "yes" : "no",
                                     "--appendfsync", "always"};
    if (!options_.password.empty()) {
      args.push_back("--requirepass");
      args.push_back(options_.password);
    }
    if (!options_.appendonly) {
      // A restart without appendonly starts empty, like a real crash would.
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(dir_.path(), ec)) {
        if (e.path().filename() != "redis.log") std::filesystem::remove_all(e.path(), ec);
      }
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return Internal("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      int devnull = ::open("/dev/null", O_RDWR);
      if (devnull >= 0) {
        ::dup2(devnull, 0);
        ::dup2(devnull, 1);
        ::dup2(devnull, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return Internal("redis-server exited during startup: " + LogTail());
      }
      if (Ping()) return Status::Ok();
      // Polling an external process until it is ready; there is no event to wait on.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    Kill();
    return DeadlineExceeded("redis-server did not answer PING: " + LogTail());
  }

  // True when the server answers PING with PONG (after AUTH when a password is set).
  bool Ping() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      std::string request;
      int replies = 1;
      if (!options_.password.empty()) {
        request += "*2\r\n$4\r\nAUTH\r\n$" + std::to_string(options_.password.size()) + "\r\n" +
                   options_.password + "\r\n";
        replies = 2;
      }
      request += "*1\r\n$4\r\nPING\r\n";
      if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
        std::string response;
        char buf[256];
        while (std::count(response.begin(), response.end(), '\n') < replies) {
          ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
          if (n <= 0) break;
          response.append(buf, static_cast<size_t>(n));
        }
        ok = response.find("+PONG") != std::string::npos;
      }
    }
    ::close(fd);
    return ok;
  }

  std::string LogTail() const {
    std::ifstream in(log_file());
    std::string line, tail;
    std::vector<std::string> lines;
    while (std::getline(in, line)) lines.push_back(line);
    for (size_t i = lines.size() > 10 ? lines.size() - 10 : 0; i < lines.size(); ++i) {
      tail += lines[i] + "\n";
    }
    return tail;
  }

  RedisServerOptions options_;
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace flowmesh::testing
