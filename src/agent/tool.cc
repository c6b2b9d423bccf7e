#include "agent/tool.h"

namespace flowmesh::agent {

using json = nlohmann::json;

Status ToolSet::Add(std::unique_ptr<Tool> tool) {
  if (Find(tool->info().name))
    return AlreadyExists("two tools are named '" + tool->info().name + "'");
  tools_.push_back(std::move(tool));
  return Status::Ok();
}

Tool* ToolSet::Find(const std::string& name) const {
  for (const auto& tool : tools_) {
    if (tool->info().name == name) return tool.get();
  }
  return nullptr;
}

std::vector<ToolInfo> ToolSet::infos() const {
  std::vector<ToolInfo> out;
  for (const auto& tool : tools_) out.push_back(tool->info());
  return out;
}

static bool HasType(const json& value, const std::string& type) {
  if (type == "string") return value.is_string();
  if (type == "number") return value.is_number();
  if (type == "integer") return value.is_number_integer() || value.is_number_unsigned();
  if (type == "boolean") return value.is_boolean();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  return true;
}

Status CheckArguments(const ToolInfo& info, const json& arguments) {
  if (!arguments.is_object())
    return InvalidArgument(info.name + ": the arguments must be a JSON object");
  const json& schema = info.parameters;
  if (schema.contains("required") && schema["required"].is_array()) {
    for (const auto& key : schema["required"]) {
      if (key.is_string() && !arguments.contains(key.get<std::string>())) {
        return InvalidArgument(info.name + ": missing argument '" + key.get<std::string>() + "'");
      }
    }
  }
  if (!schema.contains("properties") || !schema["properties"].is_object()) return Status::Ok();
  for (const auto& [key, value] : arguments.items()) {
    auto prop = schema["properties"].find(key);
    if (prop == schema["properties"].end()) continue;
    if (prop->contains("type") && (*prop)["type"].is_string() &&
        !HasType(value, (*prop)["type"].get<std::string>())) {
      return InvalidArgument(info.name + ": argument '" + key + "' must be of type " +
                             (*prop)["type"].get<std::string>());
    }
  }
  return Status::Ok();
}

}  // namespace flowmesh::agent
