#include "cli/context.h"

#include <fstream>
#include <ostream>
#include <sstream>

#include "cli/output.h"
#include "cli/records.h"

namespace flowmesh::cli {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

Context::Context(const Invocation& inv, const Environment& env, Streams streams,
                 HomeLayout layout, Endpoint endpoint)
    : inv(inv), env(env), io(streams), layout(std::move(layout)), endpoint(std::move(endpoint)) {}

Context::~Context() = default;

http::Client& Context::client() {
  if (!client_) client_ = std::make_unique<http::Client>(endpoint.url);
  return *client_;
}

http::Headers Context::Headers(http::Headers extra) const {
  if (!endpoint.api_key.empty()) extra["Authorization"] = "Bearer " + endpoint.api_key;
  return extra;
}

std::string Context::ApiPath(const std::string& path) {
  if (path.rfind("/healthz", 0) == 0 || path.rfind("/api/", 0) == 0 ||
      path.rfind("/metrics", 0) == 0) {
    return path;
  }
  return "/api/v1" + (path.empty() || path[0] != '/' ? "/" + path : path);
}

int Context::ReportUnreachable(const Status& status) {
  io.err << ConnectionErrorMessage(endpoint.url, status.message()) << "\n";
  return kExitUnreachable;
}

std::optional<std::string> Context::Query(std::vector<std::pair<std::string, std::string>> pairs) {
  auto extra = ParseQueryFilters(inv.query);
  if (!extra.ok()) {
    io.err << "error: " << extra.status().message() << "\n";
    return std::nullopt;
  }
  for (auto& p : *extra) pairs.push_back(std::move(p));
  std::string q;
  for (const auto& [k, v] : pairs) {
    if (v.empty()) continue;
    q += (q.empty() ? "?" : "&") + http::PercentEncode(k) + "=" + http::PercentEncode(v);
  }
  return q;
}

int Context::PrintBodyOrRecord(const Reply& reply) {
  if (inv.json) {
    io.out << (reply.response.body.empty() ? "{}" : reply.response.body) << "\n";
  } else {
    io.out << FormatRecord(reply.json);
  }
  return kExitOk;
}

void Context::PrintJson(const nlohmann::json& value) { io.out << value.dump(2) << "\n"; }

Context::Reply Context::Call(const std::string& method, const std::string& path,
                             const std::string& body, http::Headers extra,
                             std::initializer_list<int> accept) {
  Reply reply;
  if (!body.empty() && extra.find("Content-Type") == extra.end()) {
    extra["Content-Type"] = "application/json";
  }
  auto result = client().Request(method, ApiPath(path), body, Headers(std::move(extra)));
  if (!result.ok()) {
    reply.exit_code = ReportUnreachable(result.status());
    return reply;
  }
  reply.response = std::move(result).value();
  if (!reply.response.body.empty()) {
    reply.json = nlohmann::json::parse(reply.response.body, nullptr, false);
    if (reply.json.is_discarded()) reply.json = nullptr;
  }
  int code = reply.response.status;
  bool accepted = code >= 200 && code < 300;
  for (int a : accept) accepted = accepted || a == code;
  if (!accepted) {
    io.err << FormatHttpError(code, reply.response.body) << "\n";
    reply.exit_code = kExitFailure;
    return reply;
  }
  reply.ok = true;
  return reply;
}

}  // namespace flowmesh::cli
