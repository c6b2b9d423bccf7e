// `flowmesh workflow …`: submit, validate, list, follow and cancel workflows; their logs.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <thread>

#include "cli/context.h"
#include "cli/output.h"
#include "cli/records.h"

namespace flowmesh::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMaxReconnects = 5;

http::Headers FormatHeaders(const std::string& format) {
  return {{"Workflow-Format", format},
          {"Content-Type", format == "n8n" ? "application/json" : "text/plain"}};
}

// Posts a workflow file to `path`. On success fills *reply; on 422 prints the errors and
// returns kExitFailure; returns -1 when the reply is OK.
int PostWorkflow(Context& ctx, const std::string& path, Context::Reply* reply) {
  const std::string& file = ctx.inv.names.at(0);
  std::string text;
  if (!ReadFile(file, &text)) {
    ctx.io.err << "error: cannot read " << file << "\n";
    return kExitFailure;
  }
  *reply = ctx.Call("POST", path, text, FormatHeaders(ctx.inv.format), {422});
  if (!reply->ok) return reply->exit_code;
  if (reply->response.status == 422) {
    if (ctx.inv.json) {
      ctx.io.out << reply->response.body << "\n";
    } else {
      for (const auto& line : FormatValidationErrors(file, reply->response.body)) {
        ctx.io.err << line << "\n";
      }
    }
    return kExitFailure;
  }
  return -1;
}

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

void PrintLogEntries(Context& ctx, const Context::Reply& reply) {
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
    return;
  }
  const auto& entries = reply.json.is_object() ? reply.json.value("entries", nlohmann::json::array())
                                               : nlohmann::json::array();
  for (const auto& e : entries) {
    ctx.io.out << FormatEventLine(e.is_object() && e.contains("event") ? e["event"] : e) << "\n";
  }
  if (reply.json.is_object() && reply.json.contains("next_cursor") &&
      !reply.json["next_cursor"].is_null() && !entries.empty()) {
    ctx.io.err << "(next page: --after " << DisplayValue(reply.json["next_cursor"]) << ")\n";
  }
}

int PrintStream(Context& ctx, const std::string& path) {
  Status st = FollowStream(ctx, path, [&](const http::SseEvent& ev) {
    if (ctx.inv.json) {
      ctx.io.out << ev.data << "\n";
    } else {
      auto event = nlohmann::json::parse(ev.data, nullptr, false);
      ctx.io.out << (event.is_discarded() ? ev.data : FormatEventLine(event)) << "\n";
    }
    ctx.io.out.flush();
  }, ctx.inv.cursor);
  if (!st.ok()) return ReportStreamError(ctx, st);
  return kExitOk;
}

std::string LogQuery(const Invocation& inv) {
  std::string q;
  auto add = [&](const std::string& k, const std::string& v) {
    if (v.empty()) return;
    q += (q.empty() ? "?" : "&") + k + "=" + http::PercentEncode(v);
  };
  if (inv.limit > 0) add("limit", std::to_string(inv.limit));
  add("after", inv.after);
  add("before", inv.before);
  return q;
}

}  // namespace

Status FollowStream(Context& ctx, const std::string& path,
                    const std::function<void(const http::SseEvent&)>& on_event,
                    const std::string& cursor) {
  std::string last_id = cursor;
  bool eos = false;
  Status last = Status::Ok();
  for (int attempt = 0; attempt <= kMaxReconnects && !eos; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(300 * attempt));
    http::Headers headers = ctx.Headers();
    if (!last_id.empty()) headers["Last-Event-ID"] = last_id;
    bool got_event = false;
    last = ctx.client().StreamSse(Context::ApiPath(path), headers, [&](const http::SseEvent& ev) {
      got_event = true;
      if (!ev.id.empty()) last_id = ev.id;
      if (ev.event == "eos") {
        eos = true;
        return false;
      }
      on_event(ev);
      return true;
    });
    if (eos) return Status::Ok();
    // Nothing ever came and the server is unreachable: no point in retrying.
    if (!last.ok() && last.code() == StatusCode::kUnavailable && attempt == 0 && !got_event) {
      return last;
    }
    if (!last.ok() && last.code() != StatusCode::kUnavailable &&
        last.code() != StatusCode::kDeadlineExceeded && last.code() != StatusCode::kInternal) {
      return last;  // an HTTP error such as 404: reconnecting will not help
    }
  }
  if (last.ok()) last = Unavailable("the event stream ended before the workflow finished");
  return last;
}

