#include "executors/python.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/hash.h"
#include "executors/python_bootstrap.h"

namespace flowmesh::executors {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMaxCodeBytes = 256 * 1024;  // as the published spec
constexpr size_t kMaxFiles = 10000;           // listed output files
constexpr const char* kProgramDir = "/opt/flowmesh";
constexpr const char* kBootstrapPath = "/opt/flowmesh/python-run.py";
constexpr const char* kCodePath = "/opt/flowmesh/flowmesh_task.py";
constexpr const char* kOutputPath = "/mnt/flowmesh/output";
constexpr const char* kInputsRoot = "/mnt/flowmesh/inputs";
constexpr const char* kMountRoot = "/mnt/flowmesh";
// Files the bootstrap writes into the output folder; the rest are the code's own files.
const std::set<std::string> kBootstrapFiles = {"result.json", "metrics.json", "error.json"};

struct StageInput {
  std::string stage;
  std::string mount_path;
  json result;  // null when the dispatch did not carry it
};

// The task's python section, checked as the published spec checks it.
struct PythonTask {
  std::string code;
  std::string entrypoint = "main";
  std::vector<std::string> requirements;
  std::vector<StageInput> inputs;
  double timeout_s = 0;
  bool network = false;
  std::map<std::string, std::string> env;
  std::vector<std::string> emits;
  uint64_t output_bytes = 0;
  uint64_t memory_bytes = 0;
  double cpus = 1;
};

const json& Field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

bool IsIdentifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// "16Gi", "512Mi", "1.5G", "1024" or a number of bytes; 0 when unreadable.
uint64_t ParseBytes(const json& v) {
  if (v.is_number()) return v.get<double>() > 0 ? static_cast<uint64_t>(v.get<double>()) : 0;
  if (!v.is_string()) return 0;
  const std::string& s = v.get_ref<const std::string&>();
  size_t used = 0;
  double n = 0;
  try {
    n = std::stod(s, &used);
  } catch (...) {
    return 0;
  }
  std::string unit = s.substr(used);
  if (!unit.empty() && unit.back() == 'B') unit.pop_back();
  static const std::map<std::string, double> kUnits = {
      {"", 1},    {"K", 1e3},     {"M", 1e6},        {"G", 1e9},           {"T", 1e12},
      {"k", 1e3}, {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end() || n <= 0) return 0;
  return static_cast<uint64_t>(n * it->second);
}

bool UnderMountRoot(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  std::string text = p.string();
  if (!p.is_absolute() || text.find("..") != std::string::npos) return false;
  return text.rfind(std::string(kMountRoot) + "/", 0) == 0 && text != kOutputPath &&
         text.rfind(std::string(kOutputPath) + "/", 0) != 0;
}

Status ParseInputs(const json& section, PythonTask* task) {
  const json& inputs = Field(section, "inputs");
  if (inputs.is_null()) return Status::Ok();
  if (!inputs.is_array()) return InvalidArgument("python.inputs must be a list");
  std::set<std::string> stages, mounts;
  for (const json& entry : inputs) {
    StageInput in;
    const json& stage = entry.is_object() ? Field(entry, "stage") : entry;
    if (!stage.is_string() || stage.get<std::string>().empty()) {
      return InvalidArgument("python inputs[].stage must be non-empty");
    }
    in.stage = stage.get<std::string>();
    const json& mount = Field(entry, "mountPath");
    in.mount_path = mount.is_string()
                        ? fs::path(mount.get<std::string>()).lexically_normal().string()
                        : std::string(kInputsRoot) + "/" + in.stage;
    if (!UnderMountRoot(in.mount_path)) {
      return InvalidArgument("python inputs[" + in.stage + "].mountPath must be under " +
                             std::string(kMountRoot) + " (and not the output folder)");
    }
    if (!stages.insert(in.stage).second)
      return InvalidArgument("python inputs[].stage must be unique");
    if (!mounts.insert(in.mount_path).second) {
      return InvalidArgument("python inputs[].mountPath must be unique");
    }
    in.result = Field(entry, "result");
    task->inputs.push_back(std::move(in));
  }
  return Status::Ok();
}

Status ParseEnv(const json& section, PythonTask* task) {
  const json& env = Field(section, "env");
  if (env.is_null()) return Status::Ok();
  if (!env.is_object()) return InvalidArgument("python.env must be a mapping");
  for (auto it = env.begin(); it != env.end(); ++it) {
    if (it.key().empty() || it.key().find('=') != std::string::npos) {
      return InvalidArgument("python.env: invalid variable name '" + it.key() + "'");
    }
    if (it->is_null()) continue;
    task->env[it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
  }
  return Status::Ok();
}

Result<PythonTask> ParseTask(const json& spec, const PythonExecutorConfig& config) {
  const json& section = Field(spec, "python");
  if (!section.is_object()) return InvalidArgument("python task without a python section");
  PythonTask task;
  const json& code = Field(section, "code");
  if (!code.is_string() ||
      code.get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos) {
    return InvalidArgument("python spec.code must be non-empty");
  }
  task.code = code.get<std::string>();
  if (task.code.size() > kMaxCodeBytes) {
    return InvalidArgument("python spec.code is " + std::to_string(task.code.size()) +
                           " bytes; the limit is " + std::to_string(kMaxCodeBytes));
  }
  if (const json& e = Field(section, "entrypoint"); e.is_string())
    task.entrypoint = e.get<std::string>();
  if (!IsIdentifier(task.entrypoint)) {
    return InvalidArgument("python spec.entrypoint '" + task.entrypoint +
                           "' is not a Python identifier");
  }
  const json& network = Field(section, "network");
  task.network = network.is_string() && network.get<std::string>() == "bridge";
  if (const json& r = Field(section, "requirements"); r.is_array()) {
    for (const json& req : r) {
      if (req.is_string()) task.requirements.push_back(req.get<std::string>());
    }
  }
  if (!task.requirements.empty() && !task.network) {
    return InvalidArgument(
        "python spec.requirements are installed with pip and need network: bridge");
  }
  if (const json& e = Field(section, "emits"); e.is_array()) {
    for (const json& name : e) {
      if (!name.is_string() || name.get<std::string>().empty()) {
        return InvalidArgument("python spec.emits entries must be non-empty");
      }
      task.emits.push_back(name.get<std::string>());
    }
  }
  const json& image = Field(section, "image");
  if (image.is_string() && image.get<std::string>().rfind("python:", 0) != 0) {
    return FailedPrecondition("python spec.image '" + image.get<std::string>() +
                              "': this worker runs python tasks with its own python3 in a "
                              "sandbox, not in container images; drop 'image'");
  }
  FM_RETURN_IF_ERROR(ParseInputs(section, &task));
  FM_RETURN_IF_ERROR(ParseEnv(section, &task));

  task.timeout_s = config.default_timeout_s;
  for (const json* t : {&Field(spec, "timeoutSeconds"), &Field(section, "timeoutSeconds")}) {
    if (!t->is_number()) continue;
    double value = t->get<double>();
    if (!(value > 0 && value <= config.max_timeout_s)) {
      return InvalidArgument("python spec.timeoutSeconds must be in (0, " +
                             std::to_string(static_cast<int>(config.max_timeout_s)) + "]");
    }
    task.timeout_s = value;
  }
  task.output_bytes = ParseBytes(Field(Field(section, "pythonOutput"), "maxBytes"));
  const json& hardware = Field(Field(spec, "resources"), "hardware");
  task.memory_bytes = ParseBytes(Field(hardware, "memory"));
  if (const json& cpu = Field(hardware, "cpu"); cpu.is_number() && cpu.get<double>() > 0) {
    task.cpus = std::max(1.0, cpu.get<double>());
  }
  return task;
}

Status WriteFile(const fs::path& path, std::string_view text, mode_t mode) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) return Internal("cannot write " + path.string());
  if (chmod(path.c_str(), mode) != 0) return Internal("chmod " + path.string());
  return Status::Ok();
}

Status MakeDir(const fs::path& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return Internal("mkdir " + path.string() + ": " + strerror(errno));
  }
  if (chmod(path.c_str(), mode) != 0) return Internal("chmod " + path.string());
  return Status::Ok();
}

