// `flowmesh admin org|key …` and `flowmesh usage`: organisations, API keys and usage.
#include <fmt/format.h>

#include <ostream>

#include "cli/context.h"
#include "cli/output.h"

namespace flowmesh::cli {
namespace {

using nlohmann::json;

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

json PolicyJson(const Invocation& inv) {
  json policy = json::object();
  for (const auto& [key, value] : inv.policy) {
    if (key == "weight") {
      policy[key] = value;
    } else {
      policy[key] = static_cast<int64_t>(value);
    }
  }
  return policy;
}

int PrintOrg(Context& ctx, const Context::Reply& reply) {
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
  } else {
    ctx.io.out << FormatRecord(reply.json);
  }
  return kExitOk;
}

// The scopes a key gets when --scopes is not given: everything a user does with their
// own work, nothing that manages the fleet or other keys.
const std::vector<std::string>& DefaultUserScopes() {
  static const std::vector<std::string> scopes = {
      "workflow:read", "workflow:write", "workflow:cancel", "task:read", "task:cancel",
      "result:read",   "worker:read",    "node:read",       "system:read"};
  return scopes;
}

}  // namespace

int AdminOrgCreate(Context& ctx) {
  json body = {{"name", ctx.inv.names.at(0)}, {"policy", PolicyJson(ctx.inv)}};
  auto reply = ctx.Call("POST", "/admin/orgs", body.dump(), {{"Content-Type", "application/json"}});
  if (!reply.ok) return reply.exit_code;
  return PrintOrg(ctx, reply);
}

int AdminOrgSet(Context& ctx) {
  auto reply = ctx.Call("PATCH", "/admin/orgs/" + Enc(ctx.inv.names.at(0)),
                        json{{"policy", PolicyJson(ctx.inv)}}.dump(),
                        {{"Content-Type", "application/json"}});
  if (!reply.ok) return reply.exit_code;
  return PrintOrg(ctx, reply);
}

int AdminOrgList(Context& ctx) {
  auto reply = ctx.Get("/admin/orgs");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
    return kExitOk;
  }
  json rows = json::array();
  for (auto o : reply.json) {
    json p = o.value("policy", json::object());
    for (const char* k : {"max_queued_tasks", "max_running_tasks", "max_gpus", "weight"}) {
      o[k] = p.value(k, json(nullptr));
    }
    rows.push_back(o);
  }
  ctx.io.out << FormatRecords(rows, {"org_id", "name", "max_queued_tasks", "max_running_tasks",
                                     "max_gpus", "weight"});
  return kExitOk;
}

int AdminKeyCreate(Context& ctx) {
  json body = {{"scopes", ctx.inv.scopes.empty() ? DefaultUserScopes() : ctx.inv.scopes}};
  if (!ctx.inv.org.empty()) body["org"] = ctx.inv.org;
  if (!ctx.inv.key_name.empty()) body["name"] = ctx.inv.key_name;
  if (!ctx.inv.principal.empty()) body["principal_id"] = ctx.inv.principal;
  auto reply = ctx.Call("POST", "/admin/keys", body.dump(), {{"Content-Type", "application/json"}});
  if (!reply.ok) return reply.exit_code;
  const json& k = reply.json;
  if (ctx.inv.json) {
    ctx.PrintJson({{"key", k.value("key", "")},
                   {"key_id", k.value("key_id", "")},
                   {"org", k.value("org", "")},
                   {"org_id", k.value("org_id", "")},
                   {"scopes", k.value("scopes", json::array())}});
  } else {
    ctx.io.out << "API key " << k.value("key_id", "") << " for organisation "
               << k.value("org", "") << " (" << k.value("org_id", "") << "):\n\n  "
               << k.value("key", "") << "\n\n"
               << "It is shown only this once; store it now (flowmesh init URL --api-key KEY).\n";
  }
  return kExitOk;
}

int AdminKeyList(Context& ctx) {
  auto reply = ctx.Get("/admin/keys" + (ctx.inv.org.empty() ? "" : "?org=" + Enc(ctx.inv.org)));
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
    return kExitOk;
  }
  ctx.io.out << FormatRecords(reply.json,
                              {"key_id", "org_id", "principal_id", "name", "prefix", "revoked"});
  return kExitOk;
}

int AdminKeyRevoke(Context& ctx) {
  auto reply = ctx.Call("POST", "/admin/keys/" + Enc(ctx.inv.names.at(0)) + "/revoke");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
  } else {
    ctx.io.out << "revoked " << ctx.inv.names.at(0) << "\n";
  }
  return kExitOk;
}

int Usage(Context& ctx) {
  std::string q;
  auto add = [&q](const char* k, const std::string& v) {
    if (!v.empty()) q += (q.empty() ? "?" : "&") + std::string(k) + "=" + Enc(v);
  };
  add("org", ctx.inv.org);
  add("from", ctx.inv.from);
  add("to", ctx.inv.to);
  auto reply = ctx.Get("/usage" + q);
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
    return kExitOk;
  }
  ctx.io.out << "Totals per organisation\n"
             << FormatRecords(reply.json.value("totals", json::array()),
                              {"org_id", "attempts", "runtime_sec", "cost", "prompt_tokens",
                               "completion_tokens"})
             << "\nPer day\n"
             << FormatRecords(reply.json.value("per_day", json::array()),
                              {"org_id", "day", "attempts", "runtime_sec", "cost", "prompt_tokens",
                               "completion_tokens"});
  return kExitOk;
}

}  // namespace flowmesh::cli
