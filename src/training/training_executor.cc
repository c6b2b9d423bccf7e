#include "training/training_executor.h"

#include <stdlib.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/hash.h"
#include "spec/executor_options.h"
#include "training/bridge_process.h"
#include "training/bridge_protocol.h"

namespace flowmesh::training {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMaxFiles = 10000;
constexpr size_t kStderrLinesInErrors = 8;

// The attempt's folder, removed with everything in it when the attempt ends.
class WorkDir {
 public:
  static Result<WorkDir> Create(const std::string& root) {
    std::error_code ec;
    fs::path base = root.empty() ? fs::temp_directory_path(ec) : fs::path(root);
    if (ec) return Internal("no temp folder: " + ec.message());
    fs::create_directories(base, ec);
    std::string pattern = (base / "flowmesh-train-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return Internal("cannot create a training folder under " + base.string());
    }
    WorkDir dir;
    dir.path_ = pattern;
    fs::create_directories(dir.output(), ec);
    if (ec) return Internal("cannot create " + dir.output().string() + ": " + ec.message());
    return dir;
  }
  WorkDir() = default;
  WorkDir(WorkDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  WorkDir& operator=(WorkDir&&) = delete;
  ~WorkDir() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path output() const { return path_ / "output"; }

 private:
  fs::path path_;
};

Result<std::string> FileSha256(const fs::path& path, uint64_t* size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Internal("cannot read " + path.string());
  Sha256 hash;
  std::vector<char> buffer(1 << 16);
  *size = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    hash.Update(std::string_view(buffer.data(), static_cast<size_t>(n)));
    *size += static_cast<uint64_t>(n);
  }
  return hash.FinishHex();
}

// Every regular file under `output`, sorted by name, with its size and digest.
Result<json> ListFiles(const fs::path& output) {
  std::vector<std::pair<std::string, fs::path>> found;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(output, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    if (found.size() >= kMaxFiles) {
      return FailedPrecondition("the trainer wrote more than " + std::to_string(kMaxFiles) +
                                " files");
    }
    found.emplace_back(fs::relative(it->path(), output, ec).generic_string(), it->path());
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

std::string WithStderr(std::string message, const std::deque<std::string>& tail) {
  if (tail.empty()) return message;
  message += "; last lines of stderr:";
  size_t from = tail.size() > kStderrLinesInErrors ? tail.size() - kStderrLinesInErrors : 0;
  for (size_t i = from; i < tail.size(); ++i) message += "\n" + tail[i];
  return message;
}

// What the child said, gathered by the stdout sink.
struct Conversation {
  bool hello = false;
  Status hello_status;
  std::optional<json> result;
  std::optional<json> error;
  size_t log_budget = 0;
};

}  // namespace

const std::vector<std::string>& TrainingTaskTypes() {
  static const std::vector<std::string> kTypes = {"diffusion",
                                                  "dpo",
                                                  "image_classification",
                                                  "image_classification_training",
                                                  "lora_sft",
                                                  "omni_text2audio",
                                                  "omni_text2general",
                                                  "omni_text2image",
                                                  "omni_text2speech",
                                                  "omni_text2video",
                                                  "ppo",
                                                  "sft"};
  return kTypes;
}

Status CheckTrainingSpec(const std::string& task_type, json* spec) {
  if (!spec->is_object()) return InvalidArgument(task_type + ": the task spec must be a mapping");
  // Generation (diffusion, omni_*) has no `training`; the trainer checks its `inference`
  // and `omni` options before it imports torch.
  std::vector<std::string> sections;
  if (task_type != "diffusion" && task_type.rfind("omni_", 0) != 0) sections.push_back("training");
  if (task_type == "lora_sft") sections.push_back("lora");
  for (const std::string& name : sections) {
    const spec::OptionSection* declared = spec::FindSection(name);
    if (declared == nullptr) continue;
    json& value = (*spec)[name];
    if (value.is_null()) value = json::object();
    if (std::optional<std::string> problem = spec::ResolveSection(*declared, &value)) {
      return InvalidArgument(*problem);
    }
  }
  return Status::Ok();
}

Result<json> TrainingExecutor::Run(executors::TaskContext& ctx) {
  json spec = ctx.spec;
  FM_RETURN_IF_ERROR(CheckTrainingSpec(task_type_, &spec));
  FM_ASSIGN_OR_RETURN(WorkDir dir, WorkDir::Create(config_.work_root));

  BridgeCommand command;
  command.argv = {config_.python, "-m", "flowmesh_train"};
  command.working_dir = dir.path().string();
  command.env = {{"PYTHONPATH", config_.package_dir}, {"PYTHONUNBUFFERED", "1"},
                 {"PYTHONDONTWRITEBYTECODE", "1"},    {"TOKENIZERS_PARALLELISM", "false"},
                 {"HF_HUB_DISABLE_TELEMETRY", "1"},   {"WANDB_DISABLED", "true"},
                 {"TMPDIR", dir.path().string()}};
  FM_ASSIGN_OR_RETURN(std::unique_ptr<BridgeProcess> process, BridgeProcess::Start(command));
  if (ctx.log) ctx.log("[flowmesh] trainer started (pid " + std::to_string(process->pid()) + ")");
  StartMessage start{ctx.task_id, ctx.attempt, task_type_, spec, dir.output().string()};
  // A trainer that died at once closed its stdin; Pump then reports how it ended.
  Status sent = process->Send(StartLine(start));

  Conversation talk;
  talk.log_budget = config_.max_log_bytes;
  auto log = [&](std::string line) {
    if (!ctx.log || talk.log_budget == 0) return;
    talk.log_budget = line.size() + 1 >= talk.log_budget ? 0 : talk.log_budget - line.size() - 1;
    ctx.log(std::move(line));
  };
  auto on_stdout = [&](std::string line) {
    auto message = ParseBridgeLine(line);
    if (!message.ok()) {
      log("[trainer] " + line);  // stray output on the protocol channel
      return;
    }
    const json& body = message->body;
    switch (message->type) {
      case BridgeMessageType::kHello:
        talk.hello = true;
        talk.hello_status = CheckHello(body);
        if (!talk.hello_status.ok()) process->Kill();
        break;
      case BridgeMessageType::kLog:
        log("[trainer] " + body["message"].get<std::string>());
        break;
      case BridgeMessageType::kProgress:
        if (ctx.update) ctx.update(ProgressUpdate(body));
        break;
      case BridgeMessageType::kCheckpoint:
        log("[trainer] checkpoint " + body["path"].get<std::string>());
        break;
      case BridgeMessageType::kResult:
        talk.result = body["result"];
        break;
      case BridgeMessageType::kError:
        talk.error = body;
        break;
    }
  };
  auto on_stderr = [&](std::string line) { log("[stderr] " + line); };
  FM_ASSIGN_OR_RETURN(BridgeExit exit, process->Pump(ctx.cancelled, on_stdout, on_stderr));

  if (!talk.hello_status.ok()) return talk.hello_status;
  const bool generates = task_type_ == "diffusion" || task_type_.rfind("omni_", 0) == 0;
  const std::string activity = generates ? "generation" : "training";
  if (talk.error) {
    Status status = ErrorStatus(*talk.error);
    if (status.code() == StatusCode::kUnavailable) {
      return Unavailable(WithStderr(task_type_ + " " + activity + " failed: " + status.message(),
                                    exit.stderr_tail));
    }
    return Status(status.code(), task_type_ + ": " + status.message());
  }
  if (!talk.result || exit.signaled || exit.exit_code != 0) {
    std::string what = !talk.hello
                           ? "the trainer " + exit.Describe() + " before it spoke the protocol"
                           : "the trainer " + exit.Describe() + " without a result";
    if (!sent.ok() && !talk.hello) what += " (" + sent.message() + ")";
    return Unavailable(
        WithStderr(task_type_ + " " + activity + " crashed: " + what, exit.stderr_tail));
  }
  json result = std::move(*talk.result);
  FM_ASSIGN_OR_RETURN(json files, ListFiles(dir.output()));
  FM_RETURN_IF_ERROR(executors::StoreResultFiles(ctx, dir.output().string(), files,
                                                 "training: the trained files"));
  result["task_type"] = task_type_;
  result["files"] = std::move(files);
  return result;
}

Result<std::vector<std::string>> ProbeTrainingTaskTypes(const TrainingConfig& config) {
  if (config.python.empty()) return FailedPrecondition("training: no python configured");
  std::error_code ec;
  if (!fs::exists(fs::path(config.package_dir) / "flowmesh_train" / "__main__.py", ec)) {
    return FailedPrecondition("training: no flowmesh_train package under '" + config.package_dir +
                              "'");
  }
  BridgeCommand command;
  command.argv = {config.python, "-m", "flowmesh_train", "--probe"};
  command.env = {{"PYTHONPATH", config.package_dir}, {"PYTHONDONTWRITEBYTECODE", "1"}};
  auto out = RunToCompletion(command);
  if (!out.ok()) return FailedPrecondition("training: " + out.status().message());
  json probe = json::parse(*out, nullptr, false);
  if (probe.is_discarded() || !probe.is_object()) {
    return FailedPrecondition("training: the probe printed no JSON: " + *out);
  }
  FM_RETURN_IF_ERROR(CheckHello(probe));
  // A trainer from before `task_types` was added to the probe trains these three.
  std::vector<std::string> offered = {"dpo", "lora_sft", "sft"};
  if (auto listed = probe.find("task_types"); listed != probe.end() && listed->is_array()) {
    offered.clear();
    for (const std::string& type : TrainingTaskTypes()) {
      for (const json& named : *listed) {
        if (named.is_string() && named.get<std::string>() == type) offered.push_back(type);
      }
    }
  }
  return offered;
}

Status ProbeTraining(const TrainingConfig& config) {
  return ProbeTrainingTaskTypes(config).status();
}

Status RegisterTrainingExecutors(executors::ExecutorRegistry& registry,
                                 const TrainingConfig& config) {
  FM_ASSIGN_OR_RETURN(std::vector<std::string> offered, ProbeTrainingTaskTypes(config));
  for (const std::string& type : offered) {
    registry.Register(type,
                      [type, config] { return std::make_unique<TrainingExecutor>(type, config); });
  }
  return Status::Ok();
}

}  // namespace flowmesh::training
