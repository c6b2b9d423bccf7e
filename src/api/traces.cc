#include "api/traces.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "common/json_util.h"

namespace flowmesh::api {
namespace {

using json = nlohmann::json;

json Round(double v) { return std::round(v * 1e6) / 1e6; }
json TimeOrNull(double v) { return v == 0 ? json(nullptr) : json(v); }

struct Attempt {
  int number = 0;
  std::string worker;
  double dispatched = 0, started = 0, ended = 0;
  std::string status;  // DONE | FAILED | CANCELLED | RUNNING
  std::string error;
  // What the executor reported as spans of this attempt (TASK_UPDATE {span: {...}}, with
  // duration_ms; the event's time is when the span ended), in order.
  std::vector<std::pair<double, json>> steps;
};

struct TaskTrace {
  const state::TaskRecord* rec = nullptr;
  state::LineageRecord lineage;
  bool has_lineage = false;
  std::vector<Attempt> attempts;
  double ready_at = 0;
  double first_dispatch = 0;
  json outputs = json::object();
};

// Per attempt: a runaway executor cannot make a trace unbounded.
constexpr size_t kMaxStepSpans = 10000;

Attempt* CurrentAttempt(TaskTrace& t, int number) {
  for (auto& a : t.attempts) {
    if (a.number == number) return &a;
  }
  if (!t.attempts.empty() && number == 0) return &t.attempts.back();
  return nullptr;
}

// Folds the workflow's task events into attempts.
Status ReadAttempts(state::Store& store, const std::string& workflow_id,
                    std::unordered_map<std::string, TaskTrace>& traces) {
  state::EventQuery q;
  q.workflow_id = workflow_id;
  q.limit = 5000;
  for (;;) {
    FM_ASSIGN_OR_RETURN(auto events, store.ReadEvents(q));
    for (const auto& e : events) {
      if (e.type == "TASK_LOG" || e.type == "TASK_SUBMITTED") continue;
      if (e.type == "TASK_UPDATE" && e.json.find("\"span\"") == std::string::npos) continue;
      auto it = traces.find(e.task_id);
      if (it == traces.end()) continue;
      TaskTrace& t = it->second;
      json ev = json::parse(e.json, nullptr, false);
      json payload = JsonOr(ev, "payload", json::object());
      int number = JsonOr(payload, "attempt", 0);
      if (e.type == "TASK_DISPATCHED") {
        Attempt a;
        a.number = number > 0 ? number : static_cast<int>(t.attempts.size()) + 1;
        a.worker = JsonOr(ev, "worker_id", "");
        a.dispatched = e.ts;
        a.status = "RUNNING";
        t.attempts.push_back(a);
        if (t.first_dispatch == 0) t.first_dispatch = e.ts;
      } else if (e.type == "TASK_UPDATE") {
        const json span = JsonOr(payload, "span", json::object());
        Attempt* a = CurrentAttempt(t, number);
        if (a != nullptr && span.contains("duration_ms") &&
            span["duration_ms"].is_number() && a->steps.size() < kMaxStepSpans) {
          a->steps.emplace_back(e.ts, span);
        }
      } else if (e.type == "TASK_STARTED") {
        if (Attempt* a = CurrentAttempt(t, number); a != nullptr && a->started == 0) a->started = e.ts;
      } else if (e.type == "TASK_SUCCEEDED" || e.type == "TASK_FAILED" ||
                 e.type == "TASK_CANCELLED") {
        Attempt* a = CurrentAttempt(t, number);
        if (a == nullptr || a->ended != 0) continue;
        a->ended = e.ts;
        a->status = e.type == "TASK_SUCCEEDED" ? "DONE" : e.type == "TASK_FAILED" ? "FAILED" : "CANCELLED";
        a->error = JsonOr(ev, "error", "");
      }
    }
    if (static_cast<int>(events.size()) < q.limit) break;
    q.after = events.back().cursor;
  }
  return Status::Ok();
}

}  // namespace

namespace {

// A task's spans: the whole task, its wait for a worker, each attempt (or the reuse).
void AddSpans(const state::TaskRecord& t, const TaskTrace& tr, bool reused,
              std::vector<json>& spans) {
  double end = t.finished_ts;
  spans.push_back({{"span_id", t.task_id}, {"task_id", t.task_id}, {"node", t.graph_node_name},
                   {"kind", "task"}, {"start", t.submitted_at}, {"end", TimeOrNull(end)},
                   {"duration_s", end > 0 ? Round(end - t.submitted_at) : json(nullptr)},
                   {"status", state::TaskStateName(t.status)}});
  double queue_end = tr.first_dispatch != 0 ? tr.first_dispatch : end;
  if (queue_end > 0) {
    spans.push_back({{"span_id", t.task_id + ":queue"}, {"parent", t.task_id}, {"task_id", t.task_id},
                     {"node", t.graph_node_name}, {"kind", "queue"}, {"start", tr.ready_at},
                     {"end", queue_end}, {"duration_s", Round(std::max(0.0, queue_end - tr.ready_at))}});
  }
  if (reused) {
    spans.push_back({{"span_id", t.task_id + ":reused"}, {"parent", t.task_id}, {"task_id", t.task_id},
                     {"node", t.graph_node_name}, {"kind", "reused"}, {"start", end}, {"end", end},
                     {"duration_s", 0}, {"fingerprint", tr.lineage.fingerprint}});
  }
  for (const auto& a : tr.attempts) {
    spans.push_back({{"span_id", t.task_id + ":attempt:" + std::to_string(a.number)},
                     {"parent", t.task_id}, {"task_id", t.task_id}, {"node", t.graph_node_name},
                     {"kind", "attempt"}, {"attempt", a.number}, {"worker_id", a.worker},
                     {"start", a.dispatched}, {"run_start", TimeOrNull(a.started)},
                     {"end", TimeOrNull(a.ended)},
                     {"duration_s", a.ended > 0 ? Round(a.ended - a.dispatched) : json(nullptr)},
                     {"status", a.status}});
    const std::string attempt_id = t.task_id + ":attempt:" + std::to_string(a.number);
    for (size_t i = 0; i < a.steps.size(); ++i) {
      const auto& [end, step] = a.steps[i];
      double duration = std::max(0.0, step["duration_ms"].get<double>() / 1000.0);
      json span = {{"span_id", attempt_id + ":step:" + std::to_string(i)},
                   {"parent", attempt_id}, {"task_id", t.task_id}, {"node", t.graph_node_name},
                   {"kind", "step"}, {"attempt", a.number}, {"start", Round(end - duration)},
                   {"end", end}, {"duration_s", Round(duration)}};
      // The executor's own fields (name, tool, tokens, ...) ride along; ours win.
      for (const auto& [key, value] : step.items()) {
        if (!span.contains(key) && key != "started_ms") span[key] = value;
      }
      spans.push_back(std::move(span));
    }
  }
}

}  // namespace

Result<WorkflowTrace> BuildTrace(state::Store& store, const state::WorkflowRecord& wf) {
  state::TaskFilter tf;
  tf.workflow_id = wf.workflow_id;
  FM_ASSIGN_OR_RETURN(std::vector<state::TaskRecord> tasks, store.ListTasks(tf));
  FM_ASSIGN_OR_RETURN(std::vector<state::LineageRecord> lineage, store.ListLineage(wf.workflow_id));

  std::unordered_map<std::string, TaskTrace> traces;
  for (const auto& t : tasks) traces[t.task_id].rec = &t;
  for (auto& l : lineage) {
    auto it = traces.find(l.task_id);
    if (it == traces.end()) continue;
    it->second.lineage = std::move(l);
    it->second.has_lineage = true;
  }
  FM_RETURN_IF_ERROR(ReadAttempts(store, wf.workflow_id, traces));

  WorkflowTrace out;
  out.workflow = {{"workflow_id", wf.workflow_id}, {"name", wf.name}, {"status", wf.status},
                  {"submitted_at", wf.submitted_at}, {"updated_at", wf.updated_at}};

  // Assets: digest → {kind, size, path, produced_by, consumed_by}.
  std::map<std::string, json> assets;
  auto asset = [&](const std::string& digest, const char* kind, int64_t size, const std::string& path) -> json& {
    json& a = assets[digest];
    if (a.is_null()) {
      a = {{"digest", digest}, {"kind", kind}, {"size", size}, {"produced_by", json::array()},
           {"consumed_by", json::array()}};
      if (!path.empty()) a["path"] = path;
    }
    return a;
  };

  for (const auto& t : tasks) {
    TaskTrace& tr = traces[t.task_id];
    double ready = t.submitted_at;
    for (const auto& dep : t.depends_on) {
      auto d = traces.find(dep);
      if (d != traces.end() && d->second.rec != nullptr) ready = std::max(ready, d->second.rec->finished_ts);
    }
    tr.ready_at = ready;
    json files = json::array();
    json result = nullptr;
    if (!t.result_digest.empty()) {
      auto rec = store.GetResult(t.task_id);
      int64_t size = rec.ok() ? rec->size : 0;
      result = {{"digest", t.result_digest}, {"size", size}};
      asset(t.result_digest, "result", size, "")["produced_by"].push_back(t.task_id);
    }
    if (auto listed = store.ListResultFiles(t.task_id); listed.ok()) {
      for (const auto& f : *listed) {
        files.push_back({{"path", f.path}, {"digest", f.digest}, {"size", f.size}});
        asset(f.digest, "file", f.size, f.path)["produced_by"].push_back(t.task_id);
      }
    }
    tr.outputs = {{"result", result}, {"files", files}};
  }

  for (const auto& t : tasks) {
    TaskTrace& tr = traces[t.task_id];
    json inputs = tr.has_lineage ? json::parse(tr.lineage.inputs_json, nullptr, false) : json::array();
    if (!inputs.is_array()) inputs = json::array();
    for (const auto& in : inputs) {
      std::string digest = JsonOr(in, "digest", "");
      if (!digest.empty()) asset(digest, "result", 0, "")["consumed_by"].push_back(t.task_id);
    }
    json workers = json::array();
    json attempts = json::array();
    for (const auto& a : tr.attempts) {
      if (!a.worker.empty() &&
          std::find(workers.begin(), workers.end(), json(a.worker)) == workers.end()) {
        workers.push_back(a.worker);
      }
      attempts.push_back({{"attempt", a.number}, {"worker_id", a.worker}, {"status", a.status},
                          {"dispatched_at", TimeOrNull(a.dispatched)}, {"started_at", TimeOrNull(a.started)},
                          {"ended_at", TimeOrNull(a.ended)}, {"error", a.error.empty() ? json(nullptr) : json(a.error)}});
    }
    bool reused = tr.has_lineage && tr.lineage.reused;
    out.lineage.push_back({{"task_id", t.task_id},
                           {"node", t.graph_node_name},
                           {"task_type", t.task_type},
                           {"status", state::TaskStateName(t.status)},
                           {"fingerprint", tr.has_lineage ? json(tr.lineage.fingerprint) : json(nullptr)},
                           {"deterministic", tr.has_lineage && tr.lineage.deterministic},
                           {"reused", reused},
                           {"inputs", inputs},
                           {"outputs", tr.outputs},
                           {"attempts", attempts},
                           {"workers", workers},
                           {"submitted_at", t.submitted_at},
                           {"ready_at", tr.ready_at},
                           {"dispatched_ts", TimeOrNull(t.dispatched_ts)},
                           {"started_ts", TimeOrNull(t.started_ts)},
                           {"finished_ts", TimeOrNull(t.finished_ts)}});

    AddSpans(t, tr, reused, out.spans);
  }
  for (auto& [digest, a] : assets) out.assets.push_back(std::move(a));
  return out;
}

json AnalyzeTrace(const WorkflowTrace& trace) {
  std::unordered_map<std::string, const json*> by_id;
  for (const auto& l : trace.lineage) by_id[l["task_id"].get<std::string>()] = &l;

  json tasks = json::array();
  json edges = json::array();
  double queue_total = 0, run_total = 0, first = 0, last = 0;
  int executed = 0, reused = 0, attempts_total = 0;
  std::unordered_map<std::string, std::pair<double, double>> timing;  // id → queue, run
  for (const auto& l : trace.lineage) {
    std::string id = l["task_id"];
    double ready = JsonOr(l, "ready_at", 0.0);
    double finished = JsonOr(l, "finished_ts", 0.0);
    double dispatched = l["attempts"].empty() ? finished : JsonOr(l["attempts"][0], "dispatched_at", 0.0);
    double queue = dispatched > 0 ? std::max(0.0, dispatched - ready) : 0;
    double run = 0;
    for (const auto& a : l["attempts"]) {
      double s = JsonOr(a, "dispatched_at", 0.0);
      double e = JsonOr(a, "ended_at", 0.0);
      if (s > 0 && e > 0) run += e - s;
    }
    timing[id] = {queue, run};
    queue_total += queue;
    run_total += run;
    attempts_total += static_cast<int>(l["attempts"].size());
    if (l["reused"].get<bool>()) {
      ++reused;
    } else if (!l["attempts"].empty()) {
      ++executed;
    }
    double submitted = JsonOr(l, "submitted_at", 0.0);
    if (first == 0 || submitted < first) first = submitted;
    last = std::max(last, finished);
    tasks.push_back({{"task_id", id}, {"node", l["node"]}, {"task_type", l["task_type"]},
                     {"status", l["status"]}, {"attempts", l["attempts"].size()},
                     {"reused", l["reused"]}, {"workers", l["workers"]},
                     {"queue_s", Round(queue)}, {"run_s", Round(run)},
                     {"wall_s", finished > 0 ? Round(finished - ready) : json(nullptr)}});
    for (const auto& in : l["inputs"]) {
      edges.push_back({{"from_task", JsonOr(in, "task_id", "")}, {"from_node", JsonOr(in, "node", "")},
                       {"to_task", id}, {"to_node", l["node"]}, {"digest", JsonOr(in, "digest", "")}});
    }
  }

  // Critical path: from the task that finished last, walk to the input that finished last.
  json path = json::array();
  const json* cur = nullptr;
  for (const auto& l : trace.lineage) {
    if (cur == nullptr || JsonOr(l, "finished_ts", 0.0) > JsonOr(*cur, "finished_ts", 0.0)) cur = &l;
  }
  std::vector<const json*> chain;
  while (cur != nullptr && chain.size() <= trace.lineage.size()) {
    chain.push_back(cur);
    const json* next = nullptr;
    for (const auto& in : (*cur)["inputs"]) {
      auto it = by_id.find(JsonOr(in, "task_id", ""));
      if (it == by_id.end()) continue;
      if (next == nullptr || JsonOr(*it->second, "finished_ts", 0.0) > JsonOr(*next, "finished_ts", 0.0)) next = it->second;
    }
    cur = next;
  }
  std::reverse(chain.begin(), chain.end());
  double path_queue = 0, path_run = 0;
  for (const json* l : chain) {
    auto [queue, run] = timing[(*l)["task_id"].get<std::string>()];
    path_queue += queue;
    path_run += run;
    path.push_back({{"task_id", (*l)["task_id"]}, {"node", (*l)["node"]}, {"reused", (*l)["reused"]},
                    {"ready_at", (*l)["ready_at"]}, {"finished_at", (*l)["finished_ts"]},
                    {"queue_s", Round(queue)}, {"run_s", Round(run)}});
  }
  double makespan = last > 0 && first > 0 ? last - first : 0;
  return {{"workflow", trace.workflow},
          {"makespan_s", Round(makespan)},
          {"breakdown", {{"tasks", trace.lineage.size()}, {"executed", executed}, {"reused", reused},
                         {"attempts", attempts_total}, {"queue_s_total", Round(queue_total)},
                         {"run_s_total", Round(run_total)}}},
          {"critical_path", {{"duration_s", Round(makespan)}, {"queue_s", Round(path_queue)},
                             {"run_s", Round(path_run)},
                             {"other_s", Round(std::max(0.0, makespan - path_queue - path_run))},
                             {"tasks", path}}},
          {"tasks", tasks},
          {"lineage_edges", edges}};
}

std::string ToNdjson(const std::vector<json>& rows) {
  std::string out;
  for (const auto& r : rows) {
    out += r.dump(-1, ' ', false, json::error_handler_t::replace);
    out += '\n';
  }
  return out;
}

}  // namespace flowmesh::api
