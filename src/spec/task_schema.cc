#include "spec/task_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "spec/diagnostics.h"

namespace flowmesh::spec {

using nlohmann::json;

namespace {

std::string Quote(const json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  if (text.size() > 64) text = text.substr(0, 61) + "...";
  return "'" + text + "'";
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

std::string FormatNumber(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", d);
  return buf;
}

bool IsInteger(const json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

double AsDouble(const json& v) {
  if (v.is_number_unsigned()) return static_cast<double>(v.get<uint64_t>());
  if (v.is_number_integer()) return static_cast<double>(v.get<int64_t>());
  return v.get<double>();
}

// "16Gi", "512Mi", "1.5G", "1024" (bytes), or a positive number of bytes.
bool IsMemoryQuantity(const json& v) {
  if (v.is_number()) return std::isfinite(AsDouble(v)) && AsDouble(v) > 0;
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  size_t i = 0, digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  static const std::set<std::string, std::less<>> kUnits = {
      "", "K", "M", "G", "T", "P", "Ki", "Mi", "Gi", "Ti", "Pi", "k", "KB", "MB", "GB", "TB"};
  return kUnits.count(std::string_view(s).substr(i)) > 0;
}

// A node of the schema tree. Built once by SchemaBuilder; never modified afterwards.
struct Schema {
  enum class Kind { kAny, kString, kInt, kNumber, kBool, kMemory, kObject, kList, kOneOf, kTagged };
  Kind kind = Kind::kAny;
  std::string what;  // "an integer >= 1": the end of "X must be …"
  // kInt / kNumber
  std::optional<double> min, max;
  bool min_exclusive = false;
  // kString: allowed values ("" = any string)
  std::vector<std::string> values;
  // kObject: known keys; `open` accepts any other key (checked against `rest` if set)
  std::vector<std::pair<std::string, const Schema*>> fields;
  bool open = false;
  const Schema* rest = nullptr;
  std::vector<std::string> required;
  std::vector<std::vector<std::string>> one_required;  // at least one of each group
  std::vector<std::vector<std::string>> exclusive;     // at most one of each group
  std::string label;                                   // "(type local)" in unknown-key messages
  // kList
  const Schema* item = nullptr;
  // kOneOf: the first option whose JSON type matches validates the value
  std::vector<const Schema*> options;
  // kTagged: an object whose `tag` field picks the object schema of the rest
  std::string tag;
  std::vector<std::pair<std::string, const Schema*>> variants;
};

class Validator {
 public:
  explicit Validator(std::vector<SchemaIssue>* out) : out_(out) {}

  void Check(const Schema& s, const json& v, const std::string& rel) {
    if (v.is_null()) return;  // an empty value is the same as an absent one
    if (v.is_string() && s.kind != Schema::Kind::kString && s.kind != Schema::Kind::kAny &&
        IsWholeReference(v.get_ref<const std::string&>())) {
      return;  // `${node.path}` keeps the JSON type of what it names; checked at dispatch
    }
    switch (s.kind) {
      case Schema::Kind::kAny:
        return;
      case Schema::Kind::kString:
        return CheckString(s, v, rel);
      case Schema::Kind::kInt:
        if (!IsInteger(v) || !InRange(s, AsDouble(v))) Bad(s, v, rel);
        return;
      case Schema::Kind::kNumber:
        if (!v.is_number() || !std::isfinite(AsDouble(v)) || !InRange(s, AsDouble(v))) {
          Bad(s, v, rel);
        }
        return;
      case Schema::Kind::kBool:
        if (!v.is_boolean()) Bad(s, v, rel);
        return;
      case Schema::Kind::kMemory:
        if (!IsMemoryQuantity(v)) Bad(s, v, rel);
        return;
      case Schema::Kind::kObject:
        if (!v.is_object()) return Bad(s, v, rel);
        return CheckObject(s, v, rel);
      case Schema::Kind::kList:
        if (!v.is_array()) return Bad(s, v, rel);
        for (size_t i = 0; i < v.size(); ++i) Check(*s.item, v[i], JoinIndex(rel, i));
        return;
      case Schema::Kind::kOneOf:
        for (const Schema* option : s.options) {
          if (TypeMatches(*option, v)) return Check(*option, v, rel);
        }
        return Bad(s, v, rel);
      case Schema::Kind::kTagged:
        return CheckTagged(s, v, rel);
    }
  }

 private:
  static std::string Name(const std::string& rel) {
    return rel.empty() ? "the task spec" : rel.substr(1);
  }

  static bool InRange(const Schema& s, double d) {
    if (s.min && (s.min_exclusive ? d <= *s.min : d < *s.min)) return false;
    if (s.max && d > *s.max) return false;
    return true;
  }

  static bool TypeMatches(const Schema& s, const json& v) {
    switch (s.kind) {
      case Schema::Kind::kAny:
        return true;
      case Schema::Kind::kString:
        return v.is_string();
      case Schema::Kind::kInt:
        return IsInteger(v);
      case Schema::Kind::kNumber:
        return v.is_number();
      case Schema::Kind::kBool:
        return v.is_boolean();
      case Schema::Kind::kMemory:
        return v.is_string() || v.is_number();
      case Schema::Kind::kObject:
      case Schema::Kind::kTagged:
        return v.is_object();
      case Schema::Kind::kList:
        return v.is_array();
      case Schema::Kind::kOneOf:
        return std::any_of(s.options.begin(), s.options.end(),
                           [&](const Schema* o) { return TypeMatches(*o, v); });
    }
    return false;
  }

  void Bad(const Schema& s, const json& v, const std::string& rel) {
    Issue(rel, false, Name(rel) + " must be " + s.what + ", got " + Quote(v));
  }

  void Issue(const std::string& rel, bool at_key, std::string message) {
    out_->push_back(SchemaIssue{rel, at_key, std::move(message)});
  }

  void CheckString(const Schema& s, const json& v, const std::string& rel) {
    if (!v.is_string()) return Bad(s, v, rel);
    if (s.values.empty()) return;
    const std::string& text = v.get_ref<const std::string&>();
    if (std::find(s.values.begin(), s.values.end(), text) != s.values.end()) return;
    Issue(rel, false,
          Name(rel) + " must be one of " + Join(s.values, ", ") + ", got " + Quote(v) +
              DidYouMean(text, s.values));
  }

  void CheckObject(const Schema& s, const json& v, const std::string& rel) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& key = it.key();
      std::string child = rel + "." + key;
      const Schema* field = nullptr;
      for (const auto& [name, schema] : s.fields) {
        if (name == key) {
          field = schema;
          break;
        }
      }
      if (field != nullptr) {
        Check(*field, *it, child);
      } else if (s.open) {
        if (s.rest != nullptr) Check(*s.rest, *it, child);
      } else {
        std::vector<std::string> names;
        for (const auto& f : s.fields) names.push_back(f.first);
        Issue(child, true,
              "unknown key '" + key + "' in " + Name(rel) + s.label + DidYouMean(key, names) +
                  "; allowed: " + Join(names, ", "));
      }
    }
    auto present = [&](const std::string& key) {
      auto it = v.find(key);
      return it != v.end() && !it->is_null();
    };
    for (const std::string& key : s.required) {
      if (!present(key)) Issue(rel, false, "missing " + JoinKey(Name(rel), key) + s.label);
    }
    for (const auto& group : s.one_required) {
      if (std::none_of(group.begin(), group.end(), present)) {
        std::vector<std::string> names;
        for (const std::string& key : group) names.push_back(JoinKey(Name(rel), key));
        Issue(rel, false, "missing " + Join(names, " or ") + s.label);
      }
    }
    for (const auto& group : s.exclusive) {
      std::vector<std::string> set;
      for (const std::string& key : group) {
        if (present(key)) set.push_back(key);
      }
      if (set.size() > 1) {
        Issue(rel, false, Name(rel) + " may hold only one of " + Join(group, ", ") + ", got " +
                              Join(set, " and "));
      }
    }
  }

  void CheckTagged(const Schema& s, const json& v, const std::string& rel) {
    if (!v.is_object()) return Bad(s, v, rel);
    std::vector<std::string> tags;
    for (const auto& variant : s.variants) tags.push_back(variant.first);
    auto tag = v.find(s.tag);
    if (tag == v.end() || tag->is_null()) {
      return Issue(rel, false,
                   "missing " + JoinKey(Name(rel), s.tag) + " (one of " + Join(tags, ", ") + ")");
    }
    std::string tag_rel = rel + "." + s.tag;
    if (!tag->is_string()) {
      return Issue(tag_rel, false,
                   Name(tag_rel) + " must be one of " + Join(tags, ", ") + ", got " + Quote(*tag));
    }
    const std::string& value = tag->get_ref<const std::string&>();
    for (const auto& [name, schema] : s.variants) {
      if (name == value) return CheckObject(*schema, v, rel);
    }
    Issue(tag_rel, false,
          Name(tag_rel) + " must be one of " + Join(tags, ", ") + ", got " + Quote(*tag) +
              DidYouMean(value, tags));
  }

  std::vector<SchemaIssue>* out_;
};

// Owns every Schema node; builds the task-spec tree once.
class SchemaBuilder {
 public:
  const Schema* root() const { return root_; }

