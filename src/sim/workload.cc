#include "sim/workload.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include "sim/simulator.h"

namespace flowmesh::sim {

using nlohmann::json;

namespace {

constexpr double kEps = 1e-9;

Status Field(const json& j, const char* name, const char* what) {
  if (!j.is_object() || !j.contains(name)) return InvalidArgument(std::string("workload: ") + what + " needs '" + name + "'");
  return Status::Ok();
}

// `at`.`name` as a non-negative number; `def` when absent (required when there is none).
Result<double> Number(const json& j, const char* name, const std::string& at,
                      std::optional<double> def = std::nullopt) {
  if (!j.is_object() || !j.contains(name)) {
    if (def) return *def;
    return InvalidArgument("workload: " + at + " needs '" + name + "'");
  }
  const json& v = j[name];
  if (!v.is_number() || v.get<double>() < 0) {
    return InvalidArgument("workload: " + at + "." + name + " must be a non-negative number, not " + v.dump());
  }
  return v.get<double>();
}

// gpu_types and how many of each the fleet holds.
Status ParseGpuTypes(const json& w, Model& m) {
  FM_RETURN_IF_ERROR(Field(w, "gpu_types", "the workload"));
  for (const auto& [name, g] : w["gpu_types"].items()) {
    GpuType t;
    t.name = name;
    std::string at = "gpu_types." + name;
    FM_ASSIGN_OR_RETURN(t.cost, Number(g, "cost_per_hour", at));
    FM_ASSIGN_OR_RETURN(t.infer_speed, Number(g, "inference_speed", at));
    FM_ASSIGN_OR_RETURN(t.train_speed, Number(g, "training_speed", at));
    FM_ASSIGN_OR_RETURN(t.memory_gb, Number(g, "memory_gb", at));
    FM_ASSIGN_OR_RETURN(t.idle_watts, Number(g, "idle_watts", at, 0.0));
    FM_ASSIGN_OR_RETURN(t.busy_watts, Number(g, "busy_watts", at, t.idle_watts));
    if (t.infer_speed <= 0 || t.train_speed <= 0) {
      return InvalidArgument("workload: " + at + " inference_speed and training_speed must be > 0");
    }
    m.gpus.push_back(t);
  }
  if (m.gpus.empty()) return InvalidArgument("workload: gpu_types is empty");
  FM_RETURN_IF_ERROR(Field(w, "fleet", "the workload"));
  for (const auto& entry : w["fleet"].items()) {
    const std::string& name = entry.key();
    const json& n = entry.value();
    auto it = std::find_if(m.gpus.begin(), m.gpus.end(), [&](const GpuType& g) { return g.name == name; });
    if (it == m.gpus.end()) return InvalidArgument("workload: fleet names unknown GPU type '" + name + "'");
    it->max_count = n.get<int>();
  }
  return Status::Ok();
}

// The inference curve, fleet policy, orgs and utility options.
Status ParseSettings(const json& w, Model& m) {
  const json& inf = w.at("inference");
  for (const auto& p : inf.at("curve")) m.curve.push_back({p.at(0).get<double>(), p.at(1).get<double>()});
  if (m.curve.empty()) return InvalidArgument("workload: inference.curve is empty");
  m.max_sequences = inf.value("max_sequences", 64);
  // A real engine batches every row of its task, up to what it decodes at once.
  m.per_task_sequences = inf.value("per_task_sequences", m.max_sequences);
  m.slots = inf.value("tasks_per_worker", 8);
  if (m.max_sequences < 1 || m.per_task_sequences < 1 || m.slots < 1) {
    return InvalidArgument("workload: inference.max_sequences, per_task_sequences and tasks_per_worker must be >= 1");
  }
  FM_ASSIGN_OR_RETURN(m.model_load_s, Number(inf, "model_load_s", "inference", 10.0));
  FM_ASSIGN_OR_RETURN(m.adapter_load_s, Number(inf, "adapter_load_s", "inference", 3.0));
  const json& fl = w.value("fleet_policy", json::object());
  FM_ASSIGN_OR_RETURN(m.startup_s, Number(fl, "worker_startup_s", "fleet_policy", 60.0));
  FM_ASSIGN_OR_RETURN(m.idle_timeout_s, Number(fl, "idle_timeout_s", "fleet_policy", 60.0));
  FM_ASSIGN_OR_RETURN(m.heartbeat_s, Number(fl, "heartbeat_s", "fleet_policy", 1.0));
  m.min_workers = fl.value("min_workers", 0);
  m.max_workers = fl.value("max_workers", 0);
  m.elastic = fl.value("elastic", true);
  m.tick_s = fl.value("tick_s", 5.0);
  for (const auto& o : w.value("orgs", json::array({{{"name", "default"}, {"weight", 1.0}}}))) {
    m.orgs.push_back({o.at("name").get<std::string>(), o.value("weight", 1.0)});
  }
  if (m.orgs.empty()) return InvalidArgument("workload: orgs is empty");
  const json utility = w.value("utility", json::object());
  for (const auto& [key, value] : utility.items()) {
    if (!value.is_number()) return InvalidArgument("workload: utility." + key + " must be a number");
    std::string e = placement::SetPlacementOption(m.placement, key, value.get<double>());
    if (!e.empty()) return InvalidArgument("workload: utility: " + e);
  }
  return Status::Ok();
}

// What tenants may vary when they submit a template (used with submissions "varied").
Status ParseParameters(const json& wj, const std::map<std::string, int>& index, WorkflowDef& d) {
  const json& ps = wj.value("parameters", json::array());
  if (!ps.is_array()) return InvalidArgument("workload: workflow " + d.name + " parameters must be an array");
  for (const auto& pj : ps) {
    ParameterDef p;
    p.name = pj.value("name", "");
    std::string at = "workflow " + d.name + " parameter '" + p.name + "'";
    if (p.name.empty()) return InvalidArgument("workload: workflow " + d.name + " parameters[] needs 'name'");
    for (const auto& a : pj.value("affects", json::array())) {
      auto it = a.is_string() ? index.find(a.get<std::string>()) : index.end();
      if (it == index.end()) return InvalidArgument("workload: " + at + " affects unknown task " + a.dump());
      p.affects.push_back(it->second);
    }
    if (p.affects.empty()) return InvalidArgument("workload: " + at + " needs 'affects' (task names)");
    for (const auto& c : pj.value("choices", json::array())) {
      if (!c.is_object() || !c.contains("value")) return InvalidArgument("workload: " + at + " choices[] needs 'value'");
      double weight = 0;
      FM_ASSIGN_OR_RETURN(weight, Number(c, "weight", at + " choice", 1.0));
      p.choices.push_back({c["value"].is_string() ? c["value"].get<std::string>() : c["value"].dump(), weight});
    }
    double total = 0;
    for (const auto& c : p.choices) total += c.second;
    if (p.choices.empty() || total <= 0) return InvalidArgument("workload: " + at + " needs 'choices' with weights summing to > 0");
    d.parameters.push_back(std::move(p));
  }
  return Status::Ok();
}

// The workflow templates: tasks and their dependencies.
Status ParseWorkflows(const json& w, Model& m) {
  FM_RETURN_IF_ERROR(Field(w, "workflows", "the workload"));
  for (const auto& wj : w["workflows"]) {
    WorkflowDef d;
    d.name = wj.at("name").get<std::string>();
    d.mix = wj.value("mix", 1.0);
    d.variants = wj.value("variants", 0);
    if (d.variants < 0) return InvalidArgument("workload: workflow " + d.name + " variants must be >= 0");
    std::map<std::string, int> index;
    for (const auto& tj : wj.at("tasks")) {
      TaskDef t;
      t.name = tj.at("name").get<std::string>();
      t.kind = tj.at("kind").get<std::string>();
      std::string at = "workflow " + d.name + " task " + t.name;
      if (t.kind != "inference" && t.kind != "training" && t.kind != "cpu") {
        return InvalidArgument("workload: " + at + " kind must be inference, training or cpu");
      }
      t.task_type = tj.value("task_type", t.kind);
      FM_ASSIGN_OR_RETURN(t.rows, Number(tj, "rows", at, 0.0));
      FM_ASSIGN_OR_RETURN(t.tokens_per_row, Number(tj, "tokens_per_row", at, 256.0));
      FM_ASSIGN_OR_RETURN(t.train_h100_s, Number(tj, "h100_seconds", at, 0.0));
      FM_ASSIGN_OR_RETURN(t.seconds, Number(tj, "seconds", at, 0.0));
      FM_ASSIGN_OR_RETURN(t.memory_gb, Number(tj, "memory_gb", at, 0.0));
      if (t.kind == "inference" && (t.rows <= 0 || t.tokens_per_row <= 0)) {
        return InvalidArgument("workload: " + at + " (inference) needs rows > 0 and tokens_per_row > 0");
      }
      if (t.kind == "cpu" && t.seconds <= 0) return InvalidArgument("workload: " + at + " (cpu) needs seconds > 0");
      t.model = tj.value("model", "");
      t.produces = tj.value("produces", "");
      for (const auto& dep : tj.value("depends_on", json::array())) {
        auto it = index.find(dep.get<std::string>());
        if (it == index.end()) return InvalidArgument("workload: " + d.name + "/" + t.name + " depends on unknown or later task " + dep.dump());
        t.deps.push_back(it->second);
      }
      index[t.name] = static_cast<int>(d.tasks.size());
      d.tasks.push_back(t);
    }
    for (size_t i = 0; i < d.tasks.size(); ++i) {
      for (int dep : d.tasks[i].deps) d.tasks[dep].dependents.push_back(static_cast<int>(i));
      for (size_t k = 0; k < d.tasks.size(); ++k) {
        if (!d.tasks[i].model.empty() && d.tasks[k].produces == d.tasks[i].model) d.tasks[i].producer = static_cast<int>(k);
      }
    }
    FM_RETURN_IF_ERROR(ParseParameters(wj, index, d));
    d.static_gpu = -1;
    m.wfs.push_back(std::move(d));
  }
  return Status::Ok();
}

// For static_worker: the GPU type each template would run on alone.
Status PickStaticGpus(Model& m) {
  for (auto& d : m.wfs) {
    double need = 0;
    for (const auto& t : d.tasks) need = std::max(need, t.memory_gb);
    // An isolated pipeline picks the GPU type on which its own run costs least.
    int best = -1;
    double best_cost = 0;
    for (size_t g = 0; g < m.gpus.size(); ++g) {
      if (m.gpus[g].memory_gb + kEps < need) continue;
      double secs = m.startup_s;
      for (const auto& t : d.tasks) {
        if (t.kind == "training") {
          secs += t.train_h100_s / m.gpus[g].train_speed;
        } else if (t.kind == "cpu") {
          secs += t.seconds;
        } else {
          secs += t.rows * t.tokens_per_row / (Curve(m, std::min<double>(t.rows, m.per_task_sequences)) * m.gpus[g].infer_speed);
        }
      }
      double cost = secs * m.gpus[g].cost;
      if (best < 0 || cost < best_cost) {
        best = static_cast<int>(g);
        best_cost = cost;
      }
    }
    if (best < 0) return InvalidArgument("workload: no GPU type holds workflow " + d.name);
    d.static_gpu = best;
  }
  return Status::Ok();
}

// Arrival times, the template of each arrival and its variant, from the seed.
Status DrawArrivals(const json& w, Model& m) {
  const json& a = w.at("arrivals");
  std::mt19937_64 rng(m.seed);
  std::string process = a.at("process").get<std::string>();
  double per_min = a.value("per_min", 1.0);
  int count = a.value("count", 0);
  bool random = a.value("random", false);
  std::exponential_distribution<double> expo(1.0);
  if (process == "fixed") {
    for (int i = 0; i < count; ++i) m.arrivals.push_back(i * 60.0 / per_min);
  } else if (process == "poisson") {
    double t = 0;
    for (int i = 0; i < count; ++i) {
      m.arrivals.push_back(t);
      t += expo(rng) * 60.0 / per_min;
    }
  } else if (process == "ramp") {
    // Rate falls (or rises) linearly from `from_per_min` to `to_per_min` over `over_s`;
    // arrival k comes when the integral of the rate reaches k (or, random, at unit
    // exponential increments of it).
    double r0 = a.at("from_per_min").get<double>() / 60, r1 = a.at("to_per_min").get<double>() / 60;
    double over = a.at("over_s").get<double>();
    double total = (r0 + r1) / 2 * over, target = 0;
    while (true) {
      if (target > total) break;
      // Solve r0*t + (r1-r0)/(2*over)*t^2 = target for t.
      double qa = (r1 - r0) / (2 * over), qb = r0, t;
      if (std::abs(qa) < 1e-15) {
        t = target / qb;
      } else {
        t = (-qb + std::sqrt(std::max(0.0, qb * qb + 4 * qa * target))) / (2 * qa);
      }
      m.arrivals.push_back(t);
      target += random ? expo(rng) : 1.0;
    }
  } else if (process == "explicit") {
    // Each arrival named: when, which template, which org (a replay of a real submission).
    for (const auto& item : a.at("items")) {
      std::string at = "arrivals.items[" + std::to_string(m.arrivals.size()) + "]";
      double t = 0;
      FM_ASSIGN_OR_RETURN(t, Number(item, "at_s", at));
      std::string wf = item.value("workflow", "");
      auto d = std::find_if(m.wfs.begin(), m.wfs.end(), [&](const WorkflowDef& x) { return x.name == wf; });
      if (d == m.wfs.end()) return InvalidArgument("workload: " + at + ".workflow names unknown template '" + wf + "'");
      std::string org = item.value("org", m.orgs.front().first);
      auto o = std::find_if(m.orgs.begin(), m.orgs.end(), [&](const auto& x) { return x.first == org; });
      if (o == m.orgs.end()) return InvalidArgument("workload: " + at + ".org names unknown org '" + org + "'");
      m.arrivals.push_back(t);
      m.arrival_wf.push_back(static_cast<int>(d - m.wfs.begin()));
      m.arrival_org.push_back(static_cast<int>(o - m.orgs.begin()));
    }
    if (!std::is_sorted(m.arrivals.begin(), m.arrivals.end())) {
      return InvalidArgument("workload: arrivals.items must be in order of at_s");
    }
  } else {
    return InvalidArgument("workload: arrivals.process must be fixed, poisson, ramp or explicit");
  }
  if ((process == "fixed" || process == "poisson") && per_min <= 0) {
    return InvalidArgument("workload: arrivals.per_min must be > 0");
  }
  for (size_t i = m.arrival_org.size(); i < m.arrivals.size(); ++i) {
    m.arrival_org.push_back(static_cast<int>(i % m.orgs.size()));  // workflow i: org i mod n
  }
  double mix_total = 0;
  for (const auto& d : m.wfs) mix_total += d.mix;
  std::uniform_real_distribution<double> uni(0, mix_total);
  for (size_t i = m.arrival_wf.size(); i < m.arrivals.size(); ++i) {
    double x = uni(rng);
    int pick = 0;
    for (size_t k = 0; k < m.wfs.size(); ++k) {
      if (x < m.wfs[k].mix) {
        pick = static_cast<int>(k);
        break;
      }
      x -= m.wfs[k].mix;
      pick = static_cast<int>(k);
    }
    m.arrival_wf.push_back(pick);
  }
  // Drawn after the mix so that adding variants leaves arrivals and the mix unchanged.
  for (int wf : m.arrival_wf) {
    int n = m.wfs[wf].variants;
    m.arrival_variant.push_back(n > 0 ? std::uniform_int_distribution<int>(0, n - 1)(rng) : -1);
  }
  // Each task's own inputs. Varied parameters come from a stream of their own, so that
  // both kinds of submission see the same arrivals and templates.
  std::mt19937_64 prng(m.seed * 1000003 + 17);
  for (size_t i = 0; i < m.arrivals.size(); ++i) {
    const WorkflowDef& d = m.wfs[m.arrival_wf[i]];
    std::string own = m.arrival_variant[i] < 0 ? "i" + std::to_string(i) : "v" + std::to_string(m.arrival_variant[i]);
    std::vector<std::string> inputs(d.tasks.size(), m.submissions == "varied" ? "" : own);
    if (m.submissions == "varied") {
      for (const auto& p : d.parameters) {
        double total = 0;
        for (const auto& c : p.choices) total += c.second;
        double x = std::uniform_real_distribution<double>(0, total)(prng);
        std::string value = p.choices.back().first;
        for (const auto& c : p.choices) {
          if (x < c.second) {
            value = c.first;
            break;
          }
          x -= c.second;
        }
        if (value == "unique") value = "unique#" + std::to_string(i);
        for (int t : p.affects) inputs[t] += p.name + "=" + value + ";";
      }
    }
    m.arrival_inputs.push_back(std::move(inputs));
  }
  return Status::Ok();
}

}  // namespace

double Curve(const Model& m, double s) {
  if (s <= 0) return 0;
  const auto& c = m.curve;
  if (s <= c.front().first) return c.front().second * s / c.front().first;
  for (size_t i = 1; i < c.size(); ++i) {
    if (s <= c[i].first) {
      double f = (s - c[i - 1].first) / (c[i].first - c[i - 1].first);
      return c[i - 1].second + f * (c[i].second - c[i - 1].second);
    }
  }
  return c.back().second;
}

bool KnownScope(const std::string& scope) { return scope == "off" || scope == "tenant" || scope == "global"; }

Result<Model> BuildModel(const json& w) {
  Model m;
  if (!w.is_object()) return InvalidArgument("workload: the document must be an object");
  try {
    m.seed = w.value("seed", 1);
    FM_RETURN_IF_ERROR(ParseGpuTypes(w, m));
    FM_RETURN_IF_ERROR(ParseSettings(w, m));
    FM_RETURN_IF_ERROR(ParseWorkflows(w, m));
    FM_RETURN_IF_ERROR(PickStaticGpus(m));
    if (m.wfs.empty()) return InvalidArgument("workload: workflows is empty");
    m.submissions = w.value("submissions", std::string("published"));
    if (m.submissions != "published" && m.submissions != "varied") {
      return InvalidArgument("workload: submissions must be published or varied");
    }
    FM_RETURN_IF_ERROR(DrawArrivals(w, m));
    m.dedup_scope = w.value("dedup_scope", std::string("off"));
    if (!KnownScope(m.dedup_scope)) {
      return InvalidArgument("workload: dedup_scope must be off, tenant or global");
    }
    const json& f = w.value("failures", json::object());
    m.preempt_at = f.value("preempt_at_s", 0.0);
    m.preempt_fraction = f.value("preempt_fraction", 0.0);
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("workload: ") + e.what());
  }
  return m;
}

Result<json> LoadWorkload(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read workload file " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  json w = json::parse(ss.str(), nullptr, false);
  if (w.is_discarded()) return InvalidArgument("workload file " + path + " is not valid JSON");
  FM_RETURN_IF_ERROR(BuildModel(w).status());
  return w;
}

}  // namespace flowmesh::sim
