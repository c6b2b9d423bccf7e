// `flowmesh stack …`: starts and stops the local stack and manages the local node's workers.

#include <arpa/inet.h>
#include <fcntl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <ostream>
#include <algorithm>
#include <set>
#include <sstream>
#include <thread>

#include "auth/credentials.h"
#include "cli/context.h"
#include "cli/host.h"
#include "cli/output.h"
#include "common/ids.h"
#include "common/process.h"

namespace flowmesh::cli {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

int CountNvidiaGpus() {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/dev", ec)) {
    std::string name = e.path().filename().string();
    if (name.size() > 6 && name.rfind("nvidia", 0) == 0 &&
        name.find_first_not_of("0123456789", 6) == std::string::npos) {
      ++n;
    }
  }
  return n;
}

int ResolvePort(int flag, const std::string& env_value, int fallback, const char* what,
                std::ostream& err, bool* ok) {
  *ok = true;
  if (flag > 0) return flag;
  if (env_value.empty()) return fallback;
  char* end = nullptr;
  long v = std::strtol(env_value.c_str(), &end, 10);
  if (*end != '\0' || v < 1 || v > 65535) {
    err << "error: " << what << "='" << env_value << "' is not a port number\n";
    *ok = false;
  }
  return static_cast<int>(v);
}

bool WaitForPort(int port, pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!IsRunning(pid)) return false;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd);
    if (up) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Waits until a process that is not (necessarily) our child is gone.
bool WaitGone(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (!IsRunning(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !IsRunning(pid);
}

// SIGTERM `pid`, wait `grace`, SIGKILL; then the same for whatever it left behind (its
// descendants as they were before the signal). Returns true when nothing survives.
bool StopTree(pid_t pid, std::chrono::milliseconds grace) {
  std::vector<pid_t> tree = Descendants(pid);
  ::kill(pid, SIGTERM);
  if (!WaitGone(pid, grace)) {
    ::kill(pid, SIGKILL);
    WaitGone(pid, std::chrono::milliseconds(2000));
  }
  bool clean = !IsRunning(pid);
  for (pid_t child : tree) {
    if (!IsRunning(child)) continue;
    ::kill(child, SIGTERM);
    if (!WaitGone(child, std::chrono::milliseconds(3000))) {
      ::kill(child, SIGKILL);
      clean = WaitGone(child, std::chrono::milliseconds(2000)) && clean;
    }
  }
  return clean;
}

Status EnsureDirs(const HomeLayout& layout) {
  for (const auto& dir : {layout.home, layout.RunDir(), layout.LogDir(), layout.StateDir(),
                          layout.RedisDir()}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Internal("cannot create " + dir + ": " + ec.message());
  }
  return Status::Ok();
}

bool HealthOk(const std::string& url, std::chrono::milliseconds timeout) {
  http::Client client(url, timeout);
  auto r = client.Get("/healthz");
  return r.ok() && r->status == 200;
}

struct Component {
  const char* name;
  const char* needle;  // expected in /proc/<pid>/cmdline
};
constexpr Component kRedis{"redis", "redis-server"};
constexpr Component kServer{"server", "flowmesh-server"};

pid_t RunningPid(const HomeLayout& layout, const Component& c) {
  pid_t pid = ReadPidFile(layout.PidFile(c.name));
  return ProcessMatches(pid, c.needle) ? pid : 0;
}

std::string RedisPortFile(const HomeLayout& layout) { return layout.RunDir() + "/redis.port"; }

void RemoveRunFiles(const HomeLayout& layout, const Component& c) {
  std::error_code ec;
  fs::remove(layout.PidFile(c.name), ec);
  if (&c == &kRedis) fs::remove(RedisPortFile(layout), ec);
}

// Stops whatever still carries this stack's marker (workers or a supervisor orphaned by a
// crashed server). Returns how many processes were found.
size_t SweepMarked(const HomeLayout& layout) {
  auto pids = ProcessesWithEnv("FLOWMESH_STACK_HOME=" + layout.home);
  for (pid_t pid : pids) ::kill(pid, SIGTERM);
  for (pid_t pid : pids) {
    if (!WaitGone(pid, std::chrono::milliseconds(3000))) {
      ::kill(pid, SIGKILL);
      WaitGone(pid, std::chrono::milliseconds(2000));
    }
  }
  return pids.size();
}

// The local stack's Redis password: generated once, kept in a 0600 file beside its data,
// handed to redis-server in a 0600 config file (never on a command line, where ps shows it).
Result<std::string> RedisPassword(const HomeLayout& layout) {
  std::string path = layout.RedisDir() + "/password";
  {
    std::ifstream in(path);
    std::string pw;
    if (in && std::getline(in, pw) && !pw.empty()) return pw;
  }
  std::string pw = RandomHex(32);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot write " + path + ": " + std::strerror(errno));
  std::string line = pw + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) return Internal("cannot write " + path);
  return pw;
}

Status WriteRedisConf(const HomeLayout& layout, const std::string& password) {
  std::string path = layout.RedisDir() + "/redis.conf";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot write " + path + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  std::string text = "requirepass " + password + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok ? Status::Ok() : Internal("cannot write " + path);
}

// The admin key of this installation: the one in config.json, or a new one saved there
// (mode 0600). The server is told only its SHA-256.
Result<std::string> AdminKey(const HomeLayout& layout, std::ostream& err) {
  auto config = LoadConfig(layout.ConfigFile());
  CliConfig c = config.ok() ? *config : CliConfig{};
  if (!c.api_key.empty()) return c.api_key;
  c.api_key = auth::GenerateApiKey();
  FM_RETURN_IF_ERROR(SaveConfig(layout.ConfigFile(), c));
  err << "created an admin API key, saved in " << layout.ConfigFile() << "\n";
  return c.api_key;
}

}  // namespace

