// Logging facade over spdlog: one process-wide logger named after the component.
// Use FM_LOG(info, "msg {}", x). Structured fields go in as key=value pairs.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace flowmesh {

// Sets up the default logger: `component` tags every line; `level` is
// trace|debug|info|warn|error; `file` (optional) appends to a file instead of stderr.
void InitLogging(const std::string& component, const std::string& level,
                 const std::string& file = "");

}  // namespace flowmesh

#define FM_LOG(level, ...) SPDLOG_##level(__VA_ARGS__)
#define FM_LOG_INFO(...) spdlog::info(__VA_ARGS__)
#define FM_LOG_WARN(...) spdlog::warn(__VA_ARGS__)
#define FM_LOG_ERROR(...) spdlog::error(__VA_ARGS__)
#define FM_LOG_DEBUG(...) spdlog::debug(__VA_ARGS__)
