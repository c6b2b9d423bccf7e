// `flowmesh worker|node|system …`: the fleet as the server sees it.
#include <fmt/format.h>

#include <ostream>

#include "cli/context.h"
#include "cli/output.h"
#include "cli/records.h"

namespace flowmesh::cli {
namespace {

using nlohmann::json;
using Pairs = std::vector<std::pair<std::string, std::string>>;

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

// Filters shared by `worker list` and `node worker list`.
Pairs WorkerFilters(const Invocation& inv) {
  Pairs p = {{"id", inv.id_filter},
             {"alias", inv.alias},
             {"namespace", inv.namespace_},
             {"cluster", inv.cluster},
             {"node_id", inv.node_id_filter},
             {"node_alias", inv.node_alias},
             {"provider", inv.provider_filter}};
  Context::AddRepeated(&p, "status", inv.statuses);
  Context::AddRepeated(&p, "tags", inv.tag_filter);
  if (inv.stale >= 0) p.emplace_back("stale", inv.stale ? "true" : "false");
  return p;
}

// --id matched here too: a server that does not know the `id` field ignores the filter.
json MatchingId(const json& records, const std::string& id,
                std::initializer_list<const char*> keys) {
  if (id.empty() || !records.is_array()) return records;
  json out = json::array();
  for (const auto& r : records) {
    if (FieldText(r, keys) == id) out.push_back(r);
  }
  return out;
}

int PrintWorkers(Context& ctx, const json& all) {
  json workers = FilterByAny(
      FilterByStatus(MatchingId(all, ctx.inv.id_filter, {"worker_id", "id"}), ctx.inv.statuses),
      "tags", ctx.inv.tag_filter);
  if (ctx.inv.json) {
    ctx.PrintJson(workers);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : workers) {
    std::string types;
    for (const auto& t : WorkerTaskTypes(w)) types += (types.empty() ? "" : ",") + t;
    rows.push_back({WorkerId(w), FieldText(w, {"alias", "worker_alias"}), FieldText(w, {"status"}),
                    FieldText(w, {"worker_type", "type"}), FieldText(w, {"node_alias", "node_id"}),
                    FieldText(w, {"cordoned"}), FieldText(w, {"stale"}), types});
  }
  ctx.io.out << FormatTable(
      {"WORKER", "ALIAS", "STATUS", "TYPE", "NODE", "CORDONED", "STALE", "TASK TYPES"}, rows);
  return kExitOk;
}

// Cordons by alias: the published route (POST /workers/cordon {node_alias, alias}); a server
// without it answers 404/405, and then the worker is looked up and cordoned by id.
int CordonByAlias(Context& ctx, bool cordon) {
  const std::string verb = cordon ? "cordon" : "uncordon";
  json body = {{"node_alias", ctx.inv.node_alias}, {"alias", ctx.inv.alias}};
  auto direct = ctx.client().Request("POST", Context::ApiPath("/workers/" + verb), body.dump(),
                                     ctx.Headers({{"Content-Type", "application/json"}}));
  if (!direct.ok()) return ctx.ReportUnreachable(direct.status());
  int code = direct->status;
  if (code >= 200 && code < 300) {
    Context::Reply reply;
    reply.response = *direct;
    reply.json = json::parse(direct->body, nullptr, false);
    if (reply.json.is_discarded()) reply.json = json::object();
    return ctx.PrintBodyOrRecord(reply);
  }
  if (code != 404 && code != 405) {
    ctx.io.err << FormatHttpError(code, direct->body) << "\n";
    return kExitFailure;
  }
  auto list = ctx.Get("/workers");
  if (!list.ok) return list.exit_code;
  // Workers before the API change carry no node_alias: map the alias through /nodes.
  std::string wanted_node_id = ctx.inv.node_alias;
  auto nodes = ctx.Get("/nodes");
  if (nodes.ok && nodes.json.is_array()) {
    for (const auto& n : nodes.json) {
      if (FieldText(n, {"alias"}) == ctx.inv.node_alias)
        wanted_node_id = FieldText(n, {"node_id", "id"});
    }
  }
  for (const auto& w : list.json) {
    std::string node = FieldText(w, {"node_alias"});
    std::string node_id = FieldText(w, {"node_id"});
    if ((node == ctx.inv.node_alias || node_id == wanted_node_id) &&
        FieldText(w, {"alias"}) == ctx.inv.alias) {
      auto reply = ctx.Call("POST", "/workers/" + Enc(WorkerId(w)) + "/" + verb);
      if (!reply.ok) return reply.exit_code;
      return ctx.PrintBodyOrRecord(reply);
    }
  }
  ctx.io.err << "error: no worker " << ctx.inv.alias << " on node " << ctx.inv.node_alias << "\n";
  return kExitFailure;
}

}  // namespace

int WorkerList(Context& ctx) {
  auto q = ctx.Query(WorkerFilters(ctx.inv));
  if (!q) return kExitUnreachable;
  auto reply = ctx.Get("/workers" + *q);
  if (!reply.ok) return reply.exit_code;
  return PrintWorkers(ctx, reply.json);
}

int WorkerInfo(Context& ctx) {
  auto reply = ctx.Get("/workers/" + Enc(ctx.inv.names.at(0)));
  if (!reply.ok) return reply.exit_code;
  return ctx.PrintBodyOrRecord(reply);
}

int WorkerCordon(Context& ctx, bool cordon) {
  bool by_id = !ctx.inv.names.empty();
  bool by_alias = !ctx.inv.node_alias.empty() && !ctx.inv.alias.empty();
  if (by_id == by_alias || (by_id && (!ctx.inv.node_alias.empty() || !ctx.inv.alias.empty()))) {
    ctx.io.err << "error: pass a WORKER_ID, or both --node-alias and --alias\n";
    return kExitUnreachable;
  }
  if (by_alias) return CordonByAlias(ctx, cordon);
  const std::string& id = ctx.inv.names.at(0);
  auto reply = ctx.Call("POST", "/workers/" + Enc(id) + (cordon ? "/cordon" : "/uncordon"));
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << (reply.response.body.empty() ? "{}" : reply.response.body) << "\n";
  } else {
    ctx.io.out << id << ": " << (cordon ? "cordoned" : "uncordoned") << "\n";
  }
  return kExitOk;
}

