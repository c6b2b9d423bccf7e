#include "training/lora_inference.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>

#include "common/hash.h"
#include "training/bridge_process.h"

namespace flowmesh::training {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMaxConvertLogLines = 200;

std::string StringField(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// sha256 over the names and contents of the regular files directly in `dir`, sorted.
Result<std::string> FolderDigest(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && !it->is_symlink(ec)) files.push_back(it->path());
  }
  if (ec) return Internal("cannot list " + dir.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  Sha256 all;
  std::vector<char> buffer(1 << 16);
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Internal("cannot read " + path.string());
    Sha256 one;
    while (in) {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      if (in.gcount() > 0)
        one.Update(std::string_view(buffer.data(), static_cast<size_t>(in.gcount())));
    }
    all.Update(path.filename().string());
    all.Update(std::string_view("\0", 1));
    all.Update(one.FinishHex());
    all.Update("\n");
  }
  return all.FinishHex();
}

// The inference executor, preceded by the conversion of the task's LoRA adapter.
class LoraInferenceExecutor : public executors::Executor {
 public:
  LoraInferenceExecutor(std::unique_ptr<executors::Executor> inner,
                        std::shared_ptr<GgufAdapterCache> cache)
      : inner_(std::move(inner)), cache_(std::move(cache)) {}

  Result<json> Run(executors::TaskContext& ctx) override {
    json* model = ctx.spec.is_object() && ctx.spec.contains("model") ? &ctx.spec["model"] : nullptr;
    bool adapted = model != nullptr && model->is_object() && model->contains("adapters") &&
                   (*model)["adapters"].is_array() && !(*model)["adapters"].empty();
    auto log = [&](std::string line) {
      if (ctx.log) ctx.log(std::move(line));
    };
    if (adapted) {
      FM_ASSIGN_OR_RETURN(LoraGguf gguf, cache_->Prepare(*model, ctx.cancelled, log));
      // The inference executor applies a GGUF adapter per request on the base's engine.
      (*model)["source"] = json{{"type", "local"}, {"identifier", gguf.base}};
      (*model)["adapters"] = json::array({json{{"type", "lora"}, {"path", gguf.adapter}, {"kwargs", {{"scale", gguf.scale}}}}});
    } else if (model != nullptr && model->is_object()) {
      FM_ASSIGN_OR_RETURN(std::string gguf, cache_->PrepareSnapshot(*model, ctx.cancelled, log));
      if (!gguf.empty()) (*model)["source"] = json{{"type", "local"}, {"identifier", gguf}};
    }
    return inner_->Run(ctx);
  }

 private:
  std::unique_ptr<executors::Executor> inner_;
  std::shared_ptr<GgufAdapterCache> cache_;
};

}  // namespace

const char* BuiltLlamaSourceDir() { return FLOWMESH_LLAMA_SOURCE_DIR_VALUE; }

Result<LoraGguf> GgufAdapterCache::Prepare(const json& model, const std::atomic<bool>& cancelled,
                                           const std::function<void(std::string)>& log) {
  const json& adapters = model["adapters"];
  if (adapters.size() != 1) {
    return InvalidArgument("model.adapters: one LoRA adapter per task is supported, got " +
                           std::to_string(adapters.size()));
  }
  const json& adapter = adapters[0];
  std::string type = StringField(adapter, "type");
  if (!type.empty() && type != "lora") {
    return InvalidArgument("model.adapters[0].type must be lora, got '" + type + "'");
  }
  if (!StringField(adapter, "task_id").empty() || !StringField(adapter, "url").empty()) {
    return FailedPrecondition(
        "model.adapters[0]: adapters named by task_id or url are not fetched by workers yet; "
        "download the lora_sft task's final_lora/ files and name their folder in `path`");
  }
  LoraGguf out;
  const json* kwargs = adapter.contains("kwargs") ? &adapter["kwargs"] : nullptr;
  if (kwargs && kwargs->is_object() && kwargs->contains("scale")) {
    if (!(*kwargs)["scale"].is_number()) {
      return InvalidArgument("model.adapters[0].kwargs.scale must be a number");
    }
    out.scale = (*kwargs)["scale"].get<float>();
  }
  fs::path adapter_dir = StringField(adapter, "path");
  std::error_code ec;
  if (adapter_dir.empty() || !fs::exists(adapter_dir / "adapter_config.json", ec)) {
    return InvalidArgument(
        "model.adapters[0].path must be a folder holding a peft adapter "
        "(adapter_config.json), got '" +
        adapter_dir.string() + "'");
  }
  const json& source = model.contains("source") ? model["source"] : json();
  fs::path base = StringField(source, "identifier");
  if (base.empty() || !fs::exists(base / "config.json", ec)) {
    return InvalidArgument(
        "model.adapters: a LoRA adapter applies to its base model, so model.source must be "
        "the transformers folder of that model (type local, a folder with config.json), got '" +
        base.string() + "'");
  }
  FM_ASSIGN_OR_RETURN(std::string base_digest, FolderDigest(base));
  FM_ASSIGN_OR_RETURN(std::string adapter_digest, FolderDigest(adapter_dir));
  // The base once per base model (every adapter of it shares the engine that loads it);
  // the adapter once per (base, adapter).
  fs::path base_gguf = fs::path(config_.cache_dir) / (base_digest + ".gguf");
  fs::path adapter_gguf =
      fs::path(config_.cache_dir) / (Sha256Hex(base_digest + "+" + adapter_digest) + ".lora.gguf");
  FM_ASSIGN_OR_RETURN(out.base, Convert(base_gguf, {"--base", base.string()},
                                         "the base model " + base.string(), cancelled, log));
  FM_ASSIGN_OR_RETURN(out.adapter,
                      Convert(adapter_gguf, {"--base", base.string(), "--lora", adapter_dir.string()},
                              "the LoRA adapter " + adapter_dir.string(), cancelled, log));
  return out;
}

