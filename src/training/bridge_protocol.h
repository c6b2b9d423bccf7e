// The worker's end of the training bridge protocol (docs/internals/training-bridge.md):
// line-delimited JSON between flowmesh-worker and `python -m flowmesh_train`. The worker
// writes one `start` message on the child's stdin (and may later write `stop`); the child
// writes `hello` first, then `log`, `progress` and `checkpoint` messages, and ends with
// exactly one `result` or `error`. Pure functions; safe from any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace flowmesh::training {

// Bumped on any change a peer of the previous version would misread.
inline constexpr int kBridgeProtocolVersion = 1;

enum class BridgeMessageType { kHello, kLog, kProgress, kCheckpoint, kResult, kError };

struct BridgeMessage {
  BridgeMessageType type = BridgeMessageType::kLog;
  nlohmann::json body;  // the whole message object, "type" included
};

// Parses one line of the child's protocol channel. InvalidArgument (saying why) for a line
// that is not a JSON object, has an unknown "type", or lacks that type's required fields:
// hello {protocol: int}, log {message: string}, progress {step: int >= 0}, checkpoint
// {path: string}, result {result: object}, error {code: string, message: string}.
Result<BridgeMessage> ParseBridgeLine(std::string_view line);

// OK when a hello speaks kBridgeProtocolVersion; FailedPrecondition otherwise.
Status CheckHello(const nlohmann::json& hello);

struct StartMessage {
  std::string task_id;
  int attempt = 1;
  std::string task_type;
  nlohmann::json spec;     // the resolved task spec
  std::string output_dir;  // every file the child leaves here becomes a result file
};
// The start message as one line (no trailing newline).
std::string StartLine(const StartMessage& start);
// The stop message as one line.
std::string StopLine();

// The Status of an `error` message: invalid_argument → InvalidArgument and
// failed_precondition → FailedPrecondition (neither retried); resource_exhausted and
// internal (any other code) → Unavailable, which the scheduler retries on another worker.
Status ErrorStatus(const nlohmann::json& error);

// The task's TASK_UPDATE for a progress message: {"progress": {...}} with the known fields
// (step, max_steps, epoch, loss, learning_rate, tokens, tokens_per_second,
// elapsed_seconds, eta_seconds, rewards_accuracies, rewards_margins) that are numbers.
nlohmann::json ProgressUpdate(const nlohmann::json& progress);

}  // namespace flowmesh::training
