#include "sim/workload.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
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

// gpu_types and how many of each the fleet holds.
Status ParseGpuTypes(const json& w, Model& m) {
  FM_RETURN_IF_ERROR(Field(w, "gpu_types", "the workload"));
  for (const auto& [name, g] : w["gpu_types"].items()) {
    GpuType t;
    t.name = name;
    t.cost = g.at("cost_per_hour").get<double>();
    t.infer_speed = g.at("inference_speed").get<double>();
    t.train_speed = g.at("training_speed").get<double>();
    t.memory_gb = g.at("memory_gb").get<double>();
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
  m.per_task_sequences = inf.value("per_task_sequences", 8);
  m.slots = std::max(1, m.max_sequences / std::max(1, m.per_task_sequences));
  m.model_load_s = inf.value("model_load_s", 10.0);
  m.adapter_load_s = inf.value("adapter_load_s", 3.0);
  const json& fl = w.value("fleet_policy", json::object());
  m.startup_s = fl.value("worker_startup_s", 60.0);
  m.idle_timeout_s = fl.value("idle_timeout_s", 60.0);
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
      if (t.kind != "inference" && t.kind != "training") {
        return InvalidArgument("workload: task " + d.name + "/" + t.name + " kind must be inference or training");
      }
      t.rows = tj.value("rows", 0.0);
      t.tokens_per_row = tj.value("tokens_per_row", 256.0);
      t.train_h100_s = tj.value("h100_seconds", 0.0);
      t.memory_gb = tj.value("memory_gb", 0.0);
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
    }
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
        secs += t.kind == "training" ? t.train_h100_s / m.gpus[g].train_speed
                                     : t.rows * t.tokens_per_row / (Curve(m, std::min<double>(t.rows, m.per_task_sequences)) * m.gpus[g].infer_speed);
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
  } else {
    return InvalidArgument("workload: arrivals.process must be fixed, poisson or ramp");
  }
  double mix_total = 0;
  for (const auto& d : m.wfs) mix_total += d.mix;
  std::uniform_real_distribution<double> uni(0, mix_total);
  for (size_t i = 0; i < m.arrivals.size(); ++i) {
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
