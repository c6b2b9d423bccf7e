#include "executors/sandbox.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace flowmesh::executors {
namespace {

namespace fs = std::filesystem;

struct Lines {
  std::vector<std::string> out, err;
  std::string Out() const {
    std::string all;
    for (const auto& l : out) all += l + "\n";
    return all;
  }
};

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "fm-sandbox-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::permissions(root_, fs::perms(0711));
    home_ = root_ / "home";
    fs::create_directory(home_);
    ASSERT_TRUE(sandbox_.GrantAccess(home_.string()).ok());
    Status probe = sandbox_.Probe();
    if (!probe.ok()) GTEST_SKIP() << probe.ToString();
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  SandboxOptions Shell(const std::string& script) const {
    SandboxOptions options;
    options.argv = {"/bin/sh", "-c", script};
    options.home = home_.string();
    options.timeout = std::chrono::seconds(60);
    return options;
  }
  SandboxOptions Python(const std::string& code) const {
    SandboxOptions options = Shell("");
    options.argv = {"/usr/bin/python3", "-c", code};
    return options;
  }

  SandboxOutcome Run(const SandboxOptions& options, Lines* lines = nullptr,
                     const std::atomic<bool>* cancel = nullptr) {
    static const std::atomic<bool> kNever{false};
    auto result = sandbox_.Run(
        options, cancel ? *cancel : kNever, [&](SandboxStream stream, std::string line) {
          if (!lines) return;
          (stream == SandboxStream::kStdout ? lines->out : lines->err).push_back(std::move(line));
        });
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? *result : SandboxOutcome{};
  }

  Sandbox sandbox_;
  fs::path root_, home_;
};

TEST_F(SandboxTest, StreamsLinesAndReportsExitCode) {
  Lines lines;
  auto outcome = Run(Shell("echo one; echo two >&2; printf partial; exit 3"), &lines);
  EXPECT_EQ(outcome.end, SandboxOutcome::End::kExited);
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_EQ(lines.out, (std::vector<std::string>{"one", "partial"}));
  EXPECT_EQ(lines.err, (std::vector<std::string>{"two"}));
  ASSERT_EQ(outcome.stderr_tail.size(), 1u);
  EXPECT_EQ(outcome.stderr_tail.back(), "two");
}

TEST_F(SandboxTest, SystemIsReadOnlyAndHomeIsPrivate) {
  Lines lines;
  auto outcome = Run(Shell("for p in /usr/flowmesh-x /etc/flowmesh-x /flowmesh-x; do "
                           "  if touch $p 2>/dev/null; then echo wrote $p; fi; done; "
                           "echo kept > $HOME/note; echo scratch > /tmp/t; pwd; echo $HOME"),
                     &lines);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(lines.Out().find("wrote"), std::string::npos) << lines.Out();
  EXPECT_NE(lines.Out().find(std::string(kSandboxHome) + "\n" + kSandboxHome), std::string::npos);
  std::ifstream note(home_ / "note");
  std::string text;
  std::getline(note, text);
  EXPECT_EQ(text, "kept");
  EXPECT_FALSE(fs::exists("/usr/flowmesh-x"));
  EXPECT_FALSE(fs::exists(home_ / "t"));  // /tmp is the sandbox's own
}

TEST_F(SandboxTest, OtherFoldersOfTheHostAreInvisible) {
  // Another task's folder and a worker token file next to this sandbox's home.
  fs::create_directory(root_ / "other-task");
  std::ofstream(root_ / "other-task" / "secret.txt") << "other-task-secret\n";
  std::ofstream(root_ / "worker.token") << "worker-token-secret\n";
  Lines lines;
  std::string script = "cat " + (root_ / "other-task" / "secret.txt").string() + " " +
                       (root_ / "worker.token").string() + " 2>&1; ls " + root_.string() +
                       " 2>&1; ls / ; cat " + fs::current_path().string() +
                       "/CMakeCache.txt 2>&1"
                       " | head -1";
  auto outcome = Run(Shell(script), &lines);
  EXPECT_EQ(outcome.end, SandboxOutcome::End::kExited);
  std::string out = lines.Out();
  EXPECT_EQ(out.find("other-task-secret"), std::string::npos) << out;
  EXPECT_EQ(out.find("worker-token-secret"), std::string::npos) << out;
  EXPECT_EQ(out.find("work\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("root\n"), std::string::npos) << out;
  EXPECT_NE(out.find("No such file"), std::string::npos) << out;
}

TEST_F(SandboxTest, NetworkIsOffUnlessAllowed) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string code =
      "import socket\n"
      "try:\n"
      "    socket.create_connection(('127.0.0.1', " +
      std::to_string(ntohs(addr.sin_port)) +
      "), timeout=5)\n"
      "    print('connected')\n"
      "except OSError as e:\n"
      "    print('blocked', e)\n";
  Lines off;
  Run(Python(code), &off);
  ASSERT_EQ(off.out.size(), 1u);
  EXPECT_EQ(off.out[0].rfind("blocked", 0), 0u) << off.out[0];

  SandboxOptions allowed = Python(code);
  allowed.network = true;
  Lines on;
  Run(allowed, &on);
  ASSERT_EQ(on.out.size(), 1u);
  EXPECT_EQ(on.out[0], "connected");
  close(listener);
}

TEST_F(SandboxTest, ProcessLimitBoundsForks) {
  SandboxOptions options = Python(
      "import os, time\n"
      "n = 0\n"
      "try:\n"
      "    while n < 500:\n"
      "        if os.fork() == 0:\n"
      "            time.sleep(60)\n"
      "            os._exit(0)\n"
      "        n += 1\n"
      "except OSError:\n"
      "    pass\n"
      "print(n)\n");
  options.limits.processes = 24;
  Lines lines;
  auto outcome = Run(options, &lines);
  EXPECT_EQ(outcome.exit_code, 0);
  ASSERT_EQ(lines.out.size(), 1u);
  EXPECT_LT(std::stoi(lines.out[0]), 24);
}

// Processes on the host whose command line holds `token`.
int CountProcessesWith(const std::string& token) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().find(token) != std::string::npos) ++count;
  }
  return count;
}

