#include "auth/scopes.h"

#include <array>

namespace flowmesh::auth {
namespace {

constexpr std::array<std::string_view, kKindCount> kKindNames = {
    "workflow", "task", "result", "node", "worker", "system"};
constexpr std::array<std::string_view, kActionCount> kActionNames = {"read", "write", "cancel",
                                                                     "admin"};

}  // namespace

std::string_view KindName(Kind k) { return kKindNames[static_cast<size_t>(k)]; }
std::string_view ActionName(Action a) { return kActionNames[static_cast<size_t>(a)]; }

std::optional<Kind> ParseKind(std::string_view s) {
  for (size_t i = 0; i < kKindNames.size(); ++i) {
    if (kKindNames[i] == s) return static_cast<Kind>(i);
  }
  return std::nullopt;
}

std::optional<Action> ParseAction(std::string_view s) {
  for (size_t i = 0; i < kActionNames.size(); ++i) {
    if (kActionNames[i] == s) return static_cast<Action>(i);
  }
  return std::nullopt;
}

std::vector<std::string> ScopeSet::Split(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == ' ' || c == ',' || c == '\t' || c == '\n') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

ScopeSet ScopeSet::All() {
  ScopeSet s;
  for (int k = 0; k < kKindCount; ++k) {
    for (int a = 0; a < kActionCount; ++a) s.Grant(static_cast<Kind>(k), static_cast<Action>(a));
  }
  return s;
}

Result<ScopeSet> ScopeSet::Parse(const std::vector<std::string>& scopes) {
  ScopeSet out;
  for (const auto& scope : scopes) {
    if (scope == "*") {
      out = All();
      continue;
    }
    auto colon = scope.find(':');
    if (colon == std::string::npos) {
      return InvalidArgument("scope '" + scope +
                             "' must be kind:action (kinds: workflow, task, result, node, worker, "
                             "system, *; actions: read, write, cancel, admin, *)");
    }
    std::string_view kind = std::string_view(scope).substr(0, colon);
    std::string_view action = std::string_view(scope).substr(colon + 1);
    std::vector<Kind> kinds;
    if (kind == "*") {
      for (int k = 0; k < kKindCount; ++k) kinds.push_back(static_cast<Kind>(k));
    } else if (auto k = ParseKind(kind)) {
      kinds.push_back(*k);
    } else {
      return InvalidArgument("scope '" + scope + "' names unknown kind '" + std::string(kind) +
                             "' (expected workflow, task, result, node, worker, system or *)");
    }
    std::vector<Action> actions;
    if (action == "*" || action == "admin") {
      for (int a = 0; a < kActionCount; ++a) actions.push_back(static_cast<Action>(a));
    } else if (auto a = ParseAction(action)) {
      actions.push_back(*a);
    } else {
      return InvalidArgument("scope '" + scope + "' names unknown action '" + std::string(action) +
                             "' (expected read, write, cancel, admin or *)");
    }
    for (Kind k : kinds) {
      for (Action a : actions) out.Grant(k, a);
    }
  }
  return out;
}

}  // namespace flowmesh::auth
