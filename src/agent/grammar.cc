#include "agent/grammar.h"

#include <algorithm>

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;
constexpr int kMaxDepth = 3;  // nested objects/arrays in arguments
constexpr int kMaxArrayItems = 4;
constexpr int kMaxDigits = 12;
constexpr int kBytesPerChar = 4;  // a free string character may be any code point

// A literal as GBNF writes it: "..." with quotes, backslashes and controls escaped.
std::string Literal(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

int StringChars(const json& schema, int fallback) {
  auto it = schema.find("maxLength");
  if (it != schema.end() && it->is_number_integer()) return std::clamp(it->get<int>(), 0, 512);
  return fallback;
}

const json& TypeOf(const json& schema) {
  static const json kNone;
  auto it = schema.is_object() ? schema.find("type") : schema.end();
  return schema.is_object() && it != schema.end() ? *it : kNone;
}

// The properties an object value spells out: the required ones when the schema names
// any, else all of them, in the schema's order.
std::vector<std::string> EmittedKeys(const json& schema) {
  std::vector<std::string> keys;
  const json& props = schema.value("properties", json::object());
  if (schema.contains("required") && schema["required"].is_array() && !schema["required"].empty()) {
    for (const auto& k : schema["required"]) {
      if (k.is_string()) keys.push_back(k.get<std::string>());
    }
    return keys;
  }
  for (const auto& [k, v] : props.items()) keys.push_back(k);
  return keys;
}

class GrammarBuilder {
 public:
  // Defines a rule and returns its name.
  std::string Rule(const std::string& body) {
    std::string name = "r" + std::to_string(rules_.size());
    rules_.push_back(name + " ::= " + body);
    return name;
  }
  void Root(const std::string& body) { rules_.insert(rules_.begin(), "root ::= " + body); }
  std::string Text() const {
    std::string out;
    for (const auto& r : rules_) out += r + "\n";
    return out;
  }

  std::string String(int max_chars, const std::string& charset) {
    std::string ch = charset.empty() ? R"([^"\\\x7F\x00-\x1F] | "\\" ["\\/bfnrt])" : charset;
    std::string c = Rule(ch);
    return Rule("\"\\\"\" " + c + "{0," + std::to_string(max_chars) + "} \"\\\"\"");
  }

  std::string Value(const json& schema, int depth) {
    if (schema.is_object() && schema.contains("enum") && schema["enum"].is_array() &&
        !schema["enum"].empty()) {
      std::string alts;
      for (const auto& v : schema["enum"]) alts += (alts.empty() ? "" : " | ") + Literal(v.dump());
      return Rule(alts);
    }
    const json& type = TypeOf(schema);
    std::string t = type.is_string() ? type.get<std::string>() : "";
    // JSON integers: no leading zeros.
    std::string digits = "(\"0\" | [1-9] [0-9]{0," + std::to_string(kMaxDigits - 1) + "})";
    if (t == "integer") return Rule("\"-\"? " + digits);
    if (t == "number") return Rule("\"-\"? " + digits + " (\".\" [0-9]{1,6})?");
    if (t == "boolean") return Rule("\"true\" | \"false\"");
    if (t == "object" && depth < kMaxDepth) return Object(schema, depth + 1);
    if (t == "array" && depth < kMaxDepth) {
      std::string item = Value(schema.value("items", json::object()), depth + 1);
      return Rule("\"[\" (" + item + " (\",\" " + item + "){0," +
                  std::to_string(kMaxArrayItems - 1) + "})? \"]\"");
    }
    std::string charset = schema.is_object() ? schema.value("x-charset", "") : "";
    return String(StringChars(schema, kDefaultStringChars), charset);
  }

  std::string Object(const json& schema, int depth) {
    const json& props = schema.value("properties", json::object());
    std::string body = "\"{\"";
    bool first = true;
    for (const auto& key : EmittedKeys(schema)) {
      json prop = props.contains(key) ? props[key] : json::object();
      body += " " + Literal((first ? "" : ",") + json(key).dump() + ":") + " " + Value(prop, depth);
      first = false;
    }
    return Rule(body + " \"}\"");
  }

 private:
  std::vector<std::string> rules_;
};

int MaxValueBytes(const json& schema, int depth) {
  if (schema.is_object() && schema.contains("enum") && schema["enum"].is_array()) {
    size_t longest = 0;
    for (const auto& v : schema["enum"]) longest = std::max(longest, v.dump().size());
    return static_cast<int>(longest);
  }
  const json& type = TypeOf(schema);
  std::string t = type.is_string() ? type.get<std::string>() : "";
  if (t == "integer") return 1 + kMaxDigits;
  if (t == "number") return 1 + kMaxDigits + 7;
  if (t == "boolean") return 5;
  if (t == "object" && depth < kMaxDepth) {
    int total = 2;
    const json& props = schema.value("properties", json::object());
    for (const auto& key : EmittedKeys(schema)) {
      total += static_cast<int>(json(key).dump().size()) + 2 +
               MaxValueBytes(props.contains(key) ? props[key] : json::object(), depth + 1);
    }
    return total;
  }
  if (t == "array" && depth < kMaxDepth) {
    return 2 +
           kMaxArrayItems * (1 + MaxValueBytes(schema.value("items", json::object()), depth + 1));
  }
  return 2 + kBytesPerChar * StringChars(schema, kDefaultStringChars);
}

}  // namespace