// The attempt's host folder: removed with everything in it when this goes away.
class Workspace {
 public:
  static Result<std::unique_ptr<Workspace>> Create(const std::string& root_hint,
                                                   const std::string& task_id, int attempt) {
    std::error_code ec;
    fs::path root =
        root_hint.empty() ? fs::temp_directory_path(ec) / "flowmesh-python" : fs::path(root_hint);
    if (ec) return Internal("no temp folder: " + ec.message());
    if (fs::create_directories(root, ec)) {
      // Traversable (not listable) by the sandbox uid, as each attempt folder below it.
      chmod(root.c_str(), 0711);
    }
    // A shared temp folder: refuse one another user planted (or a link to elsewhere).
    struct stat st;
    if (lstat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 0022) != 0) {
      return FailedPrecondition("python work folder " + root.string() +
                                " is not a folder owned by the worker and writable only by it");
    }
    std::string name = root / (task_id + "-a" + std::to_string(attempt) + "-XXXXXX");
    if (mkdtemp(name.data()) == nullptr)
      return Internal("mkdtemp " + name + ": " + strerror(errno));
    auto ws = std::unique_ptr<Workspace>(new Workspace(name));
    FM_RETURN_IF_ERROR(MakeDir(name, 0711));
    return ws;
  }
  ~Workspace() {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  const fs::path& dir() const { return dir_; }

 private:
  explicit Workspace(fs::path dir) : dir_(std::move(dir)) {}
  fs::path dir_;
};

