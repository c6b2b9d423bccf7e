#include "spec/internal/native_common.h"

#include <algorithm>

namespace flowmesh::spec::native_internal {

using nlohmann::json;

const std::vector<std::string>& RootKeys() {
  static const std::vector<std::string> kKeys = {"apiVersion", "kind", "metadata", "spec"};
  return kKeys;
}

const std::vector<std::string>& EntryKeys() {
  static const std::vector<std::string> kKeys = {"name", "dependsOn", "spec"};
  return kKeys;
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

std::string Quote(const json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  if (text.size() > 64) text = text.substr(0, 61) + "...";
  return "'" + text + "'";
}

bool IsNodeNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool IsValidNodeName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || !IsNodeNameChar(name[0])) return false;
  return std::all_of(name.begin(), name.end(), IsNodeNameChar);
}

bool IsValidWorkflowName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength || !IsNodeNameChar(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return IsNodeNameChar(c) || c == '.'; });
}

void MergeUnder(json* over, const json& base) {
  json::object_t& out = over->get_ref<json::object_t&>();
  for (const auto& [key, value] : base.get_ref<const json::object_t&>()) {
    auto existing = out.find(key);
    if (existing == out.end()) {
      out.emplace(key, value);
    } else if (existing->second.is_object() && value.is_object()) {
      MergeUnder(&existing->second, value);
    }
  }
}

std::vector<Reference> FindReferences(const std::string& s) {
  std::vector<Reference> refs;
  size_t pos = 0;
  while ((pos = s.find("${", pos)) != std::string::npos) {
    size_t end = s.find('}', pos + 2);
    if (end == std::string::npos) break;
    std::string_view inner(s.data() + pos + 2, end - pos - 2);
    size_t dot = inner.find('.');
    // `${HOME}` and other dot-less forms are left alone (shell variables in commands).
    if (dot != std::string_view::npos && dot > 0 && IsValidNodeName(inner.substr(0, dot))) {
      refs.push_back(Reference{std::string(inner.substr(0, dot)), s.substr(pos, end - pos + 1)});
    }
    pos = end + 1;
  }
  return refs;
}

}  // namespace flowmesh::spec::native_internal
