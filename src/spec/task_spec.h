// The typed task spec: what the fabric (scheduler, placement, de-duplication, dispatch)
// needs to know about a task, parsed once from the task's JSON spec. The JSON itself stays
// beside it as `body`: each executor reads its own section through its declared options,
// and free-form extras the published format allows travel untouched.
//
// Parsing never fails: the document was validated at submit (spec/task_schema.h); a value
// of the wrong shape (a spec recovered from an older store, say) reads as its default, and
// a malformed `condition` is kept as `condition_error` so the task fails with that message
// when it becomes ready, as it always has.
//
// On the wire (bus dispatch message, gRPC) the spec travels as one message tagged with
// `kTaskSpecVersion`; a worker refuses a version newer than its own.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace flowmesh::spec {

inline constexpr int kTaskSpecVersion = 1;

// What a task asks of a worker (`resources.hardware`).
struct Demand {
  double cpu = 0;
  double memory_mb = 0;
  int gpus = 0;
  double gpu_memory_mb = 0;
  std::string gpu_type;  // "" (or the published `any`): no particular model

  bool operator==(const Demand&) const = default;
};

// `cache`: whether a task's result may be reused by an identical task.
enum class CachePolicy {
  kAuto,    // reuse when the executor declares the task deterministic
  kNever,   // always run
  kAlways,  // reuse even when the executor cannot tell
};

// `condition`: the task runs only when an upstream result's field equals a value.
struct Condition {
  std::string node;   // upstream graph node name
  std::string field;  // dot path inside its result ("" is the whole result)
  nlohmann::json equals;
};

struct TaskSpec {
  std::string task_type;
  Demand demand;
  int priority = 0;             // `priority`: higher places first within an organisation
  double timeout_seconds = 0;   // `timeoutSeconds`; 0: none
  std::string model_key;        // spec::ModelKey: "" when the task names no model
  std::string batch_key;        // spec::BatchKey: tasks that may share a worker and a batch
  CachePolicy cache = CachePolicy::kAuto;
  bool deterministic = false;   // spec::Deterministic (cache policy applied)
  bool reads_dataset = false;   // `data.type: dataset`: prepared off the loop
  std::optional<Condition> condition;
  std::string condition_error;  // set when `condition` is present but malformed
  nlohmann::json body = nlohmann::json::object();  // the whole spec object, as submitted
};

TaskSpec ParseTaskSpec(const std::string& task_type, const nlohmann::json& spec);

// `condition: {node, field, equals}`; InvalidArgument says what is wrong with it.
Result<Condition> ParseCondition(const nlohmann::json& condition);

// A memory amount in MiB: bytes as a number, or "512Mi", "2Gi", "1G", "64K", "1Ti".
double MemoryMb(const nlohmann::json& value);

const char* CachePolicyName(CachePolicy policy);

}  // namespace flowmesh::spec