// Reads a file the sandbox wrote: a regular file only (never a symlink the code planted
// to make the worker read its own files), at most `max` bytes.
Result<std::string> ReadTaskFile(const fs::path& path, size_t max) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return NotFound(path.filename().string() + ": " + strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return FailedPrecondition("python task wrote " + path.filename().string() +
                              " that is not a regular file");
  }
  if (static_cast<size_t>(st.st_size) > max) {
    close(fd);
    return FailedPrecondition("python task wrote a " + path.filename().string() + " of " +
                              std::to_string(st.st_size) + " bytes; the limit is " +
                              std::to_string(max));
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  ssize_t n = read(fd, text.data(), text.size());
  close(fd);
  if (n < 0) return Internal("read " + path.string());
  text.resize(static_cast<size_t>(n));
  return text;
}

Result<json> ReadTaskJson(const fs::path& path, size_t max) {
  FM_ASSIGN_OR_RETURN(std::string text, ReadTaskFile(path, max));
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return FailedPrecondition("python task wrote an unreadable " + path.filename().string());
  }
  return value;
}

Result<std::string> FileSha256(const fs::path& path, uint64_t* size) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Internal("open " + path.string());
  Sha256 hash;
  char buf[64 << 10];
  *size = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    hash.Update(std::string_view(buf, static_cast<size_t>(n)));
    *size += static_cast<uint64_t>(n);
  }
  close(fd);
  return hash.FinishHex();
}

// Regular files the code left in the output folder, sorted by name (symlinks, FIFOs and
// sockets are skipped). Their total size is held to `max_total` (pythonOutput.maxBytes).
Result<json> ListFiles(const fs::path& output, uint64_t max_total) {
  std::vector<std::pair<std::string, fs::path>> found;
  uint64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(output, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    std::string name = fs::relative(it->path(), output, ec).generic_string();
    if (kBootstrapFiles.count(name)) continue;
    total += it->file_size(ec);
    if (found.size() >= kMaxFiles || total > max_total) {
      return FailedPrecondition("python task wrote more than " + std::to_string(kMaxFiles) +
                                " files or " + std::to_string(max_total) +
                                " bytes to its output folder");
    }
    found.emplace_back(name, it->path());
  }
  std::sort(found.begin(), found.end());
  json files = json::array();
  for (const auto& [name, path] : found) {
    uint64_t size = 0;
    FM_ASSIGN_OR_RETURN(std::string digest, FileSha256(path, &size));
    files.push_back({{"name", name}, {"size", size}, {"sha256", digest}});
  }
  return files;
}

std::string SignalName(int sig) {
  const char* name = sigabbrev_np(sig);
  return name ? std::string("SIG") + name : "signal " + std::to_string(sig);
}

std::string WithStderr(std::string message, const SandboxOutcome& outcome) {
  if (outcome.stderr_tail.empty()) return message;
  message += "; last lines of stderr:";
  size_t from = outcome.stderr_tail.size() > 8 ? outcome.stderr_tail.size() - 8 : 0;
  for (size_t i = from; i < outcome.stderr_tail.size(); ++i) {
    message += "\n" + outcome.stderr_tail[i];
  }
  return message;
}

std::string FormatSeconds(double s) {
  std::string text = std::to_string(s);
  while (!text.empty() && text.back() == '0') text.pop_back();
  if (!text.empty() && text.back() == '.') text.pop_back();
  return text;
}

