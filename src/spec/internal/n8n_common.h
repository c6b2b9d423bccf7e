// Types and helpers shared by the parts of the n8n translator (spec/n8n.cc and
// internal/n8n_*.cc): the node model, n8n data paths and expression sources. Internal to
// src/spec; pure functions, safe from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flowmesh::spec::n8n_internal {

using nlohmann::json;

constexpr size_t kMaxName = 128;
constexpr size_t kMaxRoutes = 256;  // distinct paths reaching one node
constexpr size_t kMaxNodes = 10000;
// Bounds the translation's own work (paths, Set fields carried along them, upstream
// searches) so that a hostile export cannot make it quadratic in time or memory.
constexpr size_t kMaxWork = 20000000;
constexpr std::string_view kOpenAiUrl = "https://api.openai.com/v1";

enum class Kind {
  kTrigger,
  kNote,
  kSet,
  kIf,
  kChainLlm,
  kHfModel,
  kOpenAiChatModel,
  kOpenAi,
  kHttp,
  kUnsupported,
};

Kind KindOf(const std::string& type);

const std::vector<std::string>& SupportedTypes();

std::string_view ShortType(std::string_view type);

// " (did you mean '…'?)" comparing only the part after the package name.
std::string SuggestType(const std::string& type);

bool IsTaskKind(Kind k);
bool IsModelKind(Kind k);

std::string Quoted(const std::string& s);

std::string Join(const std::vector<std::string>& items, std::string_view sep);

bool IsNameChar(char c);

// "Basic LLM Chain" -> "basic-llm-chain": a valid native node name.
std::string Slug(const std::string& name, std::string_view fallback);

const json* Find(const json& object, const char* key);

std::string StringAt(const json& object, const char* key, const std::string& fallback = "");

// n8n "resource locator" values: "gpt-4o" or {"__rl": true, "value": "gpt-4o", "mode": "list"}.
std::string LocatorValue(const json* v);

// One step of an n8n data path: a key or an index.
struct Segment {
  std::string key;
  std::optional<size_t> index;
};

bool IsIdentChar(char c);

// Parses `.a.b[0]["c d"]` (all of `s`). False when it is anything else.
bool ParsePath(std::string_view s, std::vector<Segment>* out);

// Native reference path ("items[0].output"), or "" when a key cannot be written in one.
std::string NativePath(const std::vector<Segment>& path);

// Where an n8n expression takes its data from.
struct ExprSource {
  bool direct = false;  // $json / $input: the node's own input
  std::string node;     // $('Name') / $node["Name"]
  std::vector<Segment> path;
};

bool StartsWith(std::string_view s, std::string_view prefix);

// Recognises `$json.a`, `$input.item.json.a`, `$('Node').item.json.a`,
// `$('Node').first().json.a`, `$node["Node"].json.a`.
std::optional<ExprSource> ParseSource(std::string_view e);

std::string_view Trim(std::string_view s);

const json* Walk(const json& value, const std::vector<Segment>& path, size_t from);

// JSON text inside a parameter, parsed only when it nests no deeper than the loader allows
// (deeper values would make later recursive walks unsafe).
json ParseLimited(const std::string& s);

std::string AsText(const json& v);

// The fields an n8n Set node assigns, in order: name -> (value, path of the value).
struct SetField {
  std::string name;
  json value;
  std::string path;
};

// A way into a node: from an upstream task (or a trigger), through Set / IF / disabled
// nodes that add fields or a condition on the way.
struct Route {
  int task = -1;                  // n8n index of the upstream task; -1 from a trigger
  std::vector<SetField> fields;   // later fields win
  int cond = -1;                  // index into Translator::conds_
};

struct Cond {
  json value;         // {node, field, equals}
  std::string error;  // non-empty: this branch cannot be translated
  std::string path;   // where to report `error`
};

struct N8nNode {
  std::string path;  // "nodes[3]"
  std::string name;
  std::string type;
  Kind kind = Kind::kUnsupported;
  bool disabled = false;
  bool valid = false;
  json params = json::object();
  json credentials = json::object();
  std::string notes_task_type;  // taskType in the node's notes ({"taskType": "sft"}), if any
  std::string task;  // native node name, for tasks
  std::vector<std::pair<size_t, size_t>> inputs;                 // (source, output slot)
  std::vector<std::vector<std::pair<size_t, std::string>>> outs;  // per slot: (target, path)
  std::vector<std::pair<size_t, std::string>> models;            // ai_languageModel sources
  std::vector<Route> in_routes;
  std::vector<SetField> own_fields;  // Set nodes: after expression resolution
  int cond_true = -1, cond_false = -1;
};

}  // namespace flowmesh::spec::n8n_internal
