// Queued tasks no worker of the fleet could ever run, and a reason a person can act on.
#include "placement/placement_internal.h"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace flowmesh::placement {

namespace {

std::string DescribeResources(const Resources& r) {
  std::ostringstream o;
  o << "cpu=" << r.cpu << " memory_mb=" << r.memory_mb << " gpus=" << r.gpus;
  if (r.gpu_memory_mb > 0) o << " gpu_memory_mb=" << r.gpu_memory_mb;
  return o.str();
}

}  // namespace

std::string Placer::Impl::NoWorkerOffers(const Group& g) const {
  std::set<std::string> offered;
  for (const Worker& w : workers) {
    if (!w.live) continue;
    if (std::find(w.types.begin(), w.types.end(), g.type) != w.types.end()) return "";
    for (uint32_t t : w.types) offered.insert(strings.Name(t));
  }
  std::string out = "no worker offers taskType " + strings.Name(g.type) + "; workers offer: ";
  if (offered.empty()) return out + "nothing (no live worker)";
  bool first = true;
  for (const std::string& t : offered) {
    out += (first ? "" : ", ") + t;
    first = false;
  }
  return out;
}

std::string Placer::Impl::DescribeFleet(const Group& g) const {
  std::ostringstream o;
  o << "asks for task type '" << strings.Name(g.type) << "'";
  if (g.gpu_type != 0 && !strings.Name(g.gpu_type).empty()) o << " on GPU type '" << strings.Name(g.gpu_type) << "'";
  o << " with " << DescribeResources(g.demand);
  if (!g.pins.empty()) {
    o << " on worker";
    for (uint32_t p : g.pins) o << " '" << strings.Name(p) << "'";
  }
  o << "; the fleet offers ";
  std::map<std::string, int> offers;
  int live = 0;
  for (const Worker& w : workers) {
    if (!w.live) continue;
    ++live;
    bool serves = std::find(w.types.begin(), w.types.end(), g.type) != w.types.end();
    std::ostringstream d;
    d << (serves ? "" : "(other task types) ") << (strings.Name(w.gpu_type).empty() ? "cpu" : strings.Name(w.gpu_type))
      << " worker " << DescribeResources(w.cap) << (w.cordoned ? " cordoned" : "");
    if (serves) ++offers[d.str()];
  }
  if (offers.empty()) {
    o << "no live worker of that task type (" << live << " live worker(s) of other types)";
  } else {
    bool first = true;
    for (const auto& [d, n] : offers) {
      o << (first ? "" : "; ") << n << " × " << d;
      first = false;
    }
  }
  return o.str();
}

std::vector<Unplaceable> Placer::FindUnplaceable(double now, double grace_s) {
  std::vector<Unplaceable> out;
  Impl& s = *impl_;
  for (uint32_t gi = 0; gi < s.groups.size(); ++gi) {
    auto& g = s.groups[gi];
    if (g.live == 0 || now - g.first_enqueue < grace_s) continue;
    // Judged possible against this fleet already: nothing to scan until the fleet changes.
    if (g.possible_at != 0 && g.possible_at == s.fleet_version) continue;
    bool possible = false;
    for (const auto& w : s.workers) {
      if (s.CouldEverHold(w, g, false)) {
        possible = true;
        break;
      }
    }
    if (possible) {
      g.possible_at = s.fleet_version;
      continue;
    }
    std::string reason = s.NoWorkerOffers(g);
    if (reason.empty()) reason = "no worker can run this task: it " + s.DescribeFleet(g);
    for (size_t i = g.head; i < g.queue.size(); ++i) {
      const auto& t = s.slab[g.queue[i]];
      if (t.group == gi && now - t.enqueue >= grace_s) out.push_back({t.handle, reason});
    }
  }
  return out;
}

}  // namespace flowmesh::placement
