// Text formatting for the CLI: tables, error messages, event lines and the live progress
// view of `workflow watch`. Everything here is pure (strings in, strings out) so it is
// unit-tested without a server.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace flowmesh::cli {

// Left-aligned columns separated by two spaces; header row then one row per entry.
// Short rows are padded with empty cells. No trailing spaces.
std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

// Builds a table from JSON records: one column per field (missing fields are empty).
std::string FormatRecords(const nlohmann::json& records, const std::vector<std::string>& fields);

// A JSON scalar as display text: strings bare, null empty, numbers/bools as JSON,
// arrays of scalars comma-joined, other values compact JSON.
std::string DisplayValue(const nlohmann::json& value);

// "error: <detail> (HTTP <code>)". `body` is the response body; detail is its
// {"detail"} when it is a JSON object with a string detail, else the trimmed body,
// else the code's reason.
std::string FormatHttpError(int status, const std::string& body);

// The lines printed for a 422 validation failure: one `FILE:LINE:COLUMN: PATH: MESSAGE`
// per entry of body.errors (missing parts omitted), or `FILE: DETAIL` when there are none.
std::vector<std::string> FormatValidationErrors(const std::string& file, const std::string& body);

// One located problem {path, line, column, message} as `FILE:LINE:COLUMN: [LABEL: ]PATH: MESSAGE`
// (missing parts omitted); `label` is e.g. "warning".
std::string FormatLocatedIssue(const std::string& file, const nlohmann::json& issue,
                               const std::string& label = "");

// The message printed when the server cannot be reached.
std::string ConnectionErrorMessage(const std::string& url, const std::string& cause);

// One readable line for an event {type, ts, workflow_id, task_id, worker_id, status,
// error, payload}; TASK_LOG shows payload.line.
std::string FormatEventLine(const nlohmann::json& event);

// Seconds since the epoch or an ISO-8601 string as local "YYYY-MM-DD HH:MM:SS"; anything
// else as DisplayValue.
std::string FormatTimestamp(const nlohmann::json& value);

// "key: value" lines for the fields of a JSON object (nested values as compact JSON).
std::string FormatRecord(const nlohmann::json& record);

// "1.2s", "42s", "3m05s", "1h02m".
std::string FormatElapsed(double seconds);

// `flowmesh trace analyze`: the analysis of GET /traces/workflows/analyze/{wf} for a
// terminal: a summary, the critical path as a timeline of bars `width` columns wide, and
// per-task timing.
std::string FormatTraceAnalysis(const nlohmann::json& analysis, int width = 40);

// Progress of one workflow, built from its task list and the event stream.
// Not thread-safe; owned by the watch loop.
class WatchProgress {
 public:
  struct Task {
    std::string task_id;
    std::string name;  // graph_node_name when known
    std::string status = "PENDING";
    std::string worker;
    std::string error;
  };

  // Seeds tasks (in order) from GET /tasks records or bare ids.
  void AddTask(const std::string& task_id, const std::string& name, const std::string& status);
  // Applies one event; returns true when something visible changed.
  bool Apply(const nlohmann::json& event);

  size_t total() const { return order_.size(); }
  size_t finished() const;  // DONE + FAILED + CANCELLED
  size_t Count(const std::string& status) const;
  const Task* Find(const std::string& task_id) const;
  const std::vector<std::string>& order() const { return order_; }
  // What the latest Apply() changed, e.g. "summarise (tsk-…) DONE on wkr-…".
  const std::string& last_change() const { return last_change_; }

  // Full view for a TTY: a summary line then one line per task.
  std::vector<std::string> Render(const std::string& workflow_id, double elapsed) const;
  // The line printed per change when stdout is not a TTY:
  // "[3.2s] 2/5 done  summarise (tsk-…) DONE".
  std::string ChangeLine(double elapsed) const;

  static bool IsTerminal(const std::string& status);

 private:
  Task& Get(const std::string& task_id);

  std::map<std::string, Task> tasks_;
  std::vector<std::string> order_;
  std::string last_change_;
};

// Maps an event type to the task status it implies ("" when it implies none).
std::string StatusForEventType(const std::string& type);

}  // namespace flowmesh::cli