int ReportStreamError(Context& ctx, const Status& st) {
  if (st.code() == StatusCode::kUnavailable) return ctx.ReportUnreachable(st);
  ctx.io.err << "error: " << st.message() << "\n";
  return kExitFailure;
}

int WorkflowSubmit(Context& ctx) {
  Context::Reply reply;
  int rc = PostWorkflow(ctx, "/workflows", &reply);
  if (rc >= 0) return rc;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
    return kExitOk;
  }
  const auto& j = reply.json;
  ctx.io.out << "workflow_id: " << DisplayValue(j.value("workflow_id", nlohmann::json())) << "\n";
  auto tasks = j.value("tasks", nlohmann::json::array());
  ctx.io.out << "tasks: " << tasks.size() << "\n";
  ctx.io.out << FormatRecords(tasks, {"task_id", "status", "depends_on"});
  return kExitOk;
}

int WorkflowList(Context& ctx) {
  const Invocation& inv = ctx.inv;
  std::vector<std::pair<std::string, std::string>> params = {{"workflow_id", inv.id_filter}};
  Context::AddRepeated(&params, "status", inv.statuses);
  Context::AddRepeated(&params, "task_ids", inv.task_ids);
  if (inv.limit > 0) params.emplace_back("limit", std::to_string(inv.limit));
  auto q = ctx.Query(std::move(params));
  if (!q) return kExitUnreachable;
  auto reply = ctx.Get("/workflows" + *q);
  if (!reply.ok) return reply.exit_code;
  nlohmann::json list = KeepNewest(
      FilterByAny(FilterByStatus(reply.json, inv.statuses), "task_ids", inv.task_ids), inv.limit);
  if (ctx.inv.json) {
    ctx.PrintJson(list);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  if (list.is_array()) {
    for (const auto& w : list) {
      if (!w.is_object()) continue;
      rows.push_back({FieldText(w, {"workflow_id"}), FieldText(w, {"status"}),
                      std::to_string(CountOf(w.value("task_ids", nlohmann::json()))),
                      std::to_string(CountOf(w.value("completed_tasks", nlohmann::json()))),
                      std::to_string(CountOf(w.value("failed_tasks", nlohmann::json()))),
                      FormatTimestamp(w.value("submitted_at", nlohmann::json()))});
    }
  }
  ctx.io.out << FormatTable({"WORKFLOW", "STATUS", "TASKS", "DONE", "FAILED", "SUBMITTED"}, rows);
  return kExitOk;
}

int WorkflowInfo(Context& ctx) {
  auto reply = ctx.Get("/workflows/" + Enc(ctx.inv.names.at(0)));
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
  } else {
    ctx.io.out << FormatRecord(reply.json);
  }
  return kExitOk;
}

int WorkflowCancel(Context& ctx) {
  const std::string& id = ctx.inv.names.at(0);
  auto reply = ctx.Call("POST", "/workflows/" + Enc(id) + "/cancel");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << (reply.response.body.empty() ? "{}" : reply.response.body) << "\n";
  } else {
    ctx.io.out << "cancel requested for " << id << "\n";
  }
  return kExitOk;
}

