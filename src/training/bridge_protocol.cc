#include "training/bridge_protocol.h"

#include <array>
#include <cmath>

namespace flowmesh::training {
namespace {

using nlohmann::json;

constexpr std::array<const char*, 11> kProgressFields = {
    "step",           "max_steps",         "epoch",           "loss",        "learning_rate",
    "tokens",         "tokens_per_second", "elapsed_seconds", "eta_seconds", "rewards_accuracies",
    "rewards_margins"};

bool IsString(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_string();
}

std::string Cut(std::string_view text) {
  constexpr size_t kMax = 200;
  return text.size() <= kMax ? std::string(text) : std::string(text.substr(0, kMax)) + "…";
}

}  // namespace

Result<BridgeMessage> ParseBridgeLine(std::string_view line) {
  json body = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    return InvalidArgument("bridge: not a JSON object: " + Cut(line));
  }
  if (!IsString(body, "type"))
    return InvalidArgument("bridge: message without a type: " + Cut(line));
  const std::string& type = body["type"].get_ref<const std::string&>();
  BridgeMessage message;
  if (type == "hello") {
    message.type = BridgeMessageType::kHello;
    if (!body.contains("protocol") || !body["protocol"].is_number_integer()) {
      return InvalidArgument("bridge: hello without an integer protocol");
    }
  } else if (type == "log") {
    message.type = BridgeMessageType::kLog;
    if (!IsString(body, "message")) return InvalidArgument("bridge: log without a message");
  } else if (type == "progress") {
    message.type = BridgeMessageType::kProgress;
    if (!body.contains("step") || !body["step"].is_number_integer() ||
        body["step"].get<int64_t>() < 0) {
      return InvalidArgument("bridge: progress without a step");
    }
  } else if (type == "checkpoint") {
    message.type = BridgeMessageType::kCheckpoint;
    if (!IsString(body, "path")) return InvalidArgument("bridge: checkpoint without a path");
  } else if (type == "result") {
    message.type = BridgeMessageType::kResult;
    if (!body.contains("result") || !body["result"].is_object()) {
      return InvalidArgument("bridge: result without a result object");
    }
  } else if (type == "error") {
    message.type = BridgeMessageType::kError;
    if (!IsString(body, "code") || !IsString(body, "message")) {
      return InvalidArgument("bridge: error without a code and a message");
    }
  } else {
    return InvalidArgument("bridge: unknown message type '" + Cut(type) + "'");
  }
  message.body = std::move(body);
  return message;
}

Status CheckHello(const json& hello) {
  auto it = hello.find("protocol");
  if (it == hello.end() || !it->is_number_integer() ||
      it->get<int64_t>() != kBridgeProtocolVersion) {
    return FailedPrecondition("training bridge: the trainer speaks protocol " +
                              (it == hello.end() ? std::string("(none)") : it->dump()) +
                              ", this worker speaks " + std::to_string(kBridgeProtocolVersion) +
                              " (the worker's python package is from another build)");
  }
  return Status::Ok();
}

std::string StartLine(const StartMessage& start) {
  json body = {{"type", "start"},
               {"protocol", kBridgeProtocolVersion},
               {"task_id", start.task_id},
               {"attempt", start.attempt},
               {"task_type", start.task_type},
               {"spec", start.spec.is_object() ? start.spec : json::object()},
               {"output_dir", start.output_dir}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string StopLine() { return json{{"type", "stop"}}.dump(); }

Status ErrorStatus(const json& error) {
  std::string code = error.value("code", "internal");
  std::string message = error.value("message", "training failed");
  if (code == "invalid_argument") return InvalidArgument(message);
  if (code == "failed_precondition") return FailedPrecondition(message);
  return Unavailable(message);
}

json ProgressUpdate(const json& progress) {
  json out = json::object();
  for (const char* key : kProgressFields) {
    auto it = progress.find(key);
    if (it == progress.end() || !it->is_number()) continue;
    if (it->is_number_float() && !std::isfinite(it->get<double>())) continue;
    out[key] = *it;
  }
  return json{{"progress", std::move(out)}};
}

}  // namespace flowmesh::training
