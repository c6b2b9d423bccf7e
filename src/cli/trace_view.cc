// Text rendering of a workflow trace analysis (see output.h).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "cli/output.h"
#include "common/json_util.h"

namespace flowmesh::cli {
namespace {

using json = nlohmann::json;

double Num(const json& j, const char* key) { return JsonOr(j, key, 0.0); }
std::string Str(const json& j, const char* key) { return JsonOr(j, key, ""); }

std::string Seconds(double s) {
  if (s < 1) return fmt::format("{:.0f}ms", s * 1000);
  if (s < 100) return fmt::format("{:.2f}s", s);
  return FormatElapsed(s);
}

}  // namespace

std::string FormatTraceAnalysis(const json& a, int width) {
  width = std::max(10, width);
  const json& wf = a.contains("workflow") ? a["workflow"] : json::object();
  const json& br = a.contains("breakdown") ? a["breakdown"] : json::object();
  const json& cp = a.contains("critical_path") ? a["critical_path"] : json::object();
  double makespan = Num(a, "makespan_s");
  std::string out;
  out += fmt::format("workflow {} ({})  {}  makespan {}\n", Str(wf, "workflow_id"), Str(wf, "name"),
                     Str(wf, "status"), Seconds(makespan));
  out += fmt::format("tasks {}  executed {}  reused {}  attempts {}  queued {} total  ran {} total\n",
                     Num(br, "tasks"), Num(br, "executed"), Num(br, "reused"), Num(br, "attempts"),
                     Seconds(Num(br, "queue_s_total")), Seconds(Num(br, "run_s_total")));

  const json& path = cp.contains("tasks") && cp["tasks"].is_array() ? cp["tasks"] : json::array();
  out += fmt::format("\ncritical path: {} task(s), {} (queue {}, run {}, other {})\n", path.size(),
                     Seconds(Num(cp, "duration_s")), Seconds(Num(cp, "queue_s")),
                     Seconds(Num(cp, "run_s")), Seconds(Num(cp, "other_s")));
  double t0 = Num(wf, "submitted_at");
  size_t name_w = 4;
  for (const auto& t : path) name_w = std::max(name_w, Str(t, "node").size());
  name_w = std::min<size_t>(name_w, 24);
  double span = makespan > 0 ? makespan : 1;
  for (const auto& t : path) {
    // '.' waits for a worker, '#' runs; a reused step is a single '='.
    double ready = Num(t, "ready_at") - t0;
    double finished = Num(t, "finished_at") - t0;
    double queue = Num(t, "queue_s");
    auto col = [&](double sec) {
      return std::clamp(static_cast<int>(std::lround(sec / span * width)), 0, width);
    };
    std::string bar(static_cast<size_t>(width), ' ');
    int a = col(ready), b = col(ready + queue), c = col(finished);
    for (int i = a; i < b; ++i) bar[static_cast<size_t>(i)] = '.';
    for (int i = b; i < c; ++i) bar[static_cast<size_t>(i)] = '#';
    bool reused = t.contains("reused") && t["reused"].is_boolean() && t["reused"].get<bool>();
    if (reused) bar[static_cast<size_t>(std::min(c, width - 1))] = '=';
    std::string node = Str(t, "node").substr(0, name_w);
    out += fmt::format("  {:<{}} |{}| queue {:>7} run {:>7}{}\n", node, name_w, bar, Seconds(queue),
                       Seconds(Num(t, "run_s")), reused ? "  reused" : "");
  }

  out += "\n";
  std::vector<std::string> headers = {"NODE", "TYPE", "STATUS", "ATTEMPTS", "QUEUE", "RUN", "REUSED"};
  std::vector<std::vector<std::string>> rows;
  if (a.contains("tasks") && a["tasks"].is_array()) {
    for (const auto& t : a["tasks"]) {
      bool reused = t.contains("reused") && t["reused"].is_boolean() && t["reused"].get<bool>();
      rows.push_back({Str(t, "node"), Str(t, "task_type"), Str(t, "status"),
                      fmt::format("{}", Num(t, "attempts")), Seconds(Num(t, "queue_s")),
                      Seconds(Num(t, "run_s")), reused ? "yes" : ""});
    }
  }
  out += FormatTable(headers, rows);
  return out;
}

}  // namespace flowmesh::cli