// The failure of an attempt whose sandbox did not exit 0.
Status Failure(const SandboxOutcome& outcome, const PythonTask& task, const SandboxLimits& limits,
               const fs::path& output) {
  using End = SandboxOutcome::End;
  switch (outcome.end) {
    case End::kCancelled:
      return Cancelled("python task cancelled");
    case End::kTimedOut:
      return FailedPrecondition(WithStderr(
          "python task timed out after " + FormatSeconds(task.timeout_s) + "s", outcome));
    case End::kSignaled: {
      std::string why = "python task was killed by " + SignalName(outcome.signal);
      if (outcome.signal == SIGXCPU || outcome.signal == SIGKILL) {
        why += " (its CPU time limit is " + std::to_string(limits.cpu_seconds) + "s" +
               (outcome.signal == SIGKILL ? ", or its memory limit" : "") + ")";
      } else if (outcome.signal == SIGXFSZ) {
        why +=
            " (a file exceeded its size limit of " + std::to_string(limits.file_size) + " bytes)";
      }
      return FailedPrecondition(WithStderr(why, outcome));
    }
    case End::kExited:
      break;
  }
  auto error = ReadTaskJson(output / "error.json", 1 << 20);
  if (error.ok() && error->is_object() && !Field(*error, "message").is_null()) {
    const json& type = Field(*error, "type");
    const json& message = Field(*error, "message");
    return FailedPrecondition(
        "python task failed: " + (type.is_string() ? type.get<std::string>() : type.dump()) + ": " +
        (message.is_string() ? message.get<std::string>() : message.dump()));
  }
  return FailedPrecondition(
      WithStderr("python task exited with code " + std::to_string(outcome.exit_code), outcome));
}

Result<json> ReadResult(const fs::path& output, const PythonTask& task, size_t max,
                        uint64_t max_output) {
  fs::path result_file = output / "result.json";
  if (!fs::exists(fs::symlink_status(result_file))) {
    return FailedPrecondition("python task exited without writing a result");
  }
  FM_ASSIGN_OR_RETURN(json value, ReadTaskJson(result_file, max));
  json metrics = json::object();
  fs::path metrics_file = output / "metrics.json";
  if (fs::exists(fs::symlink_status(metrics_file))) {
    FM_ASSIGN_OR_RETURN(metrics, ReadTaskJson(metrics_file, max));
  }
  if (!metrics.is_object()) {
    return FailedPrecondition("python task wrote metrics that are not an object");
  }
  for (auto it = metrics.begin(); it != metrics.end(); ++it) {
    if (!it->is_number() || !std::isfinite(it->get<double>())) {
      return FailedPrecondition("python task wrote metrics that are not finite numbers");
    }
  }
  std::vector<std::string> missing;
  for (const auto& name : task.emits) {
    if (!metrics.contains(name)) missing.push_back(name);
  }
  if (!missing.empty()) {
    return FailedPrecondition("python task did not report declared emits " + json(missing).dump());
  }
  FM_ASSIGN_OR_RETURN(json files, ListFiles(output, max_output));
  return json{{"ok", true},
              {"task_type", "python"},
              {"exit_code", 0},
              {"value", std::move(value)},
              {"metrics", std::move(metrics)},
              {"files", std::move(files)}};
}