  SchemaBuilder() { root_ = Build(); }

 private:
  using Fields = std::vector<std::pair<std::string, const Schema*>>;

  Schema* New(Schema::Kind kind, std::string what) {
    Schema& s = nodes_.emplace_back();
    s.kind = kind;
    s.what = std::move(what);
    return &s;
  }
  const Schema* Any() { return New(Schema::Kind::kAny, "anything"); }
  const Schema* Str() { return New(Schema::Kind::kString, "a string"); }
  const Schema* Enum(std::vector<std::string> values) {
    Schema* s = New(Schema::Kind::kString, "one of " + Join(values, ", "));
    s->values = std::move(values);
    return s;
  }
  const Schema* Bool() { return New(Schema::Kind::kBool, "true or false"); }
  const Schema* Int(std::optional<double> min = std::nullopt,
                    std::optional<double> max = std::nullopt) {
    std::string what = "an integer";
    if (min && max) {
      what += " from " + FormatNumber(*min) + " to " + FormatNumber(*max);
    } else if (min) {
      what += " >= " + FormatNumber(*min);
    }
    Schema* s = New(Schema::Kind::kInt, what);
    s->min = min;
    s->max = max;
    return s;
  }
  const Schema* Num(std::optional<double> min = std::nullopt,
                    std::optional<double> max = std::nullopt, bool exclusive = false) {
    std::string what = "a number";
    if (min && max) {
      what += " from " + FormatNumber(*min) + " to " + FormatNumber(*max);
    } else if (min && exclusive) {
      what += " greater than " + FormatNumber(*min);
    } else if (min) {
      what += " >= " + FormatNumber(*min);
    }
    Schema* s = New(Schema::Kind::kNumber, what);
    s->min = min;
    s->max = max;
    s->min_exclusive = exclusive;
    return s;
  }
  const Schema* Positive() { return Num(0.0, std::nullopt, true); }
  const Schema* List(const Schema* item, std::string what) {
    Schema* s = New(Schema::Kind::kList, std::move(what));
    s->item = item;
    return s;
  }
  Schema* Obj(Fields fields) {
    Schema* s = New(Schema::Kind::kObject, "a mapping");
    s->fields = std::move(fields);
    return s;
  }
  // A mapping with any keys whose values match `value` (or anything when null).
  const Schema* MapOf(const Schema* value, std::string what) {
    Schema* s = New(Schema::Kind::kObject, std::move(what));
    s->open = true;
    s->rest = value;
    return s;
  }
  // A mapping that accepts any key, still type-checking the ones it knows.
  Schema* Open(Fields fields) {
    Schema* s = Obj(std::move(fields));
    s->open = true;
    return s;
  }
  const Schema* OneOf(std::vector<const Schema*> options, std::string what) {
    Schema* s = New(Schema::Kind::kOneOf, std::move(what));
    s->options = std::move(options);
    return s;
  }
  const Schema* Tagged(std::string tag, Fields variants) {
    Schema* s = New(Schema::Kind::kTagged, "a mapping");
    s->tag = std::move(tag);
    s->variants = std::move(variants);
    return s;
  }

