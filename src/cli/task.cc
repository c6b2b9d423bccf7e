// `flowmesh task …`: list, info, stop, watch and the archived logs of tasks.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <thread>

#include "cli/context.h"
#include "cli/output.h"
#include "cli/records.h"

namespace flowmesh::cli {
namespace {

using nlohmann::json;

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

bool IsTerminal(const std::string& status) { return WatchProgress::IsTerminal(status); }

int ExitCodeFor(const std::string& status) {
  if (status == "DONE") return kExitOk;
  if (status == "CANCELLED") return kExitCancelled;
  return kExitFailure;
}

// Follows one task to a terminal state: its event stream first (printing status changes
// and log lines), then the task record, which is authoritative. A stream that ends before
// the task does (a retried attempt, an older server) falls back to polling every
// --interval seconds. Returns the final record in *task, or an exit code on error (>= 0).
int FollowTask(Context& ctx, const std::string& task_id, bool print, json* task) {
  std::string last_status;
  auto show_status = [&](const std::string& status) {
    if (status.empty() || status == last_status) return;
    last_status = status;
    if (print && !ctx.inv.json) ctx.io.out << "[" << task_id << "] status: " << status << "\n";
    ctx.io.out.flush();
  };
  auto first = ctx.Get("/tasks/" + Enc(task_id));
  if (!first.ok) return first.exit_code;
  show_status(FieldText(first.json, {"status"}));
  *task = first.json;
  if (IsTerminal(last_status)) return -1;

  Status st =
      FollowStream(ctx, "/tasks/" + Enc(task_id) + "/logs/stream", [&](const http::SseEvent& ev) {
        auto event = json::parse(ev.data, nullptr, false);
        if (!print) return;
        if (ctx.inv.json) {
          ctx.io.out << ev.data << "\n";
          ctx.io.out.flush();
          return;
        }
        if (event.is_discarded() || !event.is_object()) return;
        std::string type = FieldText(event, {"type"});
        if (type == "TASK_LOG") {
          ctx.io.out << FormatEventLine(event) << "\n";
          ctx.io.out.flush();
          return;
        }
        std::string status = StatusForEventType(type);
        if (status.empty() && type == "TASK_UPDATE") status = FieldText(event, {"status"});
        show_status(status);
      });
  if (!st.ok() && st.code() == StatusCode::kUnavailable && last_status.empty()) {
    return ctx.ReportUnreachable(st);
  }
  for (;;) {
    auto reply = ctx.Get("/tasks/" + Enc(task_id));
    if (!reply.ok) return reply.exit_code;
    *task = reply.json;
    show_status(FieldText(reply.json, {"status"}));
    if (IsTerminal(last_status)) return -1;
    std::this_thread::sleep_for(std::chrono::duration<double>(ctx.inv.interval));
  }
}

json TaskSummary(const std::string& task_id, const json& task) {
  return {{"task_id", task_id},
          {"status", FieldText(task, {"status"})},
          {"error", FieldText(task, {"error", "last_error"})}};
}

}  // namespace

// GET /results/{task}/logs → `file` (the published route and file contents).
int SaveTaskLog(Context& ctx, const std::string& task_id, const std::string& file) {
  auto reply = ctx.Get("/results/" + Enc(task_id) + "/logs");
  if (!reply.ok) return reply.exit_code;
  std::error_code ec;
  auto parent = std::filesystem::path(file).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reply.response.body.data(), static_cast<std::streamsize>(reply.response.body.size()));
  out.close();
  if (!out) {
    ctx.io.err << "error: cannot write " << file << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

int TaskList(Context& ctx) {
  const Invocation& inv = ctx.inv;
  std::vector<std::pair<std::string, std::string>> params = {
      {"task_id", inv.id_filter},
      {"workflow_id", inv.workflow_filter},
      {"category", inv.category},
      {"task_type", inv.task_type},
      {"assigned_worker", inv.assigned_worker},
      {"graph_node_name", inv.graph_node}};
  Context::AddRepeated(&params, "status", inv.statuses);
  if (inv.completed >= 0) params.emplace_back("completed", inv.completed ? "true" : "false");
  if (inv.failed >= 0) params.emplace_back("failed", inv.failed ? "true" : "false");
  if (inv.limit > 0) params.emplace_back("limit", std::to_string(inv.limit));
  auto q = ctx.Query(std::move(params));
  if (!q) return kExitUnreachable;
  auto reply = ctx.Get("/tasks" + *q);
  if (!reply.ok) return reply.exit_code;
  json list = KeepNewest(FilterByStatus(reply.json, inv.statuses), inv.limit);
  if (inv.json) {
    ctx.PrintJson(list);
    return kExitOk;
  }
  ctx.io.out << FormatRecords(
      list, {"task_id", "graph_node_name", "task_type", "status", "assigned_worker", "attempts"});
  return kExitOk;
}

int TaskInfo(Context& ctx) {
  auto reply = ctx.Get("/tasks/" + Enc(ctx.inv.names.at(0)));
  if (!reply.ok) return reply.exit_code;
  return ctx.PrintBodyOrRecord(reply);
}

int TaskWatch(Context& ctx) { return WatchTask(ctx, ctx.inv.names.at(0)); }

int WatchTask(Context& ctx, const std::string& id) {
  json task;
  int rc = FollowTask(ctx, id, /*print=*/true, &task);
  if (rc >= 0) return rc;
  std::string status = FieldText(task, {"status"});
  std::string error = FieldText(task, {"error", "last_error"});
  if (ctx.inv.json) {
    ctx.io.out << TaskSummary(id, task).dump() << "\n";
  } else {
    ctx.io.out << "task " << id << " " << status << (error.empty() ? "" : ": " + error) << "\n";
  }
  return ExitCodeFor(status);
}

int TaskStop(Context& ctx) {
  const std::string& id = ctx.inv.names.at(0);
  auto reply = ctx.Call("POST", "/tasks/" + Enc(id) + "/stop");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.no_wait) {
    if (ctx.inv.json) {
      ctx.PrintJson({{"task_id", id}, {"stop_requested", true}});
    } else {
      ctx.io.out << "Stop requested for task " << id << ".\n";
    }
    return kExitOk;
  }
  if (!ctx.inv.json) ctx.io.out << "Stop requested for task " << id << ".\n";
  json task;
  int rc = FollowTask(ctx, id, /*print=*/false, &task);
  if (rc >= 0) return rc;
  std::string status = FieldText(task, {"status"});
  // The published server ends a stopped session DONE; ours ends a stopped task CANCELLED.
  // Both are a successful stop; FAILED is not.
  bool stopped = status == "DONE" || status == "CANCELLED";
  if (ctx.inv.json) {
    ctx.io.out << TaskSummary(id, task).dump() << "\n";
  } else if (stopped) {
    ctx.io.out << "Task stopped successfully (" << status << ").\n";
  } else {
    ctx.io.err << "Task " << status << ": " << FieldText(task, {"error", "last_error"}) << "\n";
  }
  return stopped ? kExitOk : kExitFailure;
}

int TaskLogsDownload(Context& ctx) {
  const std::string& id = ctx.inv.names.at(0);
  int rc = SaveTaskLog(ctx, id, ctx.inv.output);
  if (rc != kExitOk) return rc;
  if (ctx.inv.json) {
    ctx.PrintJson({{"task_id", id}, {"file", ctx.inv.output}});
  } else {
    ctx.io.out << "Wrote logs to " << ctx.inv.output << "\n";
  }
  return kExitOk;
}

}  // namespace flowmesh::cli