int WorkerCordons(Context& ctx) {
  // The published route is /workers/cordons; ours was /workers/cordoned (cordoned workers).
  auto first = ctx.client().Request("GET", Context::ApiPath("/workers/cordons"), "", ctx.Headers());
  if (!first.ok()) return ctx.ReportUnreachable(first.status());
  json list;
  if (first->status == 200) {
    list = json::parse(first->body, nullptr, false);
  } else if (first->status == 404) {
    auto reply = ctx.Get("/workers/cordoned");
    if (!reply.ok) return reply.exit_code;
    list = reply.json;
  } else {
    ctx.io.err << FormatHttpError(first->status, first->body) << "\n";
    return kExitFailure;
  }
  if (!list.is_array()) list = json::array();
  if (ctx.inv.json) {
    ctx.PrintJson(list);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : list) {
    rows.push_back(
        {FieldText(c, {"node_alias", "node_id"}), FieldText(c, {"alias"}),
         c.is_object() && c.contains("worker_ids") ? DisplayValue(c["worker_ids"]) : WorkerId(c)});
  }
  ctx.io.out << FormatTable({"NODE", "ALIAS", "WORKERS"}, rows);
  return kExitOk;
}

int NodeList(Context& ctx) {
  const Invocation& inv = ctx.inv;
  Pairs params = {{"id", inv.id_filter},
                  {"namespace", inv.namespace_},
                  {"cluster", inv.cluster},
                  {"alias", inv.alias}};
  Context::AddRepeated(&params, "tags", inv.tag_filter);
  auto q = ctx.Query(std::move(params));
  if (!q) return kExitUnreachable;
  auto reply = ctx.Get("/nodes" + *q);
  if (!reply.ok) return reply.exit_code;
  json nodes =
      FilterByAny(MatchingId(reply.json, inv.id_filter, {"node_id", "id"}), "tags", inv.tag_filter);
  if (inv.json) {
    ctx.PrintJson(nodes);
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  if (nodes.is_array()) {
    for (const auto& n : nodes) {
      rows.push_back(
          {FieldText(n, {"node_id", "id"}), FieldText(n, {"alias"}), FieldText(n, {"status"}),
           FieldText(n, {"address"}), FieldText(n, {"namespace"}), FieldText(n, {"cluster"}),
           n.is_object() && n.contains("workers") ? std::to_string(CountOf(n["workers"])) : "",
           FormatTimestamp(n.value("last_seen", json()))});
    }
  }
  ctx.io.out << FormatTable(
      {"NODE", "ALIAS", "STATUS", "ADDRESS", "NAMESPACE", "CLUSTER", "WORKERS", "LAST SEEN"}, rows);
  return kExitOk;
}

int NodeInfo(Context& ctx) {
  auto reply = ctx.Get("/nodes/" + Enc(ctx.inv.names.at(0)));
  if (!reply.ok) return reply.exit_code;
  return ctx.PrintBodyOrRecord(reply);
}

int NodeWorkerList(Context& ctx) {
  auto q = ctx.Query(WorkerFilters(ctx.inv));
  if (!q) return kExitUnreachable;
  std::string path =
      ctx.inv.names.empty() ? "/nodes/workers" : "/nodes/" + Enc(ctx.inv.names.at(0)) + "/workers";
  auto reply = ctx.Get(path + *q);
  if (!reply.ok) return reply.exit_code;
  return PrintWorkers(ctx, FlattenWorkerLists(reply.json));
}

int NodeWorkerAction(Context& ctx, const std::string& action) {
  const std::string& node = ctx.inv.names.at(0);
  const std::string& alias = ctx.inv.names.at(1);
  auto reply = ctx.Call("POST", "/nodes/" + Enc(node) + "/workers/" + Enc(alias) + "/" + action);
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.PrintJson({{"node_id", node}, {"alias", alias}, {"action", action}, {"ok", true}});
  } else {
    ctx.io.out << fmt::format("Worker '{}' {} on node '{}'\n", alias,
                              action == "start" ? "started" : "stopped", node);
  }
  return kExitOk;
}

int SystemMetrics(Context& ctx) {
  auto reply = ctx.Get("/system/metrics");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json || !reply.json.is_object()) {
    ctx.io.out << reply.response.body << "\n";
    return kExitOk;
  }
  // Nested sections flattened to dotted keys, one per line.
  std::vector<std::vector<std::string>> rows;
  std::function<void(const std::string&, const json&)> walk = [&](const std::string& prefix,
                                                                  const json& v) {
    if (v.is_object() && !v.empty()) {
      for (const auto& [k, sub] : v.items()) walk(prefix.empty() ? k : prefix + "." + k, sub);
    } else {
      rows.push_back({prefix, DisplayValue(v)});
    }
  };
  walk("", reply.json);
  ctx.io.out << FormatTable({"METRIC", "VALUE"}, rows);
  return kExitOk;
}

int SystemVersion(Context& ctx) {
  auto reply = ctx.Get("/system/version");
  if (!reply.ok) return reply.exit_code;
  return ctx.PrintBodyOrRecord(reply);
}

}  // namespace flowmesh::cli
