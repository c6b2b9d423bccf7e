#include "spec/operator.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/hash.h"

namespace flowmesh::spec {
namespace {

using json = nlohmann::json;

json Normalise(const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      json out = json::object();  // nlohmann's object is a std::map: keys come out sorted
      for (auto it = v.begin(); it != v.end(); ++it) out[it.key()] = Normalise(it.value());
      return out;
    }
    case json::value_t::array: {
      json out = json::array();
      for (const auto& e : v) out.push_back(Normalise(e));
      return out;
    }
    case json::value_t::number_float: {
      double d = v.get<double>();
      if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 9.0e15) {
        return static_cast<std::int64_t>(d);
      }
      return v;
    }
    case json::value_t::number_unsigned: {
      auto u = v.get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        return static_cast<std::int64_t>(u);
      }
      return v;
    }
    default:
      return v;
  }
}

std::string StringField(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_null()) return "";
  return CanonicalJson(*it);
}

}  // namespace

std::string CanonicalJson(const json& value) {
  return Normalise(value).dump(-1, ' ', false, json::error_handler_t::replace);
}

json ModelIdentity(const json& task_spec) {
  json identity = {{"type", ""}, {"identifier", ""}, {"revision", ""}, {"file", ""}};
  if (!task_spec.is_object()) return identity;
  auto model = task_spec.find("model");
  if (model == task_spec.end() || !model->is_object()) return identity;
  auto source = model->find("source");
  if (source == model->end()) return identity;
  if (source->is_string()) {  // shorthand: `source: path/or/id`
    identity["identifier"] = source->get<std::string>();
    return identity;
  }
  identity["type"] = StringField(*source, "type");
  identity["identifier"] = StringField(*source, "identifier");
  identity["revision"] = StringField(*source, "revision");
  std::string file = StringField(*source, "file");
  if (file.empty()) file = StringField(*source, "filename");
  if (file.empty()) file = StringField(*source, "quantization");
  identity["file"] = file;
  return identity;
}

std::string ModelKey(const json& task_spec) {
  json id = ModelIdentity(task_spec);
  std::string type = id["type"].get<std::string>();
  std::string identifier = id["identifier"].get<std::string>();
  if (type.empty() && identifier.empty()) return "";
  std::string key = (type.empty() ? "local" : type) + ":" + identifier;
  std::string revision = id["revision"].get<std::string>();
  std::string file = id["file"].get<std::string>();
  if (!revision.empty()) key += "@" + revision;
  if (!file.empty()) key += "#" + file;
  return key;
}

std::string BatchKey(const std::string& task_type, const json& task_spec) {
  json engine = json::object();
  if (task_spec.is_object()) {
    auto model = task_spec.find("model");
    if (model != task_spec.end() && model->is_object()) {
      for (const char* k : {"llamacpp", "vllm", "transformers", "adapters"}) {
        auto it = model->find(k);
        if (it != model->end()) engine[k] = *it;
      }
    }
  }
  std::string key = task_type + "|" + ModelKey(task_spec);
  if (!engine.empty()) key += "|" + Sha256Hex(CanonicalJson(engine)).substr(0, 16);
  return key;
}

std::string OperatorFingerprint(const std::string& task_type, const json& resolved_spec,
                                std::vector<std::string> upstream_digests) {
  // Fields that decide where, when and how often a task runs, or where its output goes,
  // but not what it computes.
  static const char* const kNotOutput[] = {
      "resources", "timeoutSeconds", "timeout_seconds", "maxAttempts", "max_attempts",
      "retries",   "output",         "metadata",        "dependsOn",   "condition",
      "cache",     "priority",       "name",            "description"};
  json params = resolved_spec.is_object() ? resolved_spec : json::object();
  for (const char* key : kNotOutput) params.erase(key);
  if (auto model = params.find("model"); model != params.end() && model->is_object()) {
    (*model)["source"] = ModelIdentity(resolved_spec);
  }
  params.erase("taskType");
  std::sort(upstream_digests.begin(), upstream_digests.end());
  json doc = {{"v", 1}, {"type", task_type}, {"params", std::move(params)},
              {"upstream", upstream_digests}};
  return Sha256Hex(CanonicalJson(doc));
}

bool Deterministic(const std::string& task_type, const json& task_spec) {
  std::string cache;
  if (task_spec.is_object()) {
    auto it = task_spec.find("cache");
    if (it != task_spec.end() && it->is_string()) cache = it->get<std::string>();
  }
  if (cache == "never") return false;
  if (cache == "always") return true;
  auto section = [&](const char* key) -> json {
    if (!task_spec.is_object()) return json::object();
    auto it = task_spec.find(key);
    return it != task_spec.end() && it->is_object() ? *it : json::object();
  };
  auto has_number = [](const json& obj, const char* key) {
    auto it = obj.find(key);
    return it != obj.end() && it->is_number();
  };
  // A collection build embeds with mean pooling and builds its index on one thread: the
  // same rows, model and options build the same files.
  if (task_type == "echo" || task_type == "data_profiling" || task_type == "embedding" ||
      task_type == "collection") {
    return true;
  }
  if (task_type == "inference") {
    json inf = section("inference");
    auto t = inf.find("temperature");
    bool greedy = t != inf.end() && t->is_number() && t->get<double>() == 0.0;
    return greedy || has_number(inf, "seed");
  }
  if (task_type == "api") {
    json api = section("api");
    auto c = api.find("cache");
    return c != api.end() && c->is_boolean() && c->get<bool>();
  }
  if (task_type == "sft" || task_type == "lora_sft" || task_type == "dpo" || task_type == "ppo" ||
      task_type == "image_classification" || task_type == "image_classification_training") {
    return has_number(section("training"), "seed");
  }
  // A seeded diffusers run draws its noise from a CPU generator: the same PNG bytes.
  if (task_type == "diffusion") return has_number(section("inference"), "seed");
  if (task_type == "omni_text2image") {
    return has_number(section("omni"), "seed") || has_number(section("omni_text2image"), "seed");
  }
  return false;
}

}  // namespace flowmesh::spec