std::string ReplyGrammar(const std::vector<ToolInfo>& tools, bool allow_tools, bool allow_final) {
  GrammarBuilder g;
  std::vector<std::string> alternatives;
  if (allow_final || tools.empty()) {
    alternatives.push_back(g.Rule(Literal("\"final\":") + " " + g.String(kMaxFinalChars, "")));
  }
  if (allow_tools) {
    for (const auto& tool : tools) {
      std::string args =
          g.Value(tool.parameters.is_object() ? tool.parameters : json{{"type", "object"}}, 0);
      alternatives.push_back(
          g.Rule(Literal("\"tool\":" + json(tool.name).dump() + ",\"arguments\":") + " " + args));
    }
  }
  std::string alts;
  for (const auto& a : alternatives) alts += (alts.empty() ? "" : " | ") + a;
  g.Root("\"{\" (" + alts + ") \"}\"");
  return g.Text();
}

int MaxReplyChars(const std::vector<ToolInfo>& tools) {
  int longest = 12 + 2 + kBytesPerChar * kMaxFinalChars;
  for (const auto& tool : tools) {
    int call =
        2 + 30 + static_cast<int>(tool.name.size()) +
        MaxValueBytes(tool.parameters.is_object() ? tool.parameters : json{{"type", "object"}}, 0);
    longest = std::max(longest, call);
  }
  return longest;
}

ParsedReply ParseReply(const std::string& text) {
  ParsedReply out;
  size_t open = text.find('{');
  size_t close = text.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    out.error = "the reply is not a JSON object";
    return out;
  }
  json reply = json::parse(text.substr(open, close - open + 1), nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) {
    out.error = "the reply is not valid JSON";
    return out;
  }
  if (reply.contains("final")) {
    const json& f = reply["final"];
    out.final_answer = f.is_string() ? f.get<std::string>() : f.dump();
    return out;
  }
  if (reply.contains("tool") && reply["tool"].is_string()) {
    json arguments = reply.value("arguments", json::object());
    out.call = ToolCall{reply["tool"].get<std::string>(), std::move(arguments)};
    return out;
  }
  out.error = "the reply has neither \"tool\" nor \"final\"";
  return out;
}

std::string ToolInstructions(const std::vector<ToolInfo>& tools, const std::string& system_prompt) {
  std::string out = system_prompt.empty() ? "You are a helpful agent." : system_prompt;
  out +=
      "\nReply with one JSON object and nothing else: {\"tool\":NAME,\"arguments\":{...}} to call "
      "a tool, "
      "or {\"final\":ANSWER} when done.";
  if (!tools.empty()) out += "\nTools:";
  for (const auto& tool : tools) {
    out += "\n- " + tool.name + ": " + tool.description +
           " Arguments: " + tool.parameters.value("properties", json::object()).dump();
  }
  return out;
}

}  // namespace flowmesh::agent