// ---------------------------------------------------------------- stack up/down/status/logs

namespace {

// Starts our redis-server on `redis_port` and records its pid and port; returns its pid, or
// 0 once it has said on ctx.io.err why it could not.
pid_t StartRedis(Context& ctx, const std::string& redis_password, int redis_port,
                 const std::string& host) {
  auto& err = ctx.io.err;
  std::string redis_bin = ctx.env.Get("FLOWMESH_REDIS_SERVER");
  redis_bin = FindExecutable(redis_bin.empty() ? "redis-server" : redis_bin,
                             ctx.env.Get("PATH") + ":/usr/bin:/usr/local/bin:/usr/sbin");
  if (redis_bin.empty()) {
    err << "error: redis-server not found on PATH (install it, or set FLOWMESH_REDIS_SERVER)\n";
    return 0;
  }
  if (PortInUse(redis_port)) {
    err << "error: port " << redis_port
        << " for redis is already in use; choose another with --redis-port or "
           "FLOWMESH_REDIS_PORT\n";
    return 0;
  }
  Status st = WriteRedisConf(ctx.layout, redis_password);
  if (!st.ok()) {
    err << "error: " << st.message() << "\n";
    return 0;
  }
  SpawnOptions so;
  // Loopback always (the local supervisor and CLI); the stack's host too, for other nodes.
  std::vector<std::string> bind = {"127.0.0.1"};
  if (host == "0.0.0.0") {
    bind = {host};
  } else if (host != "127.0.0.1") {
    bind.push_back(host);
  }
  so.argv = {redis_bin, ctx.layout.RedisDir() + "/redis.conf", "--bind"};
  so.argv.insert(so.argv.end(), bind.begin(), bind.end());
  so.argv.insert(so.argv.end(), {"--port", std::to_string(redis_port),
             "--dir", ctx.layout.RedisDir(), "--daemonize", "no", "--protected-mode", "yes",
             // Streams must survive a Redis restart: append-only file, fsync every second.
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""});
  so.log_file = ctx.layout.LogFile("redis");
  so.env = {{"FLOWMESH_STACK_HOME", ctx.layout.home}};
  auto pid = Spawn(so);
  if (!pid.ok()) {
    err << "error: cannot start redis-server: " << pid.status().message() << "\n";
    return 0;
  }
  pid_t redis_pid = *pid;
  if (!WaitForPort(redis_port, redis_pid, std::chrono::seconds(10))) {
    err << "error: redis-server did not start; last lines of " << so.log_file << ":\n"
        << TailFile(so.log_file, 20);
    TerminateProcess(redis_pid, std::chrono::milliseconds(2000));
    return 0;
  }
  st = WritePidFile(ctx.layout.PidFile("redis"), redis_pid);
  if (!st.ok()) err << "warning: " << st.message() << "\n";
  std::ofstream(RedisPortFile(ctx.layout), std::ios::trunc) << redis_port << "\n";
  return redis_pid;
}

// `flowmesh stack up` when the server already runs: where, and that nothing was started.
void ReportAlreadyRunning(Context& ctx, pid_t server_pid, const std::string& url) {
  std::ifstream in(ctx.layout.ServerUrlFile());
  std::string running_url;
  std::getline(in, running_url);
  if (running_url.empty()) running_url = url;
  if (ctx.inv.json) {
    ctx.PrintJson({{"url", running_url}, {"server_pid", server_pid},
                   {"redis_pid", RunningPid(ctx.layout, kRedis)}, {"already_running", true}});
  } else {
    ctx.io.out << "FlowMesh is already running at " << running_url << " (server pid "
               << server_pid << ")\n";
  }
}

}  // namespace