  const Schema* Strings() { return List(Str(), "a list of strings"); }
  const Schema* ChatMessages() {
    Schema* message = Obj({{"role", Enum({"system", "user", "assistant", "tool"})},
                           {"content", Any()},
                           {"name", Str()}});
    message->required = {"role", "content"};
    return List(message, "a list of chat messages [{role, content}]");
  }

  const Schema* Resources() {
    Schema* gpu = Obj({{"type", Str()}, {"count", Int(0.0)}, {"memory", Memory("\"16Gi\"")}});
    Schema* hardware = Obj({{"cpu", Positive()},
                            {"memory", Memory("\"16Gi\" or \"512Mi\" or a number of bytes")},
                            {"gpu", gpu}});
    return Obj(
        {{"replicas", Int(1.0)}, {"estimatedLoad", Num(0.0)}, {"hardware", hardware}});
  }
  const Schema* Memory(const std::string& example) {
    return New(Schema::Kind::kMemory, "a size like " + example);
  }

  const Schema* Output() {
    Schema* local = Obj({{"type", Any()}});
    local->label = " (type local)";
    Schema* http = Obj({{"type", Any()},
                        {"url", Str()},
                        {"method", Enum({"GET", "POST", "PUT", "PATCH"})},
                        {"headers", MapOf(Str(), "a mapping of header names to strings")},
                        {"timeoutSec", Positive()}});
    http->label = " (type http)";
    return Obj({{"destination", Tagged("type", {{"local", local}, {"http", http}})},
                {"artifacts", Strings()}});
  }

