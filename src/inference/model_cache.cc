#include "inference/model_cache.h"

#include <algorithm>

#include "common/log.h"
#include "common/thread_annotations.h"
#include "spec/operator.h"

namespace flowmesh::inference {

ModelCache::ModelCache(ModelCacheConfig config) : config_(std::move(config)) {}
ModelCache::~ModelCache() = default;

Result<std::shared_ptr<Engine>> ModelCache::Acquire(const nlohmann::json& task_spec) {
  nlohmann::json llamacpp;
  if (task_spec.contains("model") && task_spec["model"].is_object() && task_spec["model"].contains("llamacpp")) {
    llamacpp = task_spec["model"]["llamacpp"];
  }
  FM_ASSIGN_OR_RETURN(EngineOptions options, EngineOptions::FromJson(llamacpp));
  if (!llamacpp.is_object() || !llamacpp.contains("n_seq")) options.n_seq = config_.default_slots;
  if (options.threads == 0) options.threads = config_.default_threads;
  if (!llamacpp.is_object() || !llamacpp.contains("n_gpu_layers")) options.n_gpu_layers = config_.default_gpu_layers;
  std::string model_key = spec::ModelKey(task_spec);
  std::string key = model_key + "|" + spec::CanonicalJson(llamacpp.is_null() ? nlohmann::json::object() : llamacpp);
  auto find = [&]() -> std::shared_ptr<Engine> {
    MutexLock lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->key == key) {
        entries_.splice(entries_.begin(), entries_, it);
        return it->engine;
      }
    }
    return nullptr;
  };
  if (auto engine = find()) return engine;
  MutexLock load_lock(load_mu_);
  if (auto engine = find()) return engine;  // loaded while we waited
  FM_ASSIGN_OR_RETURN(std::string path, ResolveModelPath(task_spec, config_.sources));
  auto loaded = Engine::Load(path, options);
  if (!loaded.ok()) {
    Status s = loaded.status();
    if (s.code() == StatusCode::kNotFound) return FailedPrecondition(s.message());
    return s;
  }
  std::shared_ptr<Engine> engine = std::move(loaded).value();
  FM_LOG_INFO("loaded model {} from {} ({} MiB, {} sequence slots)", model_key, path,
              engine->memory_bytes() >> 20, engine->slots());
  std::vector<std::shared_ptr<Engine>> evicted;  // destroyed outside the lock
  {
    MutexLock lock(mu_);
    uint64_t used = engine->memory_bytes();
    for (const auto& e : entries_) used += e.engine->memory_bytes();
    for (auto it = entries_.end(); used > config_.memory_budget_bytes && config_.memory_budget_bytes > 0 &&
                                   it != entries_.begin();) {
      --it;
      // Idle engines only: no sequence running and no task holding it.
      if (it->engine->free_slots() < it->engine->slots() || it->engine.use_count() > 1) continue;
      FM_LOG_INFO("evicting model {} (memory budget)", it->model_key);
      used -= it->engine->memory_bytes();
      evicted.push_back(std::move(it->engine));
      it = entries_.erase(it);
    }
    entries_.push_front({key, model_key, engine});
  }
  return engine;
}

std::vector<std::string> ModelCache::LoadedModels() const {
  MutexLock lock(mu_);
  std::vector<std::string> keys;
  for (const auto& e : entries_) keys.push_back(e.model_key);
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

int ModelCache::FreeSequenceSlots() const {
  MutexLock lock(mu_);
  if (entries_.empty()) return config_.default_slots;
  int free = 0;
  for (const auto& e : entries_) free += e.engine->free_slots();
  return free;
}

}  // namespace flowmesh::inference
