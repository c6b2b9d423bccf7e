// Permissions: resource kinds × actions, granted by scopes written "kind:action"
// ("workflow:read", "task:cancel", "*:admin", "*"). `admin` on a kind implies every other
// action on it; "*" as kind or action matches any.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace flowmesh::auth {

enum class Kind : uint8_t { kWorkflow, kTask, kResult, kNode, kWorker, kSystem };
enum class Action : uint8_t { kRead, kWrite, kCancel, kAdmin };

inline constexpr int kKindCount = 6;
inline constexpr int kActionCount = 4;

std::string_view KindName(Kind k);
std::string_view ActionName(Action a);
std::optional<Kind> ParseKind(std::string_view s);
std::optional<Action> ParseAction(std::string_view s);

// A set of granted (kind, action) pairs, as a bit mask.
class ScopeSet {
 public:
  ScopeSet() = default;
  // Parses scopes; InvalidArgument naming the bad one.
  static Result<ScopeSet> Parse(const std::vector<std::string>& scopes);
  // Splits "a b,c" on spaces and commas.
  static std::vector<std::string> Split(std::string_view text);
  static ScopeSet All();

  bool Allows(Kind kind, Action action) const {
    return (bits_ >> (static_cast<int>(kind) * kActionCount + static_cast<int>(action))) & 1u;
  }
  void Grant(Kind kind, Action action) {
    bits_ |= 1u << (static_cast<int>(kind) * kActionCount + static_cast<int>(action));
  }
  // this ⊇ other: a key may only hand out scopes it holds itself.
  bool Covers(const ScopeSet& other) const { return (other.bits_ & ~bits_) == 0; }
  bool empty() const { return bits_ == 0; }

 private:
  uint32_t bits_ = 0;
};

}  // namespace flowmesh::auth
