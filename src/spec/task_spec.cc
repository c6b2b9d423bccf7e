#include "spec/task_spec.h"

#include <string>

#include "spec/operator.h"

namespace flowmesh::spec {

using nlohmann::json;

namespace {

const json* Find(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

Demand ParseDemand(const json& spec) {
  Demand d;
  const json* resources = Find(spec, "resources");
  const json* hw = resources != nullptr ? Find(*resources, "hardware") : nullptr;
  if (hw == nullptr || !hw->is_object()) return d;
  if (const json* c = Find(*hw, "cpu"); c != nullptr && c->is_number()) d.cpu = c->get<double>();
  if (const json* m = Find(*hw, "memory"); m != nullptr) d.memory_mb = MemoryMb(*m);
  const json* gpu = Find(*hw, "gpu");
  if (gpu == nullptr || !gpu->is_object()) return d;
  if (const json* n = Find(*gpu, "count"); n != nullptr && n->is_number_integer()) {
    d.gpus = n->get<int>();
  }
  if (const json* m = Find(*gpu, "memory"); m != nullptr) d.gpu_memory_mb = MemoryMb(*m);
  // `type: any` (the published default) asks for no particular model.
  if (const json* t = Find(*gpu, "type"); t != nullptr && t->is_string() && *t != "any") {
    d.gpu_type = t->get<std::string>();
  }
  return d;
}

}  // namespace

double MemoryMb(const json& v) {
  if (v.is_number()) return v.get<double>() / (1024.0 * 1024.0);
  if (!v.is_string()) return 0;
  const std::string s = v.get<std::string>();
  double n = 0;
  size_t pos = 0;
  try {
    n = std::stod(s, &pos);
  } catch (const std::exception&) {
    return 0;
  }
  const std::string unit = s.substr(pos);
  if (unit == "Gi" || unit == "G" || unit == "GB") return n * 1024;
  if (unit == "Mi" || unit == "M" || unit == "MB") return n;
  if (unit == "Ki" || unit == "K" || unit == "KB") return n / 1024;
  if (unit == "Ti" || unit == "T") return n * 1024 * 1024;
  return n / (1024.0 * 1024.0);
}

Result<Condition> ParseCondition(const json& c) {
  if (!c.is_object()) return InvalidArgument("condition must be an object {node, field, equals}");
  const json* node = Find(c, "node");
  if (node == nullptr || !node->is_string() || node->get<std::string>().empty()) {
    return InvalidArgument("condition.node must name an upstream node");
  }
  Condition cond;
  cond.node = node->get<std::string>();
  if (const json* f = Find(c, "field"); f != nullptr && !f->is_null()) {
    if (!f->is_string()) return InvalidArgument("condition.field must be a dot path string");
    cond.field = f->get<std::string>();
  }
  const json* equals = Find(c, "equals");
  if (equals == nullptr) return InvalidArgument("condition.equals is missing");
  cond.equals = *equals;
  return cond;
}

const char* CachePolicyName(CachePolicy policy) {
  switch (policy) {
    case CachePolicy::kNever:
      return "never";
    case CachePolicy::kAlways:
      return "always";
    case CachePolicy::kAuto:
      break;
  }
  return "auto";
}

TaskSpec ParseTaskSpec(const std::string& task_type, const json& spec) {
  TaskSpec t;
  t.task_type = task_type;
  t.body = spec.is_object() ? spec : json::object();
  t.demand = ParseDemand(t.body);
  if (const json* p = Find(t.body, "priority"); p != nullptr && p->is_number()) {
    t.priority = p->get<int>();
  }
  if (const json* ts = Find(t.body, "timeoutSeconds"); ts != nullptr && ts->is_number()) {
    t.timeout_seconds = ts->get<double>();
  }
  if (const json* c = Find(t.body, "cache"); c != nullptr && c->is_string()) {
    if (*c == "never") t.cache = CachePolicy::kNever;
    if (*c == "always") t.cache = CachePolicy::kAlways;
  }
  t.model_key = ModelKey(t.body);
  t.batch_key = BatchKey(task_type, t.body);
  t.deterministic = Deterministic(task_type, t.body);
  if (const json* data = Find(t.body, "data"); data != nullptr) {
    const json* type = Find(*data, "type");
    t.reads_dataset = type != nullptr && type->is_string() && *type == "dataset";
  }
  if (const json* c = Find(t.body, "condition"); c != nullptr) {
    Result<Condition> cond = ParseCondition(*c);
    if (cond.ok()) {
      t.condition = std::move(cond).value();
    } else {
      t.condition_error = cond.status().message();
    }
  }
  return t;
}

}  // namespace flowmesh::spec
