#include "agent/builtin_tools.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "agent/calculator.h"
#include "agent/python_tool.h"
#include "http/http.h"

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;
constexpr auto kMaxCallTime = std::chrono::seconds(30);

std::chrono::milliseconds Remaining(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return std::clamp<std::chrono::milliseconds>(left, std::chrono::milliseconds(0), kMaxCallTime);
}

json ResponseJson(const http::ClientResponse& response) {
  bool truncated = response.body.size() > kMaxFetchBytes;
  std::string body = truncated ? response.body.substr(0, kMaxFetchBytes) : response.body;
  json out = {{"status", response.status}, {"truncated", truncated}};
  json parsed = json::parse(body, nullptr, false);
  if (!truncated && !parsed.is_discarded()) {
    out["json"] = std::move(parsed);
  } else {
    // The model reads text: bytes that are not UTF-8 would make the transcript unprintable.
    std::string text;
    for (unsigned char c : body) text += c < 0x80 ? static_cast<char>(c) : '?';
    out["body"] = std::move(text);
  }
  return out;
}

class CalculatorTool : public Tool {
 public:
  CalculatorTool()
      : info_{
            "calculator", "Evaluates an arithmetic expression, e.g. (2+3)*4 or sqrt(2).",
            json{
                {"type", "object"},
                {"properties",
                 {{"expression",
                   {{"type", "string"}, {"maxLength", 48}, {"x-charset", "[0-9a-z+*/%^()., -]"}}}}},
                {"required", {"expression"}}}} {}
  const ToolInfo& info() const override { return info_; }
  Result<json> Call(const json& arguments, Deadline) override {
    FM_RETURN_IF_ERROR(CheckArguments(info_, arguments));
    FM_ASSIGN_OR_RETURN(double value, Evaluate(arguments["expression"].get<std::string>()));
    if (std::floor(value) == value && std::fabs(value) < 9.0e15)
      return json{{"value", static_cast<int64_t>(value)}};
    return json{{"value", value}};
  }

 private:
  ToolInfo info_;
};

class HttpFetchTool : public Tool {
 public:
  explicit HttpFetchTool(std::vector<std::string> allow)
      : info_{"http_fetch",
              "Fetches an http:// URL (GET) from an allowed host and returns its status and body.",
              json{{"type", "object"},
                   {"properties", {{"url", {{"type", "string"}, {"maxLength", 96}}}}},
                   {"required", {"url"}}}},
        allow_(std::move(allow)) {}
  const ToolInfo& info() const override { return info_; }
  Result<json> Call(const json& arguments, Deadline deadline) override {
    FM_RETURN_IF_ERROR(CheckArguments(info_, arguments));
    FM_ASSIGN_OR_RETURN(HttpUrl url, ParseHttpUrl(arguments["url"].get<std::string>()));
    bool allowed = std::any_of(allow_.begin(), allow_.end(), [&](const std::string& a) {
      return a == url.host || a == url.host_port;
    });
    if (!allowed)
      return Status(StatusCode::kPermissionDenied,
                    "http_fetch: host " + url.host_port + " is not on the allow-list");
    auto timeout = Remaining(deadline);
    if (timeout.count() == 0) return DeadlineExceeded("http_fetch: no time left");
    http::Client client(url.base, timeout);
    FM_ASSIGN_OR_RETURN(http::ClientResponse response, client.Get(url.path));
    return ResponseJson(response);
  }

 private:
  ToolInfo info_;
  std::vector<std::string> allow_;
};

class EndpointTool : public Tool {
 public:
  EndpointTool(ToolInfo info, HttpUrl url, http::Headers headers)
      : info_(std::move(info)), url_(std::move(url)), headers_(std::move(headers)) {}
  const ToolInfo& info() const override { return info_; }
  Result<json> Call(const json& arguments, Deadline deadline) override {
    FM_RETURN_IF_ERROR(CheckArguments(info_, arguments));
    auto timeout = Remaining(deadline);
    if (timeout.count() == 0) return DeadlineExceeded(info_.name + ": no time left");
    http::Client client(url_.base, timeout);
    FM_ASSIGN_OR_RETURN(http::ClientResponse response,
                        client.PostJson(url_.path, arguments.dump(), headers_));
    return ResponseJson(response);
  }

 private:
  ToolInfo info_;
  HttpUrl url_;
  http::Headers headers_;
};

bool ValidToolName(const std::string& name) {
  return !name.empty() && name.size() <= 48 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

const json& Field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

}  // namespace

Result<HttpUrl> ParseHttpUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind("https://", 0) == 0)
    return InvalidArgument("https:// is not supported yet (http:// only): " + url);
  if (url.rfind(kScheme, 0) != 0) return InvalidArgument("not an http:// URL: " + url);
  std::string rest = url.substr(kScheme.size());
  size_t slash = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, slash);
  std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  if (path[0] != '/') path = "/" + path;
  if (size_t hash = path.find('#'); hash != std::string::npos) path.resize(hash);
  if (authority.empty() || authority.find('@') != std::string::npos) {
    return InvalidArgument("bad host in URL: " + url);
  }
  std::string host = authority, port = "80";
  if (size_t colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), ::isdigit) ||
        std::stoi(port) < 1 || std::stoi(port) > 65535) {
      return InvalidArgument("bad port in URL: " + url);
    }
  }
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-') {
      return InvalidArgument("bad host in URL: " + url);
    }
  }
  if (host.empty()) return InvalidArgument("bad host in URL: " + url);
  return HttpUrl{"http://" + host + ":" + port, host, host + ":" + port, path};
}

