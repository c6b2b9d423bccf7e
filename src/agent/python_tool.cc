#include "agent/python_tool.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using executors::SandboxOutcome;

// A private folder for one call, removed when it goes out of scope.
class CallHome {
 public:
  static Result<std::unique_ptr<CallHome>> Create() {
    std::error_code ec;
    std::string name = (fs::temp_directory_path(ec) / "flowmesh-agent-py-XXXXXX").string();
    if (ec) return Internal("no temp folder: " + ec.message());
    if (mkdtemp(name.data()) == nullptr) return Internal("mkdtemp: " + std::string(strerror(errno)));
    return std::unique_ptr<CallHome>(new CallHome(name));
  }
  ~CallHome() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  explicit CallHome(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Appends `line` to `out` while it stays within kMaxToolOutput; counts what is cut.
void Keep(std::string& out, bool& cut, const std::string& line) {
  if (out.size() + line.size() + 1 > kMaxToolOutput) {
    cut = true;
    return;
  }
  out += line;
  out += '\n';
}

class PythonTool : public Tool {
 public:
  explicit PythonTool(PythonToolConfig config)
      : config_(std::move(config)),
        info_{"python",
              "Runs a short Python 3 program (no network, no files kept) and returns what it "
              "printed.",
              json{{"type", "object"},
                   {"properties", {{"code", {{"type", "string"}, {"maxLength", 400}}}}},
                   {"required", {"code"}}}} {}

  const ToolInfo& info() const override { return info_; }

  Result<json> Call(const json& arguments, Deadline deadline) override {
    FM_RETURN_IF_ERROR(CheckArguments(info_, arguments));
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return DeadlineExceeded("python: no time left");
    executors::Sandbox sandbox(config_.sandbox);
    FM_ASSIGN_OR_RETURN(auto home, CallHome::Create());
    FM_RETURN_IF_ERROR(sandbox.GrantAccess(home->path()));
    executors::SandboxOptions options;
    options.argv = {config_.python, "-I", "-c", arguments["code"].get<std::string>()};
    options.env = {{"PYTHONDONTWRITEBYTECODE", "1"}, {"PYTHONUNBUFFERED", "1"}};
    options.home = home->path();
    options.network = false;
    options.timeout = std::min(config_.timeout, left);
    options.max_output_bytes = 4 * kMaxToolOutput;
    options.limits.cpu_seconds = config_.cpu_seconds;
    options.limits.address_space = config_.memory_bytes;
    options.limits.processes = config_.processes;
    options.limits.file_size = config_.file_size;
    std::string out, err;
    bool cut = false;
    auto sink = [&](executors::SandboxStream stream, std::string line) {
      Keep(stream == executors::SandboxStream::kStdout ? out : err, cut, line);
    };
    // The run's own cancellation reaches the tool through its deadline; a call is short.
    std::atomic<bool> never{false};
    FM_ASSIGN_OR_RETURN(SandboxOutcome outcome, sandbox.Run(options, never, sink));
    switch (outcome.end) {
      case SandboxOutcome::End::kTimedOut:
        return DeadlineExceeded("python: the program ran past " +
                                std::to_string(options.timeout.count()) + " ms");
      case SandboxOutcome::End::kSignaled:
        return Status(StatusCode::kAborted,
                      "python: the program was killed by signal " + std::to_string(outcome.signal) +
                          " (CPU " + std::to_string(config_.cpu_seconds) + " s / memory " +
                          std::to_string(config_.memory_bytes >> 20) + " MiB limits)");
      case SandboxOutcome::End::kCancelled:
        return Cancelled("python: cancelled");
      case SandboxOutcome::End::kExited:
        break;
    }
    json result = {{"exit_code", outcome.exit_code}, {"stdout", out}, {"stderr", err}};
    if (cut || outcome.dropped_output_bytes > 0) result["truncated"] = true;
    return result;
  }

 private:
  PythonToolConfig config_;
  ToolInfo info_;
};

}  // namespace

std::unique_ptr<Tool> MakePythonTool(PythonToolConfig config) {
  return std::make_unique<PythonTool>(std::move(config));
}

}  // namespace flowmesh::agent