TEST_F(SandboxTest, TimeoutKillsAForkBombAndEveryProcessOfIt) {
  std::string token = "fm-bomb-" + std::to_string(getpid()) + "-" + root_.filename().string();
  SandboxOptions options = Python(
      "import os, sys\n"
      "print('bombing', flush=True)\n"
      "while True:\n"
      "    try:\n"
      "        os.fork()\n"
      "    except OSError:\n"
      "        pass\n");
  options.argv.push_back(token);
  options.limits.processes = 64;
  options.timeout = std::chrono::seconds(2);
  auto start = std::chrono::steady_clock::now();
  auto outcome = Run(options);
  EXPECT_EQ(outcome.end, SandboxOutcome::End::kTimedOut);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (CountProcessesWith(token) > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(CountProcessesWith(token), 0);
}

TEST_F(SandboxTest, CancelStopsTheSandbox) {
  std::atomic<bool> cancel{false};
  Lines lines;
  SandboxOptions options = Shell("echo started; exec sleep 300");
  auto result = sandbox_.Run(options, cancel, [&](SandboxStream, std::string line) {
    if (line == "started") cancel = true;
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->end, SandboxOutcome::End::kCancelled);
}

TEST_F(SandboxTest, CpuMemoryAndFileSizeLimits) {
  SandboxOptions cpu = Python("while True: pass\n");
  cpu.limits.cpu_seconds = 1;
  auto spun = Run(cpu);
  EXPECT_EQ(spun.end, SandboxOutcome::End::kSignaled);
  EXPECT_TRUE(spun.signal == SIGXCPU || spun.signal == SIGKILL) << spun.signal;

  SandboxOptions memory = Python("b = bytearray(1 << 30)\nprint('allocated')\n");
  memory.limits.address_space = uint64_t{256} << 20;
  Lines lines;
  auto outcome = Run(memory, &lines);
  EXPECT_NE(outcome.exit_code, 0);
  EXPECT_TRUE(lines.out.empty());
  EXPECT_NE(outcome.stderr_tail.back().find("MemoryError"), std::string::npos);

  SandboxOptions big = Shell("head -c 3000000 /dev/zero > $HOME/big");
  big.limits.file_size = 1 << 20;
  auto wrote = Run(big);
  EXPECT_NE(wrote.exit_code, 0);
  EXPECT_LE(fs::file_size(home_ / "big"), uint64_t{1} << 20);
}

TEST_F(SandboxTest, RunsAsAnUnprivilegedUidWhenRoot) {
  Lines lines;
  Run(Shell("id -u; cat /proc/self/status | grep CapEff"), &lines);
  ASSERT_EQ(lines.out.size(), 2u);
  if (geteuid() == 0) {
    EXPECT_EQ(lines.out[0], "65534");
  }
  EXPECT_NE(lines.out[1].find("0000000000000000"), std::string::npos) << lines.out[1];
}

TEST(SandboxSetupTest, MissingBubblewrapIsAClearError) {
  SandboxRuntime runtime;
  runtime.bwrap = "/nonexistent/bwrap";
  Sandbox sandbox(runtime);
  SandboxOptions options;
  options.argv = {"/usr/bin/true"};
  options.home = fs::temp_directory_path().string();
  std::atomic<bool> never{false};
  auto result = sandbox.Run(options, never, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("bubblewrap"), std::string::npos);
  EXPECT_FALSE(sandbox.Probe().ok());
}

TEST(SandboxSetupTest, CommandLineKeepsNetworkOffByDefault) {
  SandboxOptions options;
  options.argv = {"/usr/bin/true"};
  options.home = "/h";
  auto args = Sandbox().CommandLine(options, 3);
  EXPECT_NE(std::find(args.begin(), args.end(), "--unshare-net"), args.end());
  options.network = true;
  args = Sandbox().CommandLine(options, 3);
  EXPECT_EQ(std::find(args.begin(), args.end(), "--unshare-net"), args.end());
}

}  // namespace
}  // namespace flowmesh::executors