int StackUp(Context& ctx) {
  auto& err = ctx.io.err;
  Status st = EnsureDirs(ctx.layout);
  if (!st.ok()) {
    err << "error: " << st.message() << "\n";
    return kExitFailure;
  }
  bool ok = true;
  int port = ResolvePort(ctx.inv.port, ctx.env.Get("FLOWMESH_PORT"), 8000, "FLOWMESH_PORT", err, &ok);
  if (!ok) return kExitUnreachable;
  int redis_port = ResolvePort(ctx.inv.redis_port, ctx.env.Get("FLOWMESH_REDIS_PORT"), 6379,
                               "FLOWMESH_REDIS_PORT", err, &ok);
  if (!ok) return kExitUnreachable;
  std::string host = ctx.inv.host.empty() ? ctx.env.Get("FLOWMESH_HOST") : ctx.inv.host;
  if (host.empty()) host = "127.0.0.1";
  // A wildcard listens everywhere; the CLI still talks to it over loopback.
  std::string url =
      fmt::format("http://{}:{}", host == "0.0.0.0" ? std::string("127.0.0.1") : host, port);

  std::string server_bin = ctx.env.Get("FLOWMESH_SERVER_BIN");
  if (server_bin.empty()) server_bin = ExecutableDir() + "/flowmesh-server";
  if (::access(server_bin.c_str(), X_OK) != 0) {
    err << "error: flowmesh-server not found at " << server_bin
        << " (it is installed next to the flowmesh executable)\n";
    return kExitFailure;
  }

  auto redis_password = RedisPassword(ctx.layout);
  if (!redis_password.ok()) {
    err << "error: " << redis_password.status().message() << "\n";
    return kExitFailure;
  }
  // Redis: reuse ours if it already runs, else start it on the configured port.
  pid_t redis_pid = RunningPid(ctx.layout, kRedis);
  bool started_redis = false;
  if (redis_pid == 0) {
    redis_pid = StartRedis(ctx, *redis_password, redis_port, host);
    if (redis_pid == 0) return kExitFailure;
    started_redis = true;
  } else if (pid_t recorded = ReadPidFile(RedisPortFile(ctx.layout)); recorded > 0) {
    redis_port = static_cast<int>(recorded);  // reuse the running redis on its own port
  }

  // Redis is (re)started above even when the server runs: it may have been restarted alone.
  pid_t server_pid = RunningPid(ctx.layout, kServer);
  if (server_pid != 0) {
    ReportAlreadyRunning(ctx, server_pid, url);
    return kExitOk;
  }

  auto fail = [&](const std::string& message, pid_t server) {
    err << "error: " << message << "\n";
    std::string tail = TailFile(ctx.layout.LogFile("server"), 30);
    if (!tail.empty()) {
      err << "last lines of " << ctx.layout.LogFile("server") << ":\n" << tail;
      if (tail.back() != '\n') err << "\n";
    }
    if (server > 0) StopTree(server, std::chrono::milliseconds(5000));
    RemoveRunFiles(ctx.layout, kServer);
    if (started_redis) {
      TerminateProcess(redis_pid, std::chrono::milliseconds(5000));
      RemoveRunFiles(ctx.layout, kRedis);
    }
    return kExitFailure;
  };

  if (PortInUse(port)) {
    return fail(fmt::format("port {} for the server is already in use; choose another with "
                            "--port or FLOWMESH_PORT",
                            port),
                0);
  }
  bool auth_on = ctx.env.Get("FLOWMESH_AUTH") != "off";
  std::string admin_key_hash;
  if (auth_on) {
    auto key = AdminKey(ctx.layout, err);
    if (!key.ok()) return fail("cannot create the admin API key: " + key.status().message(), 0);
    admin_key_hash = auth::HashApiKey(*key);
  }
  SpawnOptions so;
  so.argv = {server_bin,     "--port",       std::to_string(port),      "--state-dir",
             ctx.layout.StateDir(), "--redis-host", "127.0.0.1", "--redis-port",
             std::to_string(redis_port), "--host", host};
  so.env = {{"FLOWMESH_HOME", ctx.layout.home},
            {"FLOWMESH_LOG_DIR", ctx.layout.LogDir()},
            {"FLOWMESH_STACK_HOME", ctx.layout.home},
            {"FLOWMESH_REDIS_PASSWORD", *redis_password}};
  if (auth_on) so.env["FLOWMESH_ADMIN_KEY_SHA256"] = admin_key_hash;
  so.log_file = ctx.layout.LogFile("server");
  auto spawned = Spawn(so);
  if (!spawned.ok()) return fail("cannot start flowmesh-server: " + spawned.status().message(), 0);
  server_pid = *spawned;
  st = WritePidFile(ctx.layout.PidFile("server"), server_pid);
  if (!st.ok()) err << "warning: " << st.message() << "\n";

  auto deadline = Clock::now() + std::chrono::seconds(30);
  bool healthy = false;
  while (Clock::now() < deadline) {
    if (!IsRunning(server_pid)) return fail("flowmesh-server exited during start-up", 0);
    if (HealthOk(url, std::chrono::milliseconds(1000))) {
      healthy = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!healthy) return fail("flowmesh-server did not answer " + url + "/healthz within 30 s", server_pid);
  {
    std::ofstream out(ctx.layout.ServerUrlFile(), std::ios::trunc);
    out << url << "\n";
  }
  if (ctx.inv.json) {
    ctx.PrintJson({{"url", url}, {"server_pid", server_pid}, {"redis_pid", redis_pid},
                   {"redis_port", redis_port}, {"home", ctx.layout.home}});
  } else {
    ctx.io.out << "FlowMesh is up at " << url << "  (server pid " << server_pid
               << ", redis pid " << redis_pid << " on port " << redis_port << "; logs in "
               << ctx.layout.LogDir() << ")\n";
  }
  return kExitOk;
}

int StackDown(Context& ctx) {
  nlohmann::json report = nlohmann::json::object();
  bool clean = true;
  for (const Component* c : {&kServer, &kRedis}) {
    pid_t pid = RunningPid(ctx.layout, *c);
    if (pid == 0) {
      report[c->name] = "not running";
    } else {
      auto grace = std::chrono::milliseconds(c == &kServer ? 15000 : 10000);
      bool ok = StopTree(pid, grace);
      clean = clean && ok;
      report[c->name] = ok ? fmt::format("stopped (pid {})", pid)
                           : fmt::format("pid {} or a child survived", pid);
    }
    RemoveRunFiles(ctx.layout, *c);
  }
  if (size_t left = SweepMarked(ctx.layout); left > 0) {
    report["leftovers"] = fmt::format("stopped {} leftover process(es)", left);
  }
  std::error_code ec;
  fs::remove(ctx.layout.ServerUrlFile(), ec);
  if (ctx.inv.json) {
    ctx.PrintJson(report);
  } else {
    for (const auto& [name, what] : report.items()) {
      ctx.io.out << name << ": " << what.get<std::string>() << "\n";
    }
  }
  return clean ? kExitOk : kExitFailure;
}

int StackStatus(Context& ctx) {
  pid_t redis = RunningPid(ctx.layout, kRedis);
  pid_t server = RunningPid(ctx.layout, kServer);
  std::string url;
  {
    std::ifstream in(ctx.layout.ServerUrlFile());
    std::getline(in, url);
  }
  if (url.empty()) url = ctx.endpoint.url;
  bool healthy = server != 0 && HealthOk(url, std::chrono::milliseconds(3000));
  std::vector<pid_t> children = server != 0 ? Descendants(server) : std::vector<pid_t>{};
  if (ctx.inv.json) {
    ctx.PrintJson({{"home", ctx.layout.home},
                   {"url", url},
                   {"healthy", healthy},
                   {"redis", {{"pid", redis}, {"running", redis != 0}}},
                   {"server", {{"pid", server}, {"running", server != 0}, {"children", children}}}});
  } else {
    auto state = [](pid_t pid) { return pid != 0 ? std::string("running") : std::string("stopped"); };
    ctx.io.out << FormatTable({"COMPONENT", "PID", "STATE"},
                              {{"redis", redis ? std::to_string(redis) : "-", state(redis)},
                               {"server", server ? std::to_string(server) : "-", state(server)}});
    ctx.io.out << "server processes: " << children.size() << " child(ren)\n";
    ctx.io.out << "health: " << (healthy ? "ok" : "unreachable") << " (" << url << ")\n";
  }
  return server != 0 && redis != 0 && healthy ? kExitOk : kExitFailure;
}

int StackLogs(Context& ctx) {
  std::string path = ctx.layout.LogFile(ctx.inv.log_name);
  if (!fs::exists(path) && ctx.inv.log_name == "supervisor") {
    for (const auto& alt : {ctx.layout.StateDir() + "/supervisor.log",
                            ctx.layout.StateDir() + "/logs/supervisor.log"}) {
      if (fs::exists(alt)) path = alt;
    }
  }
  if (!fs::exists(path)) {
    ctx.io.err << "error: no log file " << path << " (has `flowmesh stack up` run?)\n";
    return kExitFailure;
  }
  std::string tail = TailFile(path, static_cast<size_t>(ctx.inv.lines));
  ctx.io.out << tail;
  if (!tail.empty() && tail.back() != '\n') ctx.io.out << "\n";
  ctx.io.out.flush();
  if (!ctx.inv.follow) return kExitOk;
  std::ifstream in(path, std::ios::binary);
  in.seekg(0, std::ios::end);
  std::streamoff pos = in.tellg();
  // Follows until interrupted (Ctrl-C); starts over when the file is truncated.
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    std::error_code ec;
    auto size = static_cast<std::streamoff>(fs::file_size(path, ec));
    if (ec) continue;
    if (size < pos) pos = 0;
    if (size == pos) continue;
    std::ifstream f(path, std::ios::binary);
    f.seekg(pos);
    std::string chunk(static_cast<size_t>(size - pos), '\0');
    f.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    ctx.io.out << chunk;
    ctx.io.out.flush();
    pos = size;
  }
}

