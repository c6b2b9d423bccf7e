// The agent's reply protocol and its GBNF grammar.
//
// Every model turn is one compact JSON object, either a tool call
//   {"tool":"calculator","arguments":{"expression":"2+2"}}
// or the final answer
//   {"final":"..."}
// For a local model the grammar below constrains sampling to exactly these objects (the
// tool names and argument schemas of the run, no free whitespace, every string bounded),
// so even a tiny random-weight model emits a call the loop can parse and dispatch. A
// remote model is asked for the same objects in its instructions and parsed leniently.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/tool.h"

namespace flowmesh::agent {

constexpr int kMaxFinalChars = 160;      // longest final answer the grammar lets out
constexpr int kDefaultStringChars = 48;  // argument strings without a maxLength

// allow_tools / allow_final select which reply kinds the grammar admits (at least one).
std::string ReplyGrammar(const std::vector<ToolInfo>& tools, bool allow_tools, bool allow_final);

// The longest reply (in characters) the grammar admits: a per-step token budget at least
// this large can never cut a constrained reply short.
int MaxReplyChars(const std::vector<ToolInfo>& tools);

struct ToolCall {
  std::string tool;
  nlohmann::json arguments;
};

struct ParsedReply {
  std::optional<ToolCall> call;
  std::optional<std::string> final_answer;
  std::string error;  // neither: why the reply is not a valid call or answer
};

// Reads one reply: the outermost {...} in `text` as JSON in the protocol above.
ParsedReply ParseReply(const std::string& text);

// The instructions (system message) that describe the tools and the protocol.
std::string ToolInstructions(const std::vector<ToolInfo>& tools, const std::string& system_prompt);

}  // namespace flowmesh::agent
