// `flowmesh task|result|worker …` and the local configuration verbs (init, config, health).
#include <sys/stat.h>

#include <fmt/format.h>

#include <fstream>
#include <ostream>

#include "cli/context.h"
#include "cli/output.h"

namespace flowmesh::cli {
namespace {

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

std::string Field(const nlohmann::json& rec, std::initializer_list<const char*> keys) {
  if (!rec.is_object()) return "";
  for (const char* k : keys) {
    auto it = rec.find(k);
    if (it != rec.end() && !it->is_null()) return DisplayValue(*it);
  }
  return "";
}

int PrintBodyOrRecord(Context& ctx, const Context::Reply& reply) {
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
  } else {
    ctx.io.out << FormatRecord(reply.json);
  }
  return kExitOk;
}

}  // namespace

int TaskList(Context& ctx) {
  std::string q;
  if (!ctx.inv.workflow_filter.empty()) q += "workflow_id=" + Enc(ctx.inv.workflow_filter);
  if (!ctx.inv.status_filter.empty()) {
    q += (q.empty() ? "" : "&") + std::string("status=") + Enc(ctx.inv.status_filter);
  }
  auto reply = ctx.Get("/tasks" + (q.empty() ? "" : "?" + q));
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
    return kExitOk;
  }
  ctx.io.out << FormatRecords(reply.json, {"task_id", "graph_node_name", "task_type", "status",
                                           "assigned_worker", "attempts"});
  return kExitOk;
}

int TaskInfo(Context& ctx) {
  auto reply = ctx.Get("/tasks/" + Enc(ctx.inv.names.at(0)));
  if (!reply.ok) return reply.exit_code;
  return PrintBodyOrRecord(ctx, reply);
}

int ResultFetch(Context& ctx) {
  auto reply = ctx.Get("/results/" + Enc(ctx.inv.names.at(0)));
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json || reply.json.is_null()) {
    ctx.io.out << reply.response.body << "\n";
  } else {
    ctx.PrintJson(reply.json);
  }
  return kExitOk;
}

int ResultDownload(Context& ctx) {
  const std::string& task_id = ctx.inv.names.at(0);
  std::string path = "/results/" + Enc(task_id) + "/bundle";
  if (!ctx.inv.include.empty()) path += "?include=" + Enc(ctx.inv.include);
  auto reply = ctx.Get(path);
  if (!reply.ok) return reply.exit_code;
  std::string file = ctx.inv.output.empty() ? task_id + ".tar.gz" : ctx.inv.output;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reply.response.body.data(), static_cast<std::streamsize>(reply.response.body.size()));
  out.close();
  if (!out) {
    ctx.io.err << "error: cannot write " << file << "\n";
    return kExitFailure;
  }
  if (ctx.inv.json) {
    ctx.PrintJson({{"task_id", task_id}, {"file", file}, {"bytes", reply.response.body.size()}});
  } else {
    ctx.io.out << fmt::format("wrote {} ({} bytes)\n", file, reply.response.body.size());
  }
  return kExitOk;
}

int WorkerList(Context& ctx) {
  std::string path = "/workers";
  if (!ctx.inv.status_filter.empty()) path += "?status=" + Enc(ctx.inv.status_filter);
  auto reply = ctx.Get(path);
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  if (reply.json.is_array()) {
    for (const auto& w : reply.json) {
      rows.push_back({Field(w, {"worker_id"}), Field(w, {"alias", "worker_alias"}),
                      Field(w, {"status"}), Field(w, {"worker_type", "type"}),
                      Field(w, {"node_id"}), Field(w, {"cordoned"}), Field(w, {"stale"})});
    }
  }
  ctx.io.out << FormatTable({"WORKER", "ALIAS", "STATUS", "TYPE", "NODE", "CORDONED", "STALE"},
                            rows);
  return kExitOk;
}

int WorkerInfo(Context& ctx) {
  auto reply = ctx.Get("/workers/" + Enc(ctx.inv.names.at(0)));
  if (!reply.ok) return reply.exit_code;
  return PrintBodyOrRecord(ctx, reply);
}

int WorkerCordon(Context& ctx, bool cordon) {
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

int Init(Context& ctx) {
  CliConfig config;
  auto existing = LoadConfig(ctx.layout.ConfigFile());
  if (existing.ok()) config = *existing;
  config.url = NormalizeUrl(ctx.inv.names.at(0));
  if (!ctx.inv.api_key.empty()) config.api_key = ctx.inv.api_key;
  Status st = SaveConfig(ctx.layout.ConfigFile(), config);
  if (!st.ok()) {
    ctx.io.err << "error: " << st.message() << "\n";
    return kExitFailure;
  }
  if (ctx.inv.json) {
    ctx.PrintJson({{"config_file", ctx.layout.ConfigFile()}, {"url", config.url},
                   {"api_key", MaskApiKey(config.api_key)}});
  } else {
    ctx.io.out << "wrote " << ctx.layout.ConfigFile() << " (url " << config.url
               << (config.api_key.empty() ? ", no API key" : ", API key " + MaskApiKey(config.api_key))
               << ")\n";
  }
  return kExitOk;
}

int ShowConfig(Context& ctx) {
  nlohmann::json doc = {{"home", ctx.layout.home},
                        {"config_file", ctx.layout.ConfigFile()},
                        {"url", ctx.endpoint.url},
                        {"url_source", ctx.endpoint.url_source},
                        {"api_key", MaskApiKey(ctx.endpoint.api_key)}};
  if (ctx.inv.json) {
    ctx.PrintJson(doc);
  } else {
    ctx.io.out << FormatRecord(doc);
  }
  return kExitOk;
}

int Health(Context& ctx) {
  auto reply = ctx.Get("/healthz");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << (reply.response.body.empty() ? "{}" : reply.response.body) << "\n";
  } else {
    ctx.io.out << ctx.endpoint.url << ": healthy";
    if (reply.json.is_object()) {
      for (const auto& [k, v] : reply.json.items()) ctx.io.out << "  " << k << "=" << DisplayValue(v);
    }
    ctx.io.out << "\n";
  }
  return kExitOk;
}

}  // namespace flowmesh::cli
