// `flowmesh workflow validate FILE`: parsed and validated here by the same parser the server
// links (src/spec), so it works without a server; then, when a server is reachable, checked
// by it too (POST /workflows/validate) and against the task types its workers offer.
// --strict makes warnings and task types no live worker offers errors (and needs the server);
// --local never contacts the server.
#include <fmt/format.h>

#include <fstream>
#include <map>
#include <ostream>
#include <set>
#include <sstream>

#include "cli/context.h"
#include "cli/output.h"
#include "cli/records.h"
#include "spec/workflow.h"

namespace flowmesh::cli {
namespace {

using nlohmann::json;

json LocalTasks(const spec::WorkflowDef& def) {
  json tasks = json::array();
  for (const auto& t : def.tasks) {
    tasks.push_back({{"task_id", nullptr},
                     {"task_name", t.task_name},
                     {"graph_node_name", t.node_name},
                     {"task_type", t.task_type},
                     {"depends_on", t.depends_on}});
  }
  return tasks;
}

// What the server said; `reached` false when it could not be asked.
struct ServerCheck {
  bool reached = false;
  int exit_code = kExitOk;  // non-zero: stop with this code (already reported)
  json body;                // 200: the validate reply
};

ServerCheck ServerValidate(Context& ctx, const std::string& file, const std::string& text) {
  ServerCheck check;
  http::Headers headers = {
      {"Workflow-Format", ctx.inv.format},
      {"Content-Type", ctx.inv.format == "n8n" ? "application/json" : "text/plain"}};
  auto res = ctx.client().Request("POST", Context::ApiPath("/workflows/validate"), text,
                                  ctx.Headers(headers));
  if (!res.ok()) {
    if (ctx.inv.strict) {
      check.exit_code = ctx.ReportUnreachable(res.status());
    } else {
      ctx.io.err << "note: checked locally only; no server at " << ctx.endpoint.url << "\n";
    }
    return check;
  }
  check.reached = true;
  if (res->status == 422) {
    if (ctx.inv.json) {
      ctx.io.out << res->body << "\n";
    } else {
      for (const auto& line : FormatValidationErrors(file, res->body)) ctx.io.err << line << "\n";
    }
    check.exit_code = kExitFailure;
    return check;
  }
  if (res->status < 200 || res->status >= 300) {
    std::string message = FormatHttpError(res->status, res->body);
    if (ctx.inv.strict) {
      ctx.io.err << message << "\n";
      check.exit_code = kExitFailure;
    } else {
      ctx.io.err << "note: server-side validation skipped: " << message << "\n";
      check.reached = false;
    }
    return check;
  }
  check.body = json::parse(res->body, nullptr, false);
  if (check.body.is_discarded()) check.body = json();
  return check;
}

// Task types the workflow uses that no live worker offers, each with the nodes using it.
// Returns false (after reporting) when the worker list cannot be read.
bool UncoveredTaskTypes(Context& ctx, const spec::WorkflowDef& def,
                        std::map<std::string, std::vector<std::string>>* uncovered) {
  auto res = ctx.client().Request("GET", Context::ApiPath("/workers"), "", ctx.Headers());
  if (!res.ok()) {
    ctx.ReportUnreachable(res.status());
    return false;
  }
  if (res->status != 200) {
    ctx.io.err << "cannot list workers: " << FormatHttpError(res->status, res->body) << "\n";
    return false;
  }
  json workers = json::parse(res->body, nullptr, false);
  std::set<std::string> offered;
  if (workers.is_array()) {
    for (const auto& w : workers) {
      if (FieldText(w, {"status"}) == "DOWN") continue;
      for (const auto& t : WorkerTaskTypes(w)) offered.insert(t);
    }
  }
  for (const auto& t : def.tasks) {
    if (!offered.count(t.task_type)) (*uncovered)[t.task_type].push_back(t.node_name);
  }
  return true;
}

std::string Join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : sep) + i;
  return out;
}

}  // namespace

int WorkflowValidate(Context& ctx) {
  const std::string& file = ctx.inv.names.at(0);
  std::string text;
  if (!ReadFile(file, &text)) {
    ctx.io.err << "error: cannot read " << file << "\n";
    return kExitFailure;
  }
  std::vector<spec::SpecError> parse_errors;
  auto def = spec::ParseWorkflow(
      text, ctx.inv.format == "n8n" ? spec::Format::kN8n : spec::Format::kNative, &parse_errors);
  json errors = json::array();
  json warnings = json::array();
  if (!def.ok()) {
    for (const auto& e : parse_errors) errors.push_back(e.ToJson());
    if (errors.empty()) errors.push_back({{"path", ""}, {"message", def.status().message()}});
  } else {
    for (const auto& w : def->warnings) warnings.push_back(w.ToJson());
  }

  ServerCheck server;
  if (def.ok() && !ctx.inv.local_only) {
    server = ServerValidate(ctx, file, text);
    if (server.exit_code != kExitOk) return server.exit_code;
    if (server.reached || ctx.inv.strict) {
      std::map<std::string, std::vector<std::string>> uncovered;
      if (!UncoveredTaskTypes(ctx, *def, &uncovered)) {
        if (ctx.inv.strict) return kExitFailure;
      }
      for (const auto& [type, nodes] : uncovered) {
        json issue = {{"path", ""},
                      {"message", fmt::format("no registered worker offers task type '{}' "
                                              "(used by {}); its tasks would wait",
                                              type, Join(nodes, ", "))}};
        (ctx.inv.strict ? errors : warnings).push_back(issue);
      }
    }
  }
  if (ctx.inv.strict) {
    for (auto& w : warnings) errors.push_back(w);
    warnings = json::array();
  }

  json doc;
  if (server.reached && server.body.is_object()) {
    doc = server.body;
  } else if (def.ok()) {
    doc = {{"ok", true},
           {"name", def->name},
           {"count", def->tasks.size()},
           {"tasks", LocalTasks(*def)}};
  } else {
    doc = json::object();
  }
  doc["ok"] = errors.empty();
  doc["checked"] = server.reached ? "local+server" : "local";
  doc["warnings"] = warnings;
  if (!errors.empty()) doc["errors"] = errors;

  if (ctx.inv.json) {
    ctx.PrintJson(doc);
  } else {
    for (const auto& w : warnings) ctx.io.err << FormatLocatedIssue(file, w, "warning") << "\n";
    for (const auto& e : errors) ctx.io.err << FormatLocatedIssue(file, e) << "\n";
  }
  if (!errors.empty()) return kExitFailure;
  if (ctx.inv.json) return kExitOk;

  // depends_on holds node names locally; task ids in some server replies.
  std::vector<std::vector<std::string>> rows;
  for (const auto& t : def->tasks) {
    rows.push_back({t.node_name, t.depends_on.empty() ? "-" : Join(t.depends_on, ", ")});
  }
  ctx.io.out << file << ": valid, " << def->tasks.size() << " task(s)"
             << (warnings.empty() ? "" : fmt::format(", {} warning(s)", warnings.size())) << "\n";
  ctx.io.out << FormatTable({"TASK", "DEPENDS ON"}, rows);
  return kExitOk;
}

}  // namespace flowmesh::cli