Result<std::string> GgufAdapterCache::PrepareSnapshot(const json& model,
                                                      const std::atomic<bool>& cancelled,
                                                      const std::function<void(std::string)>& log) {
  const json& source = model.contains("source") ? model["source"] : json();
  std::string type = StringField(source, "type");
  std::string id = StringField(source, "identifier");
  if (config_.hf_hub_dir.empty() || (type != "huggingface" && type != "hf") ||
      id.find('/') == std::string::npos || id.find("..") != std::string::npos || id[0] == '/') {
    return std::string();
  }
  std::string folder = "models--";
  for (char c : id) folder += c == '/' ? std::string("--") : std::string(1, c);
  fs::path repo = fs::path(config_.hf_hub_dir) / folder;
  std::string revision = StringField(source, "revision");
  std::vector<fs::path> candidates;
  std::error_code ec;
  {
    std::ifstream ref(repo / "refs" / (revision.empty() ? "main" : revision));
    std::string commit;
    if (ref >> commit) candidates.push_back(repo / "snapshots" / commit);
  }
  if (!revision.empty()) {
    candidates.push_back(repo / "snapshots" / revision);
  } else if (fs::is_directory(repo / "snapshots", ec)) {
    std::vector<fs::path> all;
    for (fs::directory_iterator it(repo / "snapshots", ec), end; !ec && it != end;
         it.increment(ec)) {
      all.push_back(it->path());
    }
    std::sort(all.begin(), all.end());
    candidates.insert(candidates.end(), all.begin(), all.end());
  }
  for (const fs::path& snapshot : candidates) {
    if (!fs::exists(snapshot / "config.json", ec)) continue;
    bool safetensors = false;
    for (fs::directory_iterator it(snapshot, ec), end; !ec && it != end; it.increment(ec)) {
      std::string ext = it->path().extension().string();
      if (ext == ".gguf") return std::string();  // the engine loads that one itself
      safetensors = safetensors || ext == ".safetensors";
    }
    if (!safetensors) continue;
    // A snapshot folder is named by its commit: its files never change.
    std::string key = Sha256Hex("huggingface:" + id + "@" + snapshot.filename().string());
    return Convert(fs::path(config_.cache_dir) / (key + ".gguf"), {"--base", snapshot.string()},
                   "huggingface:" + id + " (snapshot " + snapshot.filename().string() + ")",
                   cancelled, log);
  }
  return std::string();
}

Result<std::string> GgufAdapterCache::Convert(const fs::path& out, std::vector<std::string> args,
                                              const std::string& what,
                                              const std::atomic<bool>& cancelled,
                                              const std::function<void(std::string)>& log) {
  std::error_code ec;
  if (fs::exists(out, ec)) {
    log("[flowmesh] " + what + " already converted: " + out.string());
    return out.string();
  }
  MutexLock lock(convert_mu_);
  if (fs::exists(out, ec)) return out.string();  // converted while this task waited
  fs::create_directories(config_.cache_dir, ec);
  if (ec) return Internal("cannot create " + config_.cache_dir + ": " + ec.message());
  log("[flowmesh] converting " + what + " to GGUF");
  BridgeCommand command;
  command.argv = {config_.training.python, "-m", "flowmesh_train.gguf", out.string()};
  command.argv.insert(command.argv.end(), args.begin(), args.end());
  command.argv.insert(command.argv.end(), {"--llama-cpp", config_.llama_cpp_dir});
  command.env = {{"PYTHONPATH", config_.training.package_dir},
                 {"PYTHONDONTWRITEBYTECODE", "1"},
                 {"HF_HUB_OFFLINE", "1"},
                 {"TOKENIZERS_PARALLELISM", "false"}};
  FM_ASSIGN_OR_RETURN(std::unique_ptr<BridgeProcess> process, BridgeProcess::Start(command));
  process->CloseInput();
  size_t lines = 0;
  auto forward = [&](std::string line) {
    if (++lines <= kMaxConvertLogLines) log("[convert] " + line);
  };
  FM_ASSIGN_OR_RETURN(BridgeExit exit, process->Pump(cancelled, nullptr, forward));
  if (exit.signaled || exit.exit_code != 0 || !fs::exists(out, ec)) {
    std::string message = "the conversion of " + what + " to GGUF " + exit.Describe();
    for (const auto& line : exit.stderr_tail) message += "\n" + line;
    return Unavailable(message);
  }
  log("[flowmesh] GGUF ready: " + out.string());
  return out.string();
}

Status RegisterLoraInference(executors::ExecutorRegistry& registry,
                             const LoraInferenceConfig& config) {
  if (!registry.Has("inference"))
    return FailedPrecondition("lora inference: no inference executor");
  std::error_code ec;
  for (const char* script : {"convert_hf_to_gguf.py", "convert_lora_to_gguf.py"}) {
    if (!fs::exists(fs::path(config.llama_cpp_dir) / script, ec)) {
      return FailedPrecondition(std::string("lora inference: no ") + script + " in '" +
                                config.llama_cpp_dir + "'");
    }
  }
  FM_RETURN_IF_ERROR(ProbeTraining(config.training));
  auto cache = std::make_shared<GgufAdapterCache>(config);
  executors::ExecutorRegistry plain = registry;  // the inference executor as registered so far
  registry.Register("inference", [plain, cache]() -> std::unique_ptr<executors::Executor> {
    auto inner = plain.Create("inference");
    FM_CHECK(inner.ok());
    return std::make_unique<LoraInferenceExecutor>(std::move(inner).value(), cache);
  });
  return Status::Ok();
}

}  // namespace flowmesh::training
