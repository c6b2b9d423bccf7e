#include "executors/echo.h"

#include <chrono>
#include <thread>

#include "spec/executor_options.h"

namespace flowmesh::executors {
namespace {

constexpr auto kSleepSlice = std::chrono::milliseconds(20);

const nlohmann::json& Field(const nlohmann::json& object, const char* key) {
  static const nlohmann::json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string ItemText(const nlohmann::json& item) {
  return item.is_string() ? item.get<std::string>() : item.dump();
}

}  // namespace

Result<nlohmann::json> EchoExecutor::Run(TaskContext& ctx) {
  // Checked, read and defaulted by the table the submit-time validator uses.
  nlohmann::json echo = Field(ctx.spec, "echo");
  if (auto problem = spec::ResolveSection(spec::EchoSection(), &echo)) {
    return InvalidArgument(*problem);
  }

  const nlohmann::json& fail = Field(echo, "fail");
  if (fail.is_string()) return FailedPrecondition("echo: " + fail.get<std::string>());

  if (ctx.attempt <= echo["fail_attempts"].get<int64_t>()) {
    return Internal("echo: injected failure on attempt " + std::to_string(ctx.attempt));
  }

  double sleep = echo["sleep_seconds"].get<double>();
  if (sleep > 0) {
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(sleep));
    while (std::chrono::steady_clock::now() < deadline) {
      if (ctx.cancelled.load()) return Cancelled("echo: cancelled while sleeping");
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(kSleepSlice,
                                                        deadline - std::chrono::steady_clock::now()));
    }
  }
  if (ctx.cancelled.load()) return Cancelled("echo: cancelled");

  nlohmann::json inputs = nlohmann::json::array();
  const nlohmann::json& items = Field(Field(ctx.spec, "data"), "items");
  if (items.is_array()) {
    inputs = items;
  } else {
    const nlohmann::json& message = Field(echo, "message");
    inputs.push_back(message.is_null() ? nlohmann::json("") : message);
  }

  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < inputs.size(); ++i) {
    out.push_back({{"input", inputs[i]}, {"output", inputs[i]}});
    if (ctx.log) ctx.log("echo[" + std::to_string(i) + "]: " + ItemText(inputs[i]));
  }
  return nlohmann::json{{"items", std::move(out)}};
}

}  // namespace flowmesh::executors