  const Schema* Model() {
    Schema* source = Obj({{"type", Enum({"huggingface", "local", "url"})},
                          {"identifier", Str()},
                          {"revision", Str()},
                          {"file", Str()},     // a .gguf file name or quantisation (Q4_K_M)
                          {"sha256", Str()}});  // url sources: expected digest
    source->required = {"identifier"};
    Schema* adapter = Obj({{"type", Enum({"lora"})},
                           {"path", Str()},
                           {"url", Str()},
                           {"task_id", Str()},
                           {"name", Str()}});
    adapter->one_required = {{"path", "url", "task_id"}};
    adapter->exclusive = {{"path", "url", "task_id"}};
    const Schema* engine = MapOf(nullptr, "a mapping of engine options");
    return Obj({{"source", source},
                {"vllm", engine},
                {"transformers", engine},
                {"llamacpp", engine},
                {"adapters", List(adapter, "a list of adapters [{type: lora, path|url|task_id, name}]")}});
  }

  const Schema* Data() {
    // data.items: strings, chat message lists or {node, path} references.
    Schema* ref = Obj({{"node", Str()}, {"path", Str()}});
    ref->required = {"node"};
    const Schema* scalar = New(Schema::Kind::kNumber, "a number");
    const Schema* item = OneOf({Str(), scalar, Bool(), ChatMessages(), ref},
                               "a string, a chat message list or a {node, path} reference");
    Schema* list = Obj({{"type", Any()}, {"items", List(item, "a list")}});
    list->required = {"items"};
    list->label = " (type list)";
    Schema* dataset = Obj({{"type", Any()},
                           {"url", Str()},
                           {"name", Str()},
                           {"split", Str()},
                           {"column", Str()},
                           {"shuffle", Bool()},
                           {"seed", Int()}});
    dataset->one_required = {{"url", "name"}};
    dataset->exclusive = {{"url", "name"}};
    dataset->label = " (type dataset)";
    Schema* column = Obj({{"label", Str()},
                          {"expr", Str()},
                          {"node", Str()},
                          {"path", Str()},
                          {"default", Any()}});
    column->required = {"label"};
    column->one_required = {{"expr", "node"}};
    column->exclusive = {{"expr", "node"}};
    Schema* tmpl = Obj({{"name", Str()},
                        {"text", Str()},
                        {"messages", ChatMessages()},
                        {"columns", List(column, "a list of columns [{label, expr | node+path, default}]")},
                        {"options", MapOf(nullptr, "a mapping")}});
    tmpl->one_required = {{"name", "text", "messages"}};
    tmpl->exclusive = {{"name", "text", "messages"}};
    Schema* graph_template = Obj({{"type", Any()}, {"template", tmpl}});
    graph_template->required = {"template"};
    graph_template->label = " (type graph_template)";
    Schema* dataframe =
        Obj({{"type", Any()},
             {"columns", MapOf(List(Any(), "a list"), "a mapping of column names to lists")},
             {"messages", ChatMessages()}});
    dataframe->required = {"columns"};
    dataframe->label = " (type dataframe)";
    return Tagged("type", {{"list", list},
                           {"dataset", dataset},
                           {"graph_template", graph_template},
                           {"dataframe", dataframe}});
  }