// ---------------------------------------------------------------- stack worker

namespace {

int StartWorkers(Context& ctx, const std::string& type, const std::vector<std::string>& devices,
                 int count) {
  nlohmann::json created = nlohmann::json::array();
  int exit_code = kExitOk;
  for (int i = 0; i < count; ++i) {
    nlohmann::json wc = {{"worker_type", type}};
    if (!devices.empty()) wc["cuda_devices"] = devices[static_cast<size_t>(i)];
    if (!ctx.inv.worker_alias.empty()) {
      wc["worker_alias"] = count > 1 ? fmt::format("{}-{}", ctx.inv.worker_alias, i + 1)
                                     : ctx.inv.worker_alias;
    }
    if (ctx.inv.cost_per_hour >= 0) wc["worker_cost_per_hour"] = ctx.inv.cost_per_hour;
    if (ctx.inv.speed > 0) wc["worker_speed"] = ctx.inv.speed;
    wc["tags"] = ctx.inv.tags;
    nlohmann::json body = {{"provider", ctx.inv.provider}, {"worker_config", wc}};
    auto reply = ctx.Call("POST", "/stack/workers", body.dump());
    if (!reply.ok) {
      if (reply.exit_code == kExitUnreachable) return kExitUnreachable;
      exit_code = kExitFailure;
      continue;
    }
    created.push_back(reply.json);
    if (!ctx.inv.json) {
      ctx.io.out << "started " << DisplayValue(reply.json.value("name", nlohmann::json()))
                 << " (" << DisplayValue(reply.json.value("status", nlohmann::json())) << ")"
                 << (devices.empty() ? "" : " on GPU " + devices[static_cast<size_t>(i)])
                 << "\n";
    }
  }
  if (ctx.inv.json) ctx.PrintJson(created);
  return exit_code;
}

}  // namespace

