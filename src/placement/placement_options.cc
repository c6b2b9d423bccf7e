// Task categories and the --utility options (PlacementConfig by name).
#include <cmath>
#include <cstdlib>
#include <sstream>
#include <string>

#include "placement/placement.h"

namespace flowmesh::placement {

Category CategoryFromTaskType(const std::string& task_type, const std::string& category) {
  auto has = [](const std::string& s, const char* w) { return s.find(w) != std::string::npos; };
  if (has(category, "train") || has(task_type, "train") || has(task_type, "sft") ||
      has(task_type, "lora") || has(task_type, "dpo") || has(task_type, "ppo") ||
      has(task_type, "fine")) {
    return Category::kTraining;
  }
  if (has(category, "infer") || has(task_type, "infer") || has(task_type, "llm") ||
      has(task_type, "generat") || has(task_type, "chat") || has(task_type, "rag")) {
    return Category::kInference;
  }
  return Category::kOther;
}

std::string SetPlacementOption(PlacementConfig& c, const std::string& key, double v) {
  struct Weight {
    const char* name;
    double PlacementConfig::*field;
    double lo, hi;
  };
  static const Weight kWeights[] = {
      {"lambda_inference", &PlacementConfig::lambda_inference, 0, 1},
      {"lambda_training", &PlacementConfig::lambda_training, 0, 1},
      {"lambda_other", &PlacementConfig::lambda_other, 0, 1},
      {"alpha_locality", &PlacementConfig::alpha_locality, 0, 1e6},
      {"beta_age", &PlacementConfig::beta_age, 0, 1e6},
      {"fairness_weight", &PlacementConfig::fairness_weight, 0, 1e6},
      {"defer_gain", &PlacementConfig::defer_gain, 0, 1},
  };
  struct Count {
    const char* name;
    int PlacementConfig::*field;
  };
  static const Count kCounts[] = {
      {"candidate_batches", &PlacementConfig::candidate_batches},
      {"candidates_per_index", &PlacementConfig::candidates_per_index},
      {"scan_limit", &PlacementConfig::scan_limit},
  };
  if (!std::isfinite(v)) return key + " must be a finite number";
  for (const auto& w : kWeights) {
    if (key != w.name) continue;
    if (v < w.lo || v > w.hi) {
      std::ostringstream o;
      o << key << " must be between " << w.lo << " and " << w.hi << ", got " << v;
      return o.str();
    }
    c.*w.field = v;
    return "";
  }
  for (const auto& n : kCounts) {
    if (key != n.name) continue;
    if (v < 1 || v > 1e6 || v != std::floor(v)) return key + " must be a whole number from 1 to 1000000";
    c.*n.field = static_cast<int>(v);
    return "";
  }
  std::string known;
  for (const auto& w : kWeights) known += std::string(known.empty() ? "" : ", ") + w.name;
  for (const auto& n : kCounts) known += std::string(", ") + n.name;
  return "unknown option '" + key + "' (known: " + known + ")";
}

std::string ParsePlacementOptions(PlacementConfig& config, const std::string& text) {
  PlacementConfig next = config;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find(',', at);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(at, end - at);
    at = end + 1;
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string::npos) return "'" + item + "' is not key=value";
    std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    char* stop = nullptr;
    double v = std::strtod(value.c_str(), &stop);
    if (value.empty() || stop == nullptr || *stop != '\0') return key + ": '" + value + "' is not a number";
    if (std::string e = SetPlacementOption(next, key, v); !e.empty()) return e;
  }
  config = next;
  return "";
}

}  // namespace flowmesh::placement