  const Schema* Inference() {
    return Obj({{"max_tokens", Int(1.0)},
                {"min_tokens", Int(0.0)},
                {"temperature", Num(0.0, 2.0)},
                {"top_p", Num(0.0, 1.0)},
                {"top_k", Int(0.0)},
                {"min_p", Num(0.0, 1.0)},
                {"seed", Int()},
                {"n", Int(1.0)},
                {"repetition_penalty", Positive()},
                {"presence_penalty", Num(-2.0, 2.0)},
                {"frequency_penalty", Num(-2.0, 2.0)},
                {"stop", OneOf({Str(), Strings()}, "a string or a list of strings")},
                {"stop_token_ids", List(Int(), "a list of integers")},
                {"system_prompt", Str()},
                {"logprobs", OneOf({Bool(), Int(0.0)}, "true, false or an integer >= 0")},
                {"stream", Bool()}});  // generated text as task log lines (default true)
  }

  const Schema* Api() {
    Schema* response =
        Obj({{"parse_json", Bool()}, {"return_body", Bool()}, {"raise_for_status", Bool()}});
    Schema* api =
        Obj({{"url", Str()},
             {"method", Enum({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})},
             {"headers", MapOf(Str(), "a mapping of header names to strings")},
             {"body", Any()},
             {"retries", Int(0.0)},
             {"concurrency", Int(1.0)},
             {"cache", Bool()},
             {"response", response}});
    api->required = {"url"};
    return api;
  }

  const Schema* Rag() {
    Schema* rag = Obj({{"embedding", Obj({{"model", Str()}})},
                       {"search", Obj({{"top_k", Int(1.0)}})},
                       {"index", Str()},
                       {"collection", Str()},
                       {"query", Str()}});
    rag->exclusive = {{"index", "collection"}};
    return rag;
  }

  const Schema* Agent() {
    const Schema* tools = List(Any(), "a list of tools");
    return Obj({{"task", Str()},
                {"tools", tools},
                {"max_steps", Int(1.0)},
                {"agent", Obj({{"tools", tools}, {"max_steps", Int(1.0)}})}});
  }

  const Schema* Training() {
    return Open({{"num_train_epochs", Positive()},
                 {"batch_size", Int(1.0)},
                 {"gradient_accumulation_steps", Int(1.0)},
                 {"learning_rate", Positive()},
                 {"max_seq_length", Int(1.0)}});
  }