// Lays out the attempt's folder and returns the sandbox options that run it.
Result<SandboxOptions> Prepare(const PythonTask& task, const fs::path& dir,
                               const PythonExecutorConfig& config, const Sandbox& sandbox) {
  SandboxOptions options;
  fs::path home = dir / "home", output = dir / "output", program = dir / "program";
  FM_RETURN_IF_ERROR(MakeDir(home, 0700));
  FM_RETURN_IF_ERROR(MakeDir(output, 0700));
  FM_RETURN_IF_ERROR(MakeDir(program, 0700));
  FM_RETURN_IF_ERROR(MakeDir(dir / "inputs", 0700));
  FM_RETURN_IF_ERROR(sandbox.GrantAccess(home.string()));
  FM_RETURN_IF_ERROR(sandbox.GrantAccess(output.string()));
  FM_RETURN_IF_ERROR(WriteFile(program / "python-run.py", kPythonBootstrap, 0600));
  FM_RETURN_IF_ERROR(WriteFile(program / "flowmesh_task.py", task.code, 0600));
  options.binds.push_back({program.string(), kProgramDir, false});
  options.binds.push_back({output.string(), kOutputPath, true});

  json mounts = json::object();
  for (size_t i = 0; i < task.inputs.size(); ++i) {
    const StageInput& in = task.inputs[i];
    if (in.result.is_null()) {
      return FailedPrecondition("python input stage '" + in.stage +
                                "': its result did not come with the task (is it a dependency?)");
    }
    fs::path stage_dir = dir / "inputs" / std::to_string(i);
    FM_RETURN_IF_ERROR(MakeDir(stage_dir, 0700));
    bool skipped =
        in.result.is_object() && Field(in.result, "skipped") == json(true) && in.result.size() == 1;
    json envelope = {{"result", in.result.is_object() ? in.result : json{{"value", in.result}}},
                     {"metadata", {{"skipped", skipped}}}};
    FM_RETURN_IF_ERROR(WriteFile(stage_dir / "results.json", envelope.dump(), 0600));
    options.binds.push_back({stage_dir.string(), in.mount_path, false});
    mounts[in.stage] = in.mount_path;
  }
  // Readable by the sandbox uid only (the binds keep them read-only inside).
  FM_RETURN_IF_ERROR(sandbox.GrantAccess(program.string()));
  FM_RETURN_IF_ERROR(sandbox.GrantAccess((dir / "inputs").string()));

  options.env = task.env;
  options.env["FLOWMESH_PY_CODE"] = kCodePath;
  options.env["FLOWMESH_PY_ENTRYPOINT"] = task.entrypoint;
  options.env["FLOWMESH_PY_INPUTS"] = mounts.dump();
  options.env["FLOWMESH_PY_OUTPUT"] = kOutputPath;
  options.env["FLOWMESH_OUTPUT"] = kOutputPath;
  options.env["FLOWMESH_PY_REQUIREMENTS"] = json(task.requirements).dump();
  options.env["FLOWMESH_PY_EMITS"] = json(task.emits).dump();
  options.env["PYTHONDONTWRITEBYTECODE"] = "1";
  options.env["PYTHONUNBUFFERED"] = "1";
  options.argv = {config.python, "-u", kBootstrapPath};
  options.home = home.string();
  options.network = task.network;
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(task.timeout_s * 1000));
  options.max_output_bytes = config.max_log_bytes;
  options.limits.cpu_seconds = static_cast<uint64_t>(std::ceil(task.timeout_s * task.cpus)) + 1;
  options.limits.address_space =
      task.memory_bytes ? task.memory_bytes : config.default_memory_bytes;
  options.limits.processes = config.max_processes;
  options.limits.file_size = task.output_bytes ? task.output_bytes : config.default_output_bytes;
  return options;
}

}  // namespace

Status PythonExecutor::Available(const PythonExecutorConfig& config) {
  if (access(config.python.c_str(), X_OK) != 0) {
    return FailedPrecondition("python tasks need " + config.python + " (Debian package python3)");
  }
  return Sandbox(config.sandbox).Probe();
}

Result<json> PythonExecutor::Run(TaskContext& ctx) {
  FM_ASSIGN_OR_RETURN(PythonTask task, ParseTask(ctx.spec, config_));
  if (access(config_.python.c_str(), X_OK) != 0) {
    return FailedPrecondition("python tasks need " + config_.python + " on the worker");
  }
  Sandbox sandbox(config_.sandbox);
  FM_ASSIGN_OR_RETURN(auto workspace,
                      Workspace::Create(config_.work_root, ctx.task_id, ctx.attempt));
  FM_ASSIGN_OR_RETURN(SandboxOptions options, Prepare(task, workspace->dir(), config_, sandbox));
  auto sink = [&ctx](SandboxStream stream, std::string line) {
    if (!ctx.log) return;
    ctx.log(stream == SandboxStream::kStderr ? "[stderr] " + line : std::move(line));
  };
  FM_ASSIGN_OR_RETURN(SandboxOutcome outcome, sandbox.Run(options, ctx.cancelled, sink));
  if (outcome.dropped_output_bytes > 0 && ctx.log) {
    ctx.log("[flowmesh] " + std::to_string(outcome.dropped_output_bytes) +
            " bytes of output beyond the log limit were dropped");
  }
  fs::path output = workspace->dir() / "output";
  if (outcome.end != SandboxOutcome::End::kExited || outcome.exit_code != 0) {
    return Failure(outcome, task, options.limits, output);
  }
  FM_ASSIGN_OR_RETURN(json result,
                      ReadResult(output, task, config_.max_result_bytes, options.limits.file_size));
  FM_RETURN_IF_ERROR(
      StoreResultFiles(ctx, output.string(), result["files"], "python task: its output files"));
  return result;
}

}  // namespace flowmesh::executors