std::unique_ptr<Tool> MakeCalculatorTool() { return std::make_unique<CalculatorTool>(); }

std::unique_ptr<Tool> MakeHttpFetchTool(std::vector<std::string> allow) {
  return std::make_unique<HttpFetchTool>(std::move(allow));
}

Result<std::unique_ptr<Tool>> MakeEndpointTool(const json& declaration) {
  const json& name = Field(declaration, "name");
  const json& url = Field(declaration, "url");
  if (!name.is_string() || !ValidToolName(name.get<std::string>())) {
    return InvalidArgument("agent.endpoints: each endpoint needs a name of [a-z0-9_]");
  }
  if (!url.is_string())
    return InvalidArgument("agent.endpoints." + name.get<std::string>() + ": url is required");
  FM_ASSIGN_OR_RETURN(HttpUrl parsed, ParseHttpUrl(url.get<std::string>()));
  json parameters = Field(declaration, "parameters");
  if (parameters.is_null()) {
    parameters = {{"type", "object"},
                  {"properties", {{"input", {{"type", "string"}, {"maxLength", 96}}}}},
                  {"required", {"input"}}};
  }
  if (!parameters.is_object())
    return InvalidArgument("agent.endpoints: parameters must be a JSON schema object");
  const json& description = Field(declaration, "description");
  http::Headers headers;
  if (Field(declaration, "headers").is_object()) {
    for (const auto& [key, value] : declaration["headers"].items()) {
      if (value.is_string()) headers[key] = value.get<std::string>();
    }
  }
  ToolInfo info{name.get<std::string>(),
                description.is_string() ? description.get<std::string>()
                                        : "Calls the " + name.get<std::string>() + " endpoint.",
                std::move(parameters)};
  return std::unique_ptr<Tool>(
      std::make_unique<EndpointTool>(std::move(info), std::move(parsed), std::move(headers)));
}

Result<std::vector<std::string>> ToolNamesForConfig(const std::string& config_name) {
  if (config_name.empty() || config_name == "default")
    return std::vector<std::string>{"calculator"};
  if (config_name == "simple_search" || config_name == "examples/search_agent" ||
      config_name == "examples/paper_collector") {
    return std::vector<std::string>{"http_fetch", "calculator"};
  }
  return NotFound(
      "unknown agent configName '" + config_name +
      "' (known: default, simple_search, examples/search_agent, examples/paper_collector)");
}

Result<ToolSet> ToolsFromSpec(const json& spec) {
  const json& agent = Field(spec, "agent");
  std::vector<std::string> allow;
  const json& allow_list = Field(Field(agent, "http"), "allow");
  if (!allow_list.is_null() && !allow_list.is_array())
    return InvalidArgument("agent.http.allow must be a list of hosts");
  for (const auto& host : allow_list.is_array() ? allow_list : json::array()) {
    if (!host.is_string() || host.get<std::string>().empty()) {
      return InvalidArgument("agent.http.allow: entries are host or host:port strings");
    }
    std::string entry = host.get<std::string>();
    std::transform(entry.begin(), entry.end(), entry.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    allow.push_back(std::move(entry));
  }

  std::vector<std::string> names;
  const json& tools = Field(agent, "tools");
  if (tools.is_array()) {
    for (const auto& t : tools) {
      const json& name = t.is_object() ? Field(t, "name") : t;
      if (!name.is_string()) return InvalidArgument("agent.tools: entries are tool names");
      names.push_back(name.get<std::string>());
    }
  } else {
    const json& config = Field(spec, "configName");
    auto config_tools =
        ToolNamesForConfig(config.is_string() ? config.get<std::string>() : "default");
    if (!config_tools.ok()) return InvalidArgument(config_tools.status().message());
    names = *config_tools;
  }

  ToolSet set;
  for (const auto& name : names) {
    if (name == "calculator") {
      FM_RETURN_IF_ERROR(set.Add(MakeCalculatorTool()));
    } else if (name == "http_fetch") {
      FM_RETURN_IF_ERROR(set.Add(MakeHttpFetchTool(allow)));
    } else if (name == "python") {
      FM_RETURN_IF_ERROR(set.Add(MakePythonTool()));
    } else {
      return InvalidArgument("agent.tools: unknown tool '" + name +
                             "' (built-in: calculator, http_fetch, python)");
    }
  }
  const json& endpoints = Field(agent, "endpoints");
  if (!endpoints.is_null() && !endpoints.is_array())
    return InvalidArgument("agent.endpoints must be a list");
  for (const auto& declaration : endpoints.is_array() ? endpoints : json::array()) {
    FM_ASSIGN_OR_RETURN(auto tool, MakeEndpointTool(declaration));
    Status added = set.Add(std::move(tool));
    if (!added.ok()) return InvalidArgument("agent.endpoints: " + added.message());
  }
  return set;
}

}  // namespace flowmesh::agent