  const Schema* Lora() {
    return Obj({{"r", Int(1.0)},
                {"alpha", Positive()},
                {"dropout", Num(0.0, 1.0)},
                {"target_modules", OneOf({Str(), Strings()}, "a string or a list of strings")}});
  }

  const Schema* AccessMode() { return Enum({"direct", "proxy", "forward"}); }

  const Schema* Ssh() {
    Schema* input = Obj({{"stage", Str()}, {"mountPath", Str()}});
    input->required = {"stage"};
    return Obj({{"authorizedKeys", Strings()},
                {"user", Str()},
                {"command", OneOf({Str(), Strings()}, "a string or a list of strings")},
                {"ttlSeconds", Positive()},
                {"idleTimeoutSeconds", Positive()},
                {"accessMode", AccessMode()},
                {"inputs", List(input, "a list of inputs [{stage, mountPath}]")},
                {"env", MapOf(Str(), "a mapping of variable names to strings")}});
  }

  const Schema* Python() {
    Schema* input = Obj({{"stage", Str()}, {"mountPath", Str()}});
    input->required = {"stage"};
    return Obj({{"code", Str()},
                {"entrypoint", Str()},
                {"inputs", List(OneOf({Str(), input}, "a stage name or {stage, mountPath}"),
                                "a list of inputs")},
                {"timeoutSeconds", Positive()},
                {"network", Enum({"none", "bridge"})}});
  }

  const Schema* Serve() {
    return Obj({{"ttlSeconds", Positive()},
                {"readinessTimeoutSeconds", Positive()},
                {"accessMode", AccessMode()},
                {"apiKey", Str()}});
  }

  const Schema* Echo() {
    return Obj({{"message", Any()},
                {"sleep_seconds", Num(0.0)},
                {"fail", Str()},
                {"fail_attempts", Int(0.0)}});
  }

  const Schema* Build() {
    const Schema* attempts = Int(1.0, 100.0);
    Schema* condition = Obj({{"node", Str()}, {"field", Str()}, {"equals", Any()}});
    condition->required = {"node"};
    return Obj({{"taskType", Any()},  // checked by the parser (known types, suggestion)
                {"dependsOn", Any()},
                {"condition", condition},
                {"max_attempts", attempts},
                {"maxAttempts", attempts},
                {"timeoutSeconds", Positive()},
                {"cache", Enum({"auto", "never", "always"})},
                {"priority", Int(-1000.0, 1000.0)},
                {"resources", Resources()},
                {"output", Output()},
                {"model", Model()},
                {"data", Data()},
                {"inference", Inference()},
                {"api", Api()},
                {"rag", Rag()},
                {"agent", Agent()},
                {"task", Str()},
                {"training", Training()},
                {"lora", Lora()},
                {"checkpoint", Any()},
                {"reward_model", Any()},
                {"ssh", Ssh()},
                {"python", Python()},
                {"serve", Serve()},
                {"echo", Echo()}});
  }

  std::deque<Schema> nodes_;
  const Schema* root_ = nullptr;
};

const Schema& TaskSchema() {
  static const SchemaBuilder* builder = new SchemaBuilder();
  return *builder->root();
}

bool IsRefNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

}  // namespace

bool IsWholeReference(const std::string& s) {
  if (s.size() < 6 || s.compare(0, 2, "${") != 0 || s.back() != '}') return false;
  size_t close = s.find('}');
  if (close != s.size() - 1) return false;
  size_t dot = s.find('.');
  if (dot == std::string::npos || dot == 2 || dot + 1 >= close) return false;
  return std::all_of(s.begin() + 2, s.begin() + static_cast<std::ptrdiff_t>(dot), IsRefNameChar);
}

void ValidateTaskFields(const json& spec, std::vector<SchemaIssue>* issues) {
  Validator(issues).Check(TaskSchema(), spec, "");
}

}  // namespace flowmesh::spec
