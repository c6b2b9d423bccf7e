#include "cli/output.h"

#include "cli/records.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ctime>

namespace flowmesh::cli {
namespace {

// Display width in code points (UTF-8 continuation bytes do not count).
size_t DisplayWidth(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string ReasonPhrase(int status) {
  switch (status) {
    case 400: return "bad request";
    case 401: return "unauthorized: set an API key with --api-key, FLOWMESH_API_KEY or `flowmesh init`";
    case 403: return "forbidden";
    case 404: return "not found";
    case 409: return "conflict";
    case 413: return "request too large";
    case 422: return "invalid input";
    case 500: return "internal server error";
    case 501: return "not implemented";
    case 503: return "service unavailable";
    case 504: return "gateway timeout";
    default: return "request failed";
  }
}

std::string StringField(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return "";
  return DisplayValue(*it);
}

}  // namespace

std::string FormatTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(headers.size(), 0);
  for (size_t i = 0; i < headers.size(); ++i) widths[i] = DisplayWidth(headers[i]);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    }
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < headers.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      line += cell;
      if (i + 1 < headers.size()) line += std::string(widths[i] - DisplayWidth(cell) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  };
  emit(headers);
  for (const auto& row : rows) emit(row);
  return out;
}

std::string DisplayValue(const nlohmann::json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) {
    double d = value.get<double>();
    if (std::floor(d) == d && std::fabs(d) < 1e15) return fmt::format("{}", static_cast<long long>(d));
    return fmt::format("{:.3f}", d);
  }
  if (value.is_array()) {
    bool scalars = std::all_of(value.begin(), value.end(),
                               [](const nlohmann::json& v) { return v.is_primitive(); });
    if (scalars) {
      std::string out;
      for (const auto& v : value) {
        if (!out.empty()) out += ",";
        out += DisplayValue(v);
      }
      return out;
    }
  }
  return value.dump();
}

std::string FormatRecords(const nlohmann::json& records, const std::vector<std::string>& fields) {
  std::vector<std::vector<std::string>> rows;
  if (records.is_array()) {
    for (const auto& rec : records) {
      std::vector<std::string> row;
      for (const auto& f : fields) row.push_back(StringField(rec, f.c_str()));
      rows.push_back(std::move(row));
    }
  }
  return FormatTable(fields, rows);
}

std::string FormatHttpError(int status, const std::string& body) {
  std::string detail;
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (!doc.is_discarded() && doc.is_object()) {
    auto it = doc.find("detail");
    if (it != doc.end()) detail = it->is_string() ? it->get<std::string>() : it->dump();
  } else if (!doc.is_discarded() && doc.is_string()) {
    detail = doc.get<std::string>();
  } else {
    detail = Trim(body);
    if (detail.size() > 500) detail = detail.substr(0, 500) + "…";
  }
  if (detail.empty()) detail = ReasonPhrase(status);
  return fmt::format("error: {} (HTTP {})", detail, status);
}

std::string FormatLocatedIssue(const std::string& file, const nlohmann::json& issue,
                               const std::string& label) {
  std::string loc = file;
  std::string line = StringField(issue, "line");
  std::string col = StringField(issue, "column");
  if (!line.empty() && line != "0") {
    loc += ":" + line;
    if (!col.empty() && col != "0") loc += ":" + col;
  }
  std::string path = StringField(issue, "path");
  std::string message = StringField(issue, "message");
  if (message.empty() && !issue.is_object()) message = DisplayValue(issue);
  std::string out = loc + ": ";
  if (!label.empty()) out += label + ": ";
  if (!path.empty()) out += path + ": ";
  return out + message;
}

std::vector<std::string> FormatValidationErrors(const std::string& file, const std::string& body) {
  std::vector<std::string> lines;
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    lines.push_back(fmt::format("{}: {}", file, Trim(body).empty() ? "invalid workflow" : Trim(body)));
    return lines;
  }
  auto errors = doc.find("errors");
  if (errors != doc.end() && errors->is_array() && !errors->empty()) {
    for (const auto& e : *errors) lines.push_back(FormatLocatedIssue(file, e));
    return lines;
  }
  std::string detail = StringField(doc, "detail");
  lines.push_back(fmt::format("{}: {}", file, detail.empty() ? "invalid workflow" : detail));
  return lines;
}