namespace {

// `workflow watch --results`: each task's result, in task order. kExitUnreachable when the
// server is gone, else kExitOk (a task without a result is skipped).
int PrintResults(Context& ctx, const WatchProgress& progress) {
  for (const auto& task_id : progress.order()) {
    auto r = ctx.Get("/results/" + Enc(task_id));
    if (!r.ok) {
      if (r.exit_code == kExitUnreachable) return kExitUnreachable;
      continue;
    }
    if (ctx.inv.json) {
      ctx.io.out << nlohmann::json({{"task_id", task_id}, {"result", r.json}}).dump() << "\n";
    } else {
      const auto* t = progress.Find(task_id);
      std::string label = t && !t->name.empty() ? t->name + " (" + task_id + ")" : task_id;
      ctx.io.out << "== result of " << label << " ==\n"
                 << (r.json.is_null() ? r.response.body : r.json.dump(2)) << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

int WorkflowWatch(Context& ctx) {
  const std::string& id = ctx.inv.names.at(0);
  auto start = Clock::now();
  auto info = ctx.Get("/workflows/" + Enc(id));
  if (!info.ok) return info.exit_code;
  // Elapsed time counts from the workflow's submission, not from when watching began.
  double submitted_at = 0;
  if (info.json.is_object()) {
    // submitted_ts (epoch, after the API change) or submitted_at (epoch before, ISO after).
    submitted_at = EpochSeconds(info.json.value("submitted_ts", nlohmann::json()))
                       .value_or(EpochSeconds(info.json.value("submitted_at", nlohmann::json()))
                                     .value_or(0));
  }
  double finished_at = 0;  // set once the workflow is terminal
  auto elapsed = [&] {
    double wall = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    if (finished_at > 0 && submitted_at > 0) return finished_at - submitted_at;
    if (submitted_at > 0 && wall >= submitted_at) return wall - submitted_at;
    return std::chrono::duration<double>(Clock::now() - start).count();
  };

  WatchProgress progress;
  auto tasks = ctx.Get("/tasks?workflow_id=" + Enc(id));
  if (tasks.ok && tasks.json.is_array()) {
    for (const auto& t : tasks.json) {
      if (!t.is_object()) continue;
      progress.AddTask(DisplayValue(t.value("task_id", nlohmann::json())),
                       DisplayValue(t.value("graph_node_name", nlohmann::json())),
                       DisplayValue(t.value("status", nlohmann::json())));
    }
  } else if (tasks.exit_code == kExitUnreachable) {
    return kExitUnreachable;
  }
  for (const auto& t : info.json.value("task_ids", nlohmann::json::array())) {
    progress.AddTask(DisplayValue(t), "", "");
  }

  bool tty = ctx.io.tty && !ctx.inv.json;
  size_t drawn = 0;
  auto redraw = [&] {
    if (drawn > 0) ctx.io.out << "\033[" << drawn << "A\r\033[J";
    auto lines = progress.Render(id, elapsed());
    for (const auto& l : lines) ctx.io.out << l << "\n";
    drawn = lines.size();
    ctx.io.out.flush();
  };
  if (tty) redraw();
  else if (!ctx.inv.json) {
    ctx.io.out << fmt::format("watching {} ({} tasks)\n", id, progress.total());
    ctx.io.out.flush();
  }

  Status st = FollowStream(ctx, "/workflows/" + Enc(id) + "/logs/stream",
                           [&](const http::SseEvent& ev) {
    if (ctx.inv.json) {
      ctx.io.out << ev.data << "\n";
      ctx.io.out.flush();
      return;
    }
    auto event = nlohmann::json::parse(ev.data, nullptr, false);
    if (event.is_discarded() || !progress.Apply(event)) return;
    if (tty) {
      redraw();
    } else {
      ctx.io.out << progress.ChangeLine(elapsed()) << "\n";
      ctx.io.out.flush();
    }
  });
  if (!st.ok()) {
    ctx.io.err << "warning: " << st.message() << "\n";
  }

  auto final_info = ctx.Get("/workflows/" + Enc(id));
  if (!final_info.ok) return final_info.exit_code;
  std::string status = DisplayValue(final_info.json.value("status", nlohmann::json()));
  if (final_info.json.is_object() &&
      (status == "DONE" || status == "FAILED" || status == "CANCELLED")) {
    finished_at = EpochSeconds(final_info.json.value("updated_ts", nlohmann::json()))
                      .value_or(EpochSeconds(final_info.json.value("updated_at", nlohmann::json()))
                                    .value_or(0));
  }
  // The task records are authoritative for the final view (events may have been missed).
  if (tty) {
    auto final_tasks = ctx.Get("/tasks?workflow_id=" + Enc(id));
    if (final_tasks.ok && final_tasks.json.is_array()) {
      for (const auto& t : final_tasks.json) {
        if (!t.is_object()) continue;
        progress.AddTask(DisplayValue(t.value("task_id", nlohmann::json())), "",
                         DisplayValue(t.value("status", nlohmann::json())));
      }
    }
    redraw();
  }

  if (ctx.inv.results) {
    if (int rc = PrintResults(ctx, progress); rc != kExitOk) return rc;
  }
  if (ctx.inv.json) {
    ctx.io.out << nlohmann::json({{"workflow_id", id}, {"status", status}, {"elapsed", elapsed()}}).dump()
               << "\n";
  } else {
    ctx.io.out << fmt::format("workflow {} {} in {}\n", id, status, FormatElapsed(elapsed()));
  }
  if (status == "DONE") return kExitOk;
  if (status == "CANCELLED") return kExitCancelled;
  if (status != "FAILED" && !st.ok()) return ReportStreamError(ctx, st);
  return kExitFailure;
}

int WorkflowLogsShow(Context& ctx) {
  auto reply = ctx.Get("/workflows/" + Enc(ctx.inv.names.at(0)) + "/logs" + LogQuery(ctx.inv));
  if (!reply.ok) return reply.exit_code;
  PrintLogEntries(ctx, reply);
  return kExitOk;
}

int WorkflowLogsStream(Context& ctx) {
  return PrintStream(ctx, "/workflows/" + Enc(ctx.inv.names.at(0)) + "/logs/stream");
}

int WorkflowLogsDownload(Context& ctx) {
  const std::string& id = ctx.inv.names.at(0);
  auto info = ctx.Get("/workflows/" + Enc(id));
  if (!info.ok) return info.exit_code;
  std::error_code ec;
  std::filesystem::create_directories(ctx.inv.output, ec);
  if (ec) {
    ctx.io.err << "error: cannot create " << ctx.inv.output << ": " << ec.message() << "\n";
    return kExitFailure;
  }
  nlohmann::json saved = nlohmann::json::array();
  for (const auto& t : info.json.value("task_ids", nlohmann::json::array())) {
    std::string task_id = DisplayValue(t);
    std::string file = (std::filesystem::path(ctx.inv.output) / (task_id + "-logs.jsonl")).string();
    int rc = SaveTaskLog(ctx, task_id, file);
    if (rc != kExitOk) return rc;
    saved.push_back(file);
    if (!ctx.inv.json) ctx.io.out << "Downloaded logs to " << file << "\n";
  }
  if (ctx.inv.json) {
    ctx.PrintJson({{"workflow_id", id}, {"files", saved}});
  } else if (saved.empty()) {
    ctx.io.out << "No logs downloaded for workflow " << id << ".\n";
  }
  return kExitOk;
}

int TaskLogsStream(Context& ctx) {
  return PrintStream(ctx, "/tasks/" + Enc(ctx.inv.names.at(0)) + "/logs/stream");
}

int TaskLogs(Context& ctx) {
  if (ctx.inv.names.empty()) {
    ctx.io.err << "error: task logs needs a TASK_ID (or show|stream|download TASK_ID)\n";
    return kExitUnreachable;
  }
  auto reply = ctx.Get("/tasks/" + Enc(ctx.inv.names.at(0)) + "/logs" + LogQuery(ctx.inv));
  if (!reply.ok) return reply.exit_code;
  PrintLogEntries(ctx, reply);
  return kExitOk;
}

}  // namespace flowmesh::cli
