// The built-in agent tools and the tool set a task spec asks for.
//
//  calculator  {expression}  arithmetic through the safe evaluator (calculator.h)
//  http_fetch  {url}         GET of an http:// URL whose host (or host:port) is on the
//                            task's allow-list (agent.http.allow); nothing is allowed by default
//  python      {code}        a short program in the python tasks' sandbox (python_tool.h)
//  <endpoint>  {...}         one per entry of agent.endpoints: POSTs the arguments as JSON to
//                            the declared http:// URL (the seam for the api executor's
//                            endpoints and credentials, which are not resolved here)
//
// Which tools a run gets: agent.tools when given (names of built-ins), else the tool set of
// the published configName (ToolNamesForConfig), plus every declared endpoint.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/tool.h"

namespace flowmesh::agent {

constexpr size_t kMaxFetchBytes = 16 * 1024;  // body bytes a fetch hands to the model

std::unique_ptr<Tool> MakeCalculatorTool();
// `allow`: hosts ("example.org") or host:port pairs ("127.0.0.1:8080").
std::unique_ptr<Tool> MakeHttpFetchTool(std::vector<std::string> allow);
// `declaration`: {name, url, description?, parameters? (JSON schema), headers? (object)}.
Result<std::unique_ptr<Tool>> MakeEndpointTool(const nlohmann::json& declaration);

// The built-in tools of a published configuration name; NotFound for names we do not know.
// "default" -> calculator; "simple_search", "examples/search_agent",
// "examples/paper_collector" -> http_fetch and calculator.
Result<std::vector<std::string>> ToolNamesForConfig(const std::string& config_name);

// The tool set of a task spec (see above). InvalidArgument for unknown tool names,
// malformed declarations or allow-list entries.
Result<ToolSet> ToolsFromSpec(const nlohmann::json& spec);

// Splits "http://host[:port]/path?q" into base ("http://host:port"), host:port and path.
struct HttpUrl {
  std::string base;
  std::string host;       // lower-case, without the port
  std::string host_port;  // host:port, port defaulted to 80
  std::string path;       // starts with '/'
};
Result<HttpUrl> ParseHttpUrl(const std::string& url);

}  // namespace flowmesh::agent