std::string ConnectionErrorMessage(const std::string& url, const std::string& cause) {
  return fmt::format(
      "cannot reach the FlowMesh server at {} ({}). Start it with `flowmesh stack up` or set "
      "--url / FLOWMESH_URL.",
      url, cause);
}

std::string FormatTimestamp(const nlohmann::json& value) {
  auto epoch = EpochSeconds(value);
  if (!epoch) return DisplayValue(value);
  std::time_t secs = static_cast<std::time_t>(*epoch);
  std::tm tm{};
  ::localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string FormatRecord(const nlohmann::json& record) {
  if (!record.is_object()) return record.dump(2) + "\n";
  size_t width = 0;
  for (const auto& [k, v] : record.items()) width = std::max(width, k.size());
  std::string out;
  for (const auto& [k, v] : record.items()) {
    bool time_field = (v.is_number() || v.is_string()) &&
                      (k == "ts" || k.find("_at") != std::string::npos ||
                       k.find("_ts") != std::string::npos || k == "last_seen");
    std::string value = time_field ? FormatTimestamp(v) : DisplayValue(v);
    out += k + ":" + (value.empty() ? "" : std::string(width - k.size() + 1, ' ') + value) + "\n";
  }
  return out;
}

std::string FormatElapsed(double seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 10) return fmt::format("{:.1f}s", seconds);
  long long s = static_cast<long long>(seconds);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

std::string FormatEventLine(const nlohmann::json& event) {
  std::string ts;
  // ts: epoch seconds (ours) or ISO-8601 with the epoch in ts_epoch (published LogEvent).
  const char* ts_key = event.contains("ts_epoch") && event["ts_epoch"].is_number() ? "ts_epoch" : "ts";
  if (event.contains(ts_key) && event[ts_key].is_number()) {
    double t = event[ts_key].get<double>();
    std::time_t secs = static_cast<std::time_t>(t);
    std::tm tm{};
    ::localtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
    ts = fmt::format("{}.{:03}", buf, static_cast<int>((t - std::floor(t)) * 1000));
  } else {
    ts = StringField(event, "ts");
  }
  std::string type = StringField(event, "type");
  std::string task = StringField(event, "task_id");
  std::string line = ts;
  if (type == "TASK_LOG") {
    std::string text;
    if (event.contains("payload") && event["payload"].is_object()) {
      text = StringField(event["payload"], "line");
    }
    if (text.empty()) text = StringField(event, "message");
    if (text.empty() && event.contains("payload")) text = event["payload"].dump();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return fmt::format("{} {} | {}", ts, task.empty() ? "-" : task, text);
  }
  line += " " + type;
  if (!task.empty()) line += " " + task;
  std::string worker = StringField(event, "worker_id");
  if (!worker.empty()) line += " worker=" + worker;
  std::string status = StringField(event, "status");
  if (!status.empty()) line += " status=" + status;
  std::string error = StringField(event, "error");
  if (!error.empty()) line += " error=" + error;
  return line;
}

std::string StatusForEventType(const std::string& type) {
  if (type == "TASK_SUBMITTED") return "PENDING";
  if (type == "TASK_DISPATCHED") return "DISPATCHED";
  if (type == "TASK_STARTED") return "RUNNING";
  if (type == "TASK_SUCCEEDED") return "DONE";
  if (type == "TASK_FAILED") return "FAILED";
  if (type == "TASK_CANCELLED") return "CANCELLED";
  return "";
}

bool WatchProgress::IsTerminal(const std::string& status) {
  return status == "DONE" || status == "FAILED" || status == "CANCELLED";
}

WatchProgress::Task& WatchProgress::Get(const std::string& task_id) {
  auto it = tasks_.find(task_id);
  if (it != tasks_.end()) return it->second;
  order_.push_back(task_id);
  Task& t = tasks_[task_id];
  t.task_id = task_id;
  return t;
}

void WatchProgress::AddTask(const std::string& task_id, const std::string& name,
                            const std::string& status) {
  Task& t = Get(task_id);
  if (!name.empty()) t.name = name;
  if (!status.empty()) t.status = status;
}

const WatchProgress::Task* WatchProgress::Find(const std::string& task_id) const {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second;
}

size_t WatchProgress::Count(const std::string& status) const {
  size_t n = 0;
  for (const auto& [id, t] : tasks_) n += t.status == status ? 1 : 0;
  return n;
}

size_t WatchProgress::finished() const {
  size_t n = 0;
  for (const auto& [id, t] : tasks_) n += IsTerminal(t.status) ? 1 : 0;
  return n;
}

bool WatchProgress::Apply(const nlohmann::json& event) {
  if (!event.is_object()) return false;
  std::string task_id = StringField(event, "task_id");
  if (task_id.empty()) return false;
  std::string type = StringField(event, "type");
  std::string status = StatusForEventType(type);
  if (status.empty() && type == "TASK_UPDATE") status = StringField(event, "status");
  if (status.empty()) {
    // Logs and progress updates change nothing visible, but make the task known.
    bool known = tasks_.count(task_id) > 0;
    Get(task_id);
    return !known;
  }
  bool is_new = tasks_.count(task_id) == 0;
  Task& t = Get(task_id);
  // A failed attempt that the scheduler will retry is not the end of the task.
  bool retryable = event.contains("retryable") && event["retryable"].is_boolean() &&
                   event["retryable"].get<bool>();
  if (status == "FAILED" && retryable) status = "RETRYING";
  // A terminal state is final: a late DISPATCHED/STARTED (replayed after a reconnect) must
  // not move it back.
  if (IsTerminal(t.status)) return false;
  std::string worker = StringField(event, "worker_id");
  std::string error = StringField(event, "error");
  bool changed = is_new || t.status != status || (!worker.empty() && worker != t.worker) ||
                 (!error.empty() && error != t.error);
  t.status = status;
  if (!worker.empty()) t.worker = worker;
  if (!error.empty()) t.error = error;
  if (!changed) return false;
  std::string label = t.name.empty() ? t.task_id : fmt::format("{} ({})", t.name, t.task_id);
  last_change_ = fmt::format("{} {}", label, t.status);
  if (!t.worker.empty() && (status == "DISPATCHED" || status == "RUNNING")) {
    last_change_ += " on " + t.worker;
  }
  if (!t.error.empty() && (status == "FAILED" || status == "RETRYING")) {
    last_change_ += ": " + t.error;
  }
  return true;
}

std::string WatchProgress::ChangeLine(double elapsed) const {
  return fmt::format("[{}] {}/{} done  {}", FormatElapsed(elapsed), finished(), total(),
                     last_change_);
}

std::vector<std::string> WatchProgress::Render(const std::string& workflow_id,
                                               double elapsed) const {
  std::vector<std::string> lines;
  std::string summary = fmt::format("workflow {}  {}/{} done", workflow_id, finished(), total());
  size_t failed = Count("FAILED");
  size_t cancelled = Count("CANCELLED");
  size_t running = Count("RUNNING") + Count("DISPATCHED");
  if (running) summary += fmt::format(", {} running", running);
  if (failed) summary += fmt::format(", {} failed", failed);
  if (cancelled) summary += fmt::format(", {} cancelled", cancelled);
  summary += "  " + FormatElapsed(elapsed);
  lines.push_back(summary);
  std::vector<std::vector<std::string>> rows;
  for (const auto& id : order_) {
    const Task& t = tasks_.at(id);
    rows.push_back({t.name.empty() ? "-" : t.name, id, t.status, t.worker, t.error});
  }
  // Rows indented by two spaces to sit under the summary.
  for (auto& r : rows) r[0] = "  " + r[0];
  std::string body = FormatTable({"  TASK", "ID", "STATUS", "WORKER", "ERROR"}, rows);
  size_t start = 0;
  while (start < body.size()) {
    size_t nl = body.find('\n', start);
    lines.push_back(body.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

}  // namespace flowmesh::cli
