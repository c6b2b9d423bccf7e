#include "api/routes/records.h"

#include "api/routes/common.h"

namespace flowmesh::api {

using nlohmann::json;

namespace {

json NullIfZero(double v) { return v == 0 ? json(nullptr) : json(v); }
json NullIfEmpty(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

// The published TaskUsage: ISO times and a hardware object.
json UsagesJson(const std::string& text) {
  json usages = ParseOr(text, json::array());
  if (!usages.is_array()) return json::array();
  for (auto& u : usages) {
    if (!u.is_object()) continue;
    for (const char* key : {"started_at", "finished_at"}) {
      if (u.contains(key) && u[key].is_number()) {
        double t = u[key].get<double>();
        u[std::string(key) == "started_at" ? "started_ts" : "finished_ts"] = t;
        json iso = IsoTime(t);
        u[key] = iso.is_null() ? json("") : iso;
      }
    }
    if (u.contains("hardware") && !u["hardware"].is_object()) {
      json kind = u["hardware"];
      u["hardware"] = kind.is_string() && !kind.get<std::string>().empty()
                          ? json{{"worker_type", kind}}
                          : json::object();
    }
  }
  return usages;
}

int LoadOf(const json& spec) {
  if (!spec.is_object()) return 1;
  auto res = spec.find("resources");
  if (res == spec.end() || !res->is_object()) return 1;
  auto l = res->find("estimatedLoad");
  return l != res->end() && l->is_number() ? l->get<int>() : 1;
}

}  // namespace

json TaskJson(const state::TaskRecord& t, const std::vector<std::string>& pending_dependencies,
              const std::string& view) {
  json latest = ParseOr(t.latest_update_json, json::object());
  if (latest.is_object()) {
    for (auto it = latest.begin(); it != latest.end();) {
      if (!it.key().empty() && it.key()[0] == '_') {
        it = latest.erase(it);
      } else {
        ++it;
      }
    }
  } else {
    latest = nullptr;
  }
  json out = {{"task_id", t.task_id},
              {"workflow_id", t.workflow_id},
              {"status", state::TaskStateName(t.status)},
              {"task_type", t.task_type},
              {"category", t.category},
              {"assigned_worker", NullIfEmpty(t.assigned_worker)},
              {"submitted_at", IsoTime(t.submitted_at)},
              {"submitted_ts", t.submitted_at},
              {"dispatched_ts", NullIfZero(t.dispatched_ts)},
              {"started_ts", NullIfZero(t.started_ts)},
              {"finished_ts", NullIfZero(t.finished_ts)},
              {"error", NullIfEmpty(t.error)},
              {"last_error", NullIfEmpty(t.last_error)},
              {"attempts", t.attempts},
              {"max_attempts", t.max_attempts},
              {"last_failed_worker",
               t.failed_workers.empty() ? json(nullptr) : json(t.failed_workers.back())},
              {"merged_parent_id", NullIfEmpty(t.merged_parent_id)},
              {"local_name", t.graph_node_name},
              {"graph_node_name", t.graph_node_name},
              {"latest_update", latest},
              {"completed", t.status == state::TaskState::kDone},
              {"failed", t.status == state::TaskState::kFailed},
              // Ours (the published TaskStatusView ignores extras): the graph's edges, so a
              // status list draws the DAG without every task's spec (the dashboard).
              {"depends_on", t.depends_on}};
  if (out["submitted_at"].is_null()) out["submitted_at"] = "";
  if (view == "status") return out;
  json spec = ParseOr(t.spec_json, json::object());
  if (!spec.is_object()) spec = json::object();
  // `source`: the task's own definition as submitted (JSON, which is also YAML); `raw_yaml`
  // repeats it for clients before 0.1.10.
  std::string source = spec.dump(-1, ' ', false, json::error_handler_t::replace);
  out.update(json{{"owner_id", t.owner_id},
                  {"org_id", t.org_id},
                  {"supplier_id", t.supplier_id},
                  {"task_name", t.task_name},
                  {"source", source},
                  {"raw_yaml", source},
                  {"task", spec},
                  {"spec", spec},
                  {"topic", nullptr},
                  {"load", LoadOf(spec)},
                  {"failed_workers", t.failed_workers},
                  {"pending_dependencies", pending_dependencies},
                  {"dependents", t.dependents},
                  {"merged_children", json::array()},
                  {"merge_key", NullIfEmpty(t.merge_key)},
                  {"result_digest", NullIfEmpty(t.result_digest)},
                  {"usages", UsagesJson(t.usages_json)}});
  return out;
}

json WorkflowJson(const state::WorkflowRecord& w, const std::vector<state::TaskRecord>& tasks,
                  const std::string& view) {
  json pending = json::array(), dispatched = json::array(), completed = json::array(),
       failed = json::array(), cancelled = json::array();
  for (const auto& t : tasks) {
    switch (t.status) {
      case state::TaskState::kDispatched:
      case state::TaskState::kCancelling:
        dispatched.push_back(t.task_id);
        break;
      case state::TaskState::kDone:
        completed.push_back(t.task_id);
        break;
      case state::TaskState::kFailed:
        failed.push_back(t.task_id);
        break;
      case state::TaskState::kCancelled:
        cancelled.push_back(t.task_id);
        break;
      case state::TaskState::kPending:
        pending.push_back(t.task_id);
        break;
    }
  }
  json out = {{"workflow_id", w.workflow_id},
              {"name", w.name},
              {"owner_id", w.owner_id},
              {"org_id", w.org_id},
              {"format", w.format},
              {"submitted_at", IsoTime(w.submitted_at)},
              {"updated_at", IsoTime(w.updated_at > 0 ? w.updated_at : w.submitted_at)},
              {"submitted_ts", w.submitted_at},
              {"updated_ts", w.updated_at},
              {"status", w.status},
              {"task_count", w.task_ids.size()},
              {"pending_count", pending.size()},
              {"dispatched_count", dispatched.size()},
              {"completed_count", completed.size()},
              {"failed_count", failed.size()},
              {"cancelled_count", cancelled.size()}};
  if (out["submitted_at"].is_null()) out["submitted_at"] = "";
  if (out["updated_at"].is_null()) out["updated_at"] = out["submitted_at"];
  if (view == "status") return out;
  out.update(json{{"task_ids", w.task_ids},
                  {"pending_tasks", std::move(pending)},
                  {"dispatched_tasks", std::move(dispatched)},
                  {"completed_tasks", std::move(completed)},
                  {"failed_tasks", std::move(failed)},
                  {"cancelled_tasks", std::move(cancelled)}});
  return out;
}

json WorkerJson(const json& snapshot, const std::map<std::string, std::string>& node_aliases) {
  json w = snapshot;
  std::string id = w.value("worker_id", "");
  std::string node_id = w.value("node_id", "");
  auto alias = node_aliases.find(node_id);
  w["id"] = id;
  w["namespace"] = "default";
  w["cluster"] = "default";
  w["node_alias"] = alias != node_aliases.end() ? alias->second : node_id;
  if (!w.contains("alias") || !w["alias"].is_string() || w["alias"].get<std::string>().empty()) {
    w["alias"] = w.value("name", id);
  }
  w["version"] = w.contains("version") && w["version"].is_string() ? w["version"] : json(nullptr);
  double last_seen =
      w.contains("last_seen") && w["last_seen"].is_number() ? w["last_seen"].get<double>() : 0;
  double registered = w.contains("registered_at") && w["registered_at"].is_number()
                          ? w["registered_at"].get<double>()
                          : 0;
  w["last_seen_ts"] = last_seen;
  w["last_seen"] = IsoTime(last_seen);
  w["started_at"] = IsoTime(registered);
  if (!w.contains("pid") || !w["pid"].is_number_integer() || w["pid"].get<int64_t>() <= 0)
    w["pid"] = nullptr;
  if (!w.contains("env") || !w["env"].is_object()) w["env"] = json::object();
  if (!w.contains("tags") || !(w["tags"].is_array() || w["tags"].is_string()))
    w["tags"] = json::array();
  if (!w.contains("cost_per_hour") || !w["cost_per_hour"].is_number()) w["cost_per_hour"] = nullptr;
  json types =
      w.contains("task_types") && w["task_types"].is_array() ? w["task_types"] : json::array();
  w["capabilities"] = {{"supported_task_types", types}};
  json models = json::array();
  if (w.contains("loaded_models") && w["loaded_models"].is_array()) {
    for (const auto& m : w["loaded_models"]) {
      if (m.is_string()) models.push_back(m);
    }
  }
  w["cached_models"] = models;
  w["cached_datasets"] = json::array();
  w["cache_updated_ts"] = nullptr;
  w["ssh_limits"] = nullptr;
  if (!w.contains("hardware") || !w["hardware"].is_object()) {
    json devices = json::array();
    if (w.contains("gpus") && w["gpus"].is_array()) {
      for (const auto& g : w["gpus"]) {
        if (!g.is_object()) continue;
        json d = {{"index", g.value("index", 0)}, {"name", g.value("name", "")}};
        if (g.contains("memory_mb") && g["memory_mb"].is_number()) {
          d["memory_total_bytes"] = static_cast<int64_t>(g["memory_mb"].get<double>() * 1048576.0);
        }
        devices.push_back(std::move(d));
      }
    }
    json hw = json::object();
    if (w.contains("cpu_cores") && w["cpu_cores"].is_number()) {
      hw["cpu"] = {{"logical_cores", static_cast<int64_t>(w["cpu_cores"].get<double>())}};
    }
    if (w.contains("memory_mb") && w["memory_mb"].is_number()) {
      hw["memory"] = {
          {"total_bytes", static_cast<int64_t>(w["memory_mb"].get<double>() * 1048576.0)}};
    }
    if (!devices.empty()) hw["gpu"] = {{"devices", devices}};
    w["hardware"] = hw;
  }
  if (!w.contains("stale") || !w["stale"].is_boolean()) w["stale"] = false;
  if (!w.contains("cordoned") || !w["cordoned"].is_boolean()) w["cordoned"] = false;
  if (!w.contains("status") || !w["status"].is_string()) w["status"] = "UNKNOWN";
  return w;
}

json NodeWorkerJson(const json& worker) {
  json w = worker;
  w["name"] = w.value("alias", w.value("id", ""));
  w["provider"] = "native";
  w["held_gpus"] = nullptr;
  return w;
}

json NodeJson(const state::NodeRecord& n, const std::vector<std::string>& worker_ids) {
  json info = ParseOr(n.info_json, json::object());
  if (!info.is_object()) info = json::object();
  json tags = info.contains("tags") && (info["tags"].is_array() || info["tags"].is_string())
                  ? info["tags"]
                  : json::array();
  auto text_or_null = [&info](const char* key) {
    return info.contains(key) && info[key].is_string() ? info[key] : json(nullptr);
  };
  json started = text_or_null("started_at");
  if (started.is_null()) started = IsoTime(n.registered_at);
  return {
      {"id", n.node_id},
      {"node_id", n.node_id},
      {"namespace", info.contains("namespace") && info["namespace"].is_string() ? info["namespace"]
                                                                                : json("default")},
      {"cluster",
       info.contains("cluster") && info["cluster"].is_string() ? info["cluster"] : json("default")},
      {"alias", n.alias},
      {"version", text_or_null("version")},
      {"started_at", started},
      {"tags", tags},
      {"last_seen", IsoTime(n.last_seen)},
      {"last_seen_ts", n.last_seen},
      {"registered_ts", n.registered_at},
      {"max_gpu_count", info.contains("max_gpu_count") && info["max_gpu_count"].is_number_integer()
                            ? info["max_gpu_count"]
                            : json(0)},
      {"current_gpu_count", 0},
      {"info", info},
      {"local", info.value("local", false)},
      {"workers", worker_ids}};
}

json PublicEvent(const std::string& event_json) {
  json e = ParseOr(event_json, json::object());
  if (!e.is_object()) return json{{"message", event_json}};
  if (e.contains("ts") && e["ts"].is_number()) {
    double ts = e["ts"].get<double>();
    e["ts_epoch"] = ts;
    e["ts"] = IsoTime(ts);
  }
  std::string type = e.value("type", "");
  const json payload =
      e.contains("payload") && e["payload"].is_object() ? e["payload"] : json::object();
  bool log_line = type == "TASK_LOG";
  if (!e.contains("level")) e["level"] = type == "TASK_FAILED" ? "ERROR" : "INFO";
  if (!e.contains("stream")) {
    e["stream"] = log_line && payload.contains("stream") && payload["stream"].is_string()
                      ? payload["stream"]
                      : json("system");
  }
  if (!e.contains("source")) e["source"] = log_line ? "worker" : "scheduler";
  if (!e.contains("message") || !e["message"].is_string()) {
    std::string message;
    if (log_line && payload.contains("line") && payload["line"].is_string()) {
      message = payload["line"].get<std::string>();
    } else {
      message = type;
      if (e.contains("status") && e["status"].is_string())
        message += " " + e["status"].get<std::string>();
      if (e.contains("error") && e["error"].is_string())
        message += ": " + e["error"].get<std::string>();
    }
    e["message"] = message;
  }
  if (e.contains("fields") && !e["fields"].is_object()) e.erase("fields");
  return e;
}

}  // namespace flowmesh::api
