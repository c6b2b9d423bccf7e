// Lenient field access for JSON from outside the process (bus messages, heartbeats,
// request bodies): a missing field, a non-object, or a field of the wrong type yields the
// fallback instead of throwing, so malformed input can never take a component down.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace flowmesh {

inline const nlohmann::json* JsonField(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

inline std::string JsonOr(const nlohmann::json& j, const char* key, const std::string& fallback) {
  const auto* v = JsonField(j, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : fallback;
}
inline std::string JsonOr(const nlohmann::json& j, const char* key, const char* fallback) {
  return JsonOr(j, key, std::string(fallback));
}
inline bool JsonOr(const nlohmann::json& j, const char* key, bool fallback) {
  const auto* v = JsonField(j, key);
  return v != nullptr && v->is_boolean() ? v->get<bool>() : fallback;
}
inline int JsonOr(const nlohmann::json& j, const char* key, int fallback) {
  const auto* v = JsonField(j, key);
  if (v == nullptr || !v->is_number()) return fallback;
  double d = v->get<double>();
  return d >= -2e9 && d <= 2e9 ? static_cast<int>(d) : fallback;
}
inline double JsonOr(const nlohmann::json& j, const char* key, double fallback) {
  const auto* v = JsonField(j, key);
  return v != nullptr && v->is_number() ? v->get<double>() : fallback;
}
inline nlohmann::json JsonOr(const nlohmann::json& j, const char* key,
                             const nlohmann::json& fallback) {
  const auto* v = JsonField(j, key);
  return v != nullptr && v->type() == fallback.type() ? *v : fallback;
}

}  // namespace flowmesh
