#include "state/records.h"

#include <array>
#include <utility>

namespace flowmesh::state {
namespace {

constexpr std::array<std::pair<TaskState, std::string_view>, 6> kTaskStateNames = {{
    {TaskState::kPending, "PENDING"},
    {TaskState::kDispatched, "DISPATCHED"},
    {TaskState::kCancelling, "CANCELLING"},
    {TaskState::kDone, "DONE"},
    {TaskState::kFailed, "FAILED"},
    {TaskState::kCancelled, "CANCELLED"},
}};

}  // namespace

std::string_view TaskStateName(TaskState s) {
  for (const auto& [state, name] : kTaskStateNames) {
    if (state == s) return name;
  }
  return "UNKNOWN";
}

std::optional<TaskState> ParseTaskState(std::string_view name) {
  for (const auto& [state, n] : kTaskStateNames) {
    if (n == name) return state;
  }
  return std::nullopt;
}

}  // namespace flowmesh::state
