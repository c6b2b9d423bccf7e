// The tools an agent's model may call, and the set one agent run offers it. A tool is
// described to the model by a name, a sentence and a JSON schema of its arguments (the
// schema also becomes the grammar of a local model's calls, see grammar.h).
//
// Tools run on the agent loop's thread, one call at a time; each call gets the run's
// deadline and must return by it. A tool never throws: bad arguments, refused URLs and
// failed requests are error statuses, which the loop hands back to the model as the
// call's result.
#pragma once

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::agent {

using Deadline = std::chrono::steady_clock::time_point;

struct ToolInfo {
  std::string name;           // [a-z0-9_]+, unique in a set
  std::string description;    // one sentence for the model
  nlohmann::json parameters;  // JSON schema of the arguments: {type: object, properties, required}
};

class Tool {
 public:
  virtual ~Tool() = default;
  virtual const ToolInfo& info() const = 0;
  virtual Result<nlohmann::json> Call(const nlohmann::json& arguments, Deadline deadline) = 0;
};

// The tools of one run, in the order they are offered. Owns them; not thread-safe.
class ToolSet {
 public:
  // AlreadyExists when a tool of that name is in the set.
  Status Add(std::unique_ptr<Tool> tool);
  Tool* Find(const std::string& name) const;
  std::vector<ToolInfo> infos() const;
  bool empty() const { return tools_.empty(); }

 private:
  std::vector<std::unique_ptr<Tool>> tools_;
};

// Checks `arguments` against a tool's parameter schema: an object, every required key
// present, declared keys of the declared primitive type (string, number, integer, boolean).
// Local models cannot get this wrong (their output is grammar-constrained); remote ones can.
Status CheckArguments(const ToolInfo& info, const nlohmann::json& arguments);

}  // namespace flowmesh::agent