int StackWorkerUpCpu(Context& ctx) { return StartWorkers(ctx, "cpu", {}, ctx.inv.count); }

int StackWorkerUpGpu(Context& ctx) {
  auto targets = ParseGpuTargets(ctx.inv.targets, CountNvidiaGpus());
  if (!targets.ok()) {
    ctx.io.err << "error: " << targets.status().message() << "\n";
    return kExitUnreachable;
  }
  return StartWorkers(ctx, "gpu", *targets, static_cast<int>(targets->size()));
}

int StackWorkerList(Context& ctx) {
  auto reply = ctx.Get("/stack/workers");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
  } else {
    ctx.io.out << FormatRecords(reply.json, {"name", "status", "pid", "worker_id"});
  }
  return kExitOk;
}

int StackWorkerAction(Context& ctx, const std::string& action) {
  std::vector<std::string> names = ctx.inv.names;
  if (names.size() == 1 && names[0] == "all") {
    auto list = ctx.Get("/stack/workers");
    if (!list.ok) return list.exit_code;
    names.clear();
    if (list.json.is_array()) {
      for (const auto& w : list.json) {
        if (w.is_object() && w.contains("name")) names.push_back(DisplayValue(w["name"]));
      }
    }
  }
  nlohmann::json report = nlohmann::json::object();
  int exit_code = kExitOk;
  for (const auto& name : names) {
    std::string path = "/stack/workers/" + http::PercentEncode(name);
    auto reply = action == "down" ? ctx.Call("DELETE", path) : ctx.Call("POST", path + "/" + action);
    if (!reply.ok) {
      if (reply.exit_code == kExitUnreachable) return kExitUnreachable;
      exit_code = kExitFailure;
      report[name] = "error";
      continue;
    }
    std::string done = action == "start" ? "started" : action == "stop" ? "stopped" : "removed";
    report[name] = done;
    if (!ctx.inv.json) ctx.io.out << name << ": " << done << "\n";
  }
  if (ctx.inv.json) ctx.PrintJson(report);
  if (names.empty() && !ctx.inv.json) ctx.io.out << "no workers\n";
  return exit_code;
}

}  // namespace flowmesh::cli
