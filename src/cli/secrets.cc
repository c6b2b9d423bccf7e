// `flowmesh secret set|list|delete`: the organisation's credentials on the server. The
// value of `set` comes from standard input so that it stays out of shell history and the
// process list; nothing here ever prints a value.
#include <iostream>
#include <iterator>
#include <ostream>

#include "cli/context.h"
#include "cli/output.h"

namespace flowmesh::cli {

using nlohmann::json;

int SecretSet(Context& ctx) {
  std::string value((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  if (value.empty()) {
    ctx.io.err << "secret set: no value on standard input (e.g. `printf %s \"$KEY\" | flowmesh "
                  "secret set NAME`)\n";
    return kExitFailure;
  }
  const std::string& name = ctx.inv.names.at(0);
  auto reply = ctx.Call("PUT", "/secrets/" + http::PercentEncode(name),
                        json{{"value", value}}.dump(), {{"Content-Type", "application/json"}});
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
  } else {
    ctx.io.out << "secret " << name << " stored\n";
  }
  return kExitOk;
}

int SecretList(Context& ctx) {
  auto reply = ctx.Get("/secrets");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
    return kExitOk;
  }
  ctx.io.out << FormatRecords(reply.json.value("secrets", json::array()),
                              {"name", "created_at", "updated_at"});
  return kExitOk;
}

int SecretDelete(Context& ctx) {
  const std::string& name = ctx.inv.names.at(0);
  auto reply = ctx.Call("DELETE", "/secrets/" + http::PercentEncode(name));
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << reply.response.body << "\n";
  } else {
    ctx.io.out << "secret " << name << " deleted\n";
  }
  return kExitOk;
}

}  // namespace flowmesh::cli
