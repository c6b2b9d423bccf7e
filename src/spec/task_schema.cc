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
#include "spec/options.h"

namespace flowmesh::spec {

using nlohmann::json;

namespace {

std::string Quote(const json& value) { return QuoteValue(value); }

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
      "",   "K",   "M",   "G",   "T",   "P",   "Ki", "Mi", "Gi", "Ti", "Pi", "k",
      "KB", "MB",  "GB",  "TB",  "PB",  "KiB", "MiB", "GiB", "TiB", "PiB"};
  return kUnits.count(std::string_view(s).substr(i)) > 0;
}

// A node of the schema tree. Built once by SchemaBuilder; never modified afterwards.
struct Schema {
  enum class Kind {
    kAny, kString, kInt, kNumber, kBool, kMemory, kObject, kList, kOneOf, kTagged, kOption
  };
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
  // Free-form sections of the published format: an unknown key is kept (the executor gets
  // it) and reported as a warning instead of an error.
  bool warn_unknown = false;
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
  const Schema* untagged = nullptr;  // checks an object without `tag` (else: missing tag)
  bool warn_unknown_tag = false;     // an unknown tag value is a warning, checked no further
  // kOption: an executor option declared in spec/options.cc, checked by its own rule
  const Option* option = nullptr;
  // kObject: a rule across the fields (min_tokens <= max_tokens), run after them
  std::optional<SectionProblem> (*rule)(const json&) = nullptr;
};

// Quoted scalars ("4", "0.5", "yes") are read as the published parser reads them:
// CoerceNumber and CoerceBool (spec/options.h), shared with the worker.

// "16GiB" -> "16Gi": one spelling of binary units for everything that reads the spec.
void NormaliseMemory(json* v) {
  if (!v->is_string()) return;
  std::string& s = v->get_ref<std::string&>();
  if (s.size() > 3 && s.compare(s.size() - 2, 2, "iB") == 0) s.pop_back();
}

class Validator {
 public:
  explicit Validator(std::vector<SchemaIssue>* out) : out_(out) {}

  void Check(const Schema& s, json& v, const std::string& rel) {
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
        CoerceNumber(&v, true);
        if (!IsInteger(v) || !InRange(s, AsDouble(v))) Bad(s, v, rel);
        return;
      case Schema::Kind::kNumber:
        CoerceNumber(&v, false);
        if (!v.is_number() || !std::isfinite(AsDouble(v)) || !InRange(s, AsDouble(v))) {
          Bad(s, v, rel);
        }
        return;
      case Schema::Kind::kBool:
        CoerceBool(&v);
        if (!v.is_boolean()) Bad(s, v, rel);
        return;
      case Schema::Kind::kMemory:
        if (!IsMemoryQuantity(v)) return Bad(s, v, rel);
        NormaliseMemory(&v);
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
      case Schema::Kind::kOption:
        if (auto problem = CheckOption(*s.option, &v, Name(rel))) {
          Issue(rel + problem->at, false, std::move(problem->message));
        }
        return;
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
      case Schema::Kind::kOption:
        return true;
    }
    return false;
  }

  void Bad(const Schema& s, const json& v, const std::string& rel) {
    Issue(rel, false, Name(rel) + " must be " + s.what + ", got " + Quote(v));
  }

  void Issue(const std::string& rel, bool at_key, std::string message) {
    out_->push_back(SchemaIssue{rel, at_key, std::move(message)});
  }

  void Warn(const std::string& rel, bool at_key, std::string message) {
    out_->push_back(SchemaIssue{rel, at_key, std::move(message), /*warning=*/true});
  }

  void CheckString(const Schema& s, const json& v, const std::string& rel) {
    if (!v.is_string()) return Bad(s, v, rel);
    if (s.values.empty()) return;
    const std::string& text = v.get_ref<const std::string&>();
    if (std::find(s.values.begin(), s.values.end(), text) != s.values.end()) return;
    if (s.warn_unknown) {
      return Warn(rel, false,
                  Name(rel) + " " + Quote(v) + " is not one of " + Join(s.values, ", ") +
                      DidYouMean(text, s.values) + "; passed to the executor as is");
    }
    Issue(rel, false,
          Name(rel) + " must be one of " + Join(s.values, ", ") + ", got " + Quote(v) +
              DidYouMean(text, s.values));
  }

  void CheckObject(const Schema& s, json& v, const std::string& rel) {
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
      } else if (s.warn_unknown) {
        std::vector<std::string> names;
        for (const auto& f : s.fields) names.push_back(f.first);
        Warn(child, true,
             "unknown key '" + key + "' in " + Name(rel) + s.label + DidYouMean(key, names) +
                 "; kept and passed to the executor as is");
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
    if (s.rule != nullptr) {
      if (auto problem = s.rule(v)) Issue(rel + "." + problem->key, false, problem->message);
    }
  }

  void CheckTagged(const Schema& s, json& v, const std::string& rel) {
    if (!v.is_object()) return Bad(s, v, rel);
    std::vector<std::string> tags;
    for (const auto& variant : s.variants) tags.push_back(variant.first);
    auto tag = v.find(s.tag);
    if (tag == v.end() || tag->is_null()) {
      if (s.untagged != nullptr) return CheckObject(*s.untagged, v, rel);
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
    if (s.warn_unknown_tag) {
      return Warn(tag_rel, false,
                  "unknown " + Name(tag_rel) + " " + Quote(*tag) + DidYouMean(value, tags) +
                      " (known: " + Join(tags, ", ") + "); passed to the executor unchecked");
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
  const Schema* StrOrStrings() {
    return OneOf({Str(), Strings()}, "a string or a list of strings");
  }
  // A string of which some values are known; another value is a warning, not an error.
  const Schema* SoftEnum(std::vector<std::string> values) {
    Schema* s = New(Schema::Kind::kString, "a string");
    s->values = std::move(values);
    s->warn_unknown = true;
    return s;
  }
  // A free-form section of the published format: known keys are type-checked, any other
  // key is kept and reported as a warning.
  Schema* Free(Fields fields, std::string label = "") {
    Schema* s = Obj(std::move(fields));
    s->warn_unknown = true;
    s->label = std::move(label);
    return s;
  }
  const Schema* Scalar() {
    return OneOf({Str(), Num(), Bool()}, "a string, number or boolean");
  }
  const Schema* ChatMessages() {
    Schema* message = Obj({{"role", Enum({"system", "user", "assistant", "tool"})},
                           {"content", Any()},
                           {"name", Str()}});
    message->required = {"role", "content"};
    return List(message, "a list of chat messages [{role, content}]");
  }

  const Schema* Resources() {
    Schema* gpu = Obj({{"type", Str()}, {"count", Int(0.0)}, {"memory", Memory("\"16Gi\"")}});
    Schema* hardware =
        Obj({{"cpu", Positive()},
             {"memory", Memory("\"16Gi\", \"16GiB\" or \"512Mi\" or a number of bytes")},
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
    // Without url the result goes to the server's own results endpoint (published default).
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
    Schema* source = Obj({{"type", SoftEnum({"huggingface", "local", "url"})},
                          {"identifier", Str()},
                          {"revision", Str()},
                          {"trust_remote_code", Bool()},
                          {"file", Str()},     // a .gguf file name or quantisation (Q4_K_M)
                          {"sha256", Str()}});  // url sources: expected digest
    source->required = {"identifier"};
    Schema* adapter = Obj({{"type", SoftEnum({"lora"})},
                           {"path", Str()},
                           {"url", Str()},
                           {"task_id", Str()},
                           {"name", Str()},
                           {"kwargs", MapOf(nullptr, "a mapping")}});
    adapter->one_required = {{"path", "url", "task_id"}};
    adapter->exclusive = {{"path", "url", "task_id"}};
    const Schema* engine = MapOf(nullptr, "a mapping of engine options");
    return Obj({{"source", source},
                {"config", engine},
                {"vllm", engine},
                {"transformers", engine},
                {"diffusers", engine},
                {"llamacpp", engine},
                {"adapters", List(adapter, "a list of adapters [{type: lora, path|url|task_id, name}]")}});
  }

  // Keys every data form may carry besides its own (published: data is a free mapping).
  Fields DataExtras(Fields own) {
    for (const char* key : {"metadata", "text", "image_embedding"}) own.push_back({key, Any()});
    return own;
  }

  const Schema* Data() {
    // data.items: strings, chat message lists or {node, path} references.
    Schema* ref = Obj({{"node", Str()}, {"path", Str()}});
    ref->required = {"node"};
    const Schema* scalar = New(Schema::Kind::kNumber, "a number");
    const Schema* item = OneOf({Str(), scalar, Bool(), ChatMessages(), ref},
                               "a string, a chat message list or a {node, path} reference");
    // A list is given inline (items) or as a list in an upstream result (node + path).
    Schema* list = Free(DataExtras({{"type", Any()},
                                    {"items", List(item, "a list")},
                                    {"node", Str()},
                                    {"path", Str()}}),
                        " (type list)");
    list->one_required = {{"items", "node"}};
    list->exclusive = {{"items", "node"}};
    // url + name: name is the Hugging Face configuration of the dataset at url.
    Schema* dataset = Free(DataExtras({{"type", Any()},
                                       {"url", Str()},
                                       {"name", Str()},
                                       {"config", Str()},
                                       {"revision", Str()},
                                       {"split", Str()},
                                       {"column", Str()},
                                       {"columns", Any()},
                                       {"shuffle", Bool()},
                                       {"seed", Int()},
                                       {"limit", Int(0.0)},
                                       {"max_samples", Int(0.0)},
                                       {"format", Str()},
                                       {"streaming", Bool()}}),
                           " (type dataset)");
    dataset->one_required = {{"url", "name"}};
    // A column's value: an expression, an upstream result (node + path) or inline data.
    Schema* column = Free({{"label", Str()},
                           {"expr", Str()},
                           {"node", Str()},
                           {"path", Str()},
                           {"value", Any()},
                           {"data", Any()},  // the published spelling of value
                           {"default", Any()},
                           {"broadcast", Bool()}});
    column->required = {"label"};
    column->one_required = {{"expr", "node", "value", "data", "default"}};
    column->exclusive = {{"expr", "node", "value", "data"}};
    const Schema* columns =
        List(column, "a list of columns [{label, expr | node+path | data, default}]");
    Schema* tmpl = Free({{"name", Str()},
                         {"text", Str()},
                         {"messages", ChatMessages()},
                         {"columns", columns},
                         {"options", MapOf(nullptr, "a mapping")}});
    tmpl->one_required = {{"name", "text", "messages"}};
    tmpl->exclusive = {{"name", "text", "messages"}};
    Schema* graph_template =
        Free(DataExtras({{"type", Any()}, {"template", tmpl}, {"columns", columns}}),
             " (type graph_template)");
    graph_template->required = {"template"};
    // columns: {name: [values]}, [{name, values}] or, as in the published format,
    // [{label, node, path}].
    Schema* frame_column = Free({{"label", Str()},
                                 {"name", Str()},
                                 {"values", Any()},
                                 {"expr", Str()},
                                 {"node", Str()},
                                 {"path", Str()},
                                 {"value", Any()},
                                 {"data", Any()},
                                 {"default", Any()}});
    frame_column->one_required = {{"label", "name"}};
    frame_column->exclusive = {{"label", "name"}};
    Schema* dataframe = Free(
        DataExtras({{"type", Any()},
                    {"columns", OneOf({MapOf(List(Any(), "a list"),
                                             "a mapping of column names to lists"),
                                       List(frame_column, "a list of columns")},
                                      "a mapping of column names to lists or a list of columns "
                                      "[{label, node, path}]")},
                    {"messages", ChatMessages()}}),
        " (type dataframe)");
    dataframe->required = {"columns"};
    // Training data names its fields without a type (dataset_name, preferences, prompts…).
    Schema* untyped = Free(DataExtras({{"dataset_name", Str()},
                                       {"dataset_config", Str()},
                                       {"dataset", Any()},
                                       {"url", Str()},
                                       {"name", Str()},
                                       {"path", Str()},
                                       {"split", Str()},
                                       {"eval_split", Str()},
                                       {"column", Str()},
                                       {"text_field", Str()},
                                       {"prompt_field", Str()},
                                       {"chosen_field", Str()},
                                       {"rejected_field", Str()},
                                       {"image_field", Str()},
                                       {"label_field", Str()},
                                       {"config_name", Str()},
                                       {"prompt_column", Str()},
                                       {"response_column", Str()},
                                       {"text_column", Str()},
                                       {"image_column", Str()},
                                       {"label_column", Str()},
                                       {"separator", Str()},
                                       {"max_eval_samples", Int(0.0)},
                                       {"prompts", Any()},
                                       {"preferences", Any()},
                                       {"items", Any()},
                                       {"max_samples", Int(0.0)},
                                       {"shuffle", Bool()},
                                       {"seed", Int()},
                                       {"format", Str()}}),
                           " (no type)");
    Schema* data = New(Schema::Kind::kTagged, "a mapping");
    data->tag = "type";
    // data_retrieval's sources: a query or object-key template filled from params columns.
    // data_profiling samples the template's parameters: constraints [{name, type, min, max}
    // or {name, candidates}] beside params, num_test_queries queries.
    Schema* retrieval = Free(DataExtras({{"type", Any()},
                                         {"connection_string", Str()},
                                         {"template", Str()},
                                         {"query", Str()},
                                         {"params", columns},
                                         {"encoding", Str()},
                                         {"cert_data", Str()},
                                         {"require_non_empty_rows", Bool()},
                                         {"constraints", List(Any(), "a list of constraints "
                                                                     "[{name, type, min, max}]")},
                                         {"num_test_queries", Int(1.0)}}),
                             " (data_retrieval source)");
    // type lumid: retrieval through lumid-data-app (mode sql, agent or s3); the executor
    // checks which keys each mode needs.
    Schema* lumid = Free(DataExtras({{"type", Any()},
                                     {"mode", Enum({"sql", "agent", "s3"})},
                                     {"lumid_data_url", Str()},
                                     {"lumid_data_token", Str()},
                                     {"template", Str()},
                                     {"description", Str()},
                                     {"schema_scope", Str()},
                                     {"max_steps", Int(1.0)},
                                     {"model", Str()},
                                     {"params", columns},
                                     {"output_format", Str()},
                                     {"encoding", Str()},
                                     {"verify", Bool()},
                                     {"require_non_empty_rows", Bool()}}),
                         " (lumid source)");
    data->variants = {{"list", list},
                      {"dataset", dataset},
                      {"graph_template", graph_template},
                      {"dataframe", dataframe},
                      {"sql", retrieval},
                      {"s3", retrieval},
                      {"lumid", lumid}};
    data->untagged = untyped;
    data->warn_unknown_tag = true;
    return data;
  }

  // Declared in spec/options.cc, with the worker's reading of the same values.
  const Schema* Inference() {
    Fields fields;
    for (const Option& option : InferenceOptions()) {
      Schema* field = New(Schema::Kind::kOption, Describe(option));
      field->option = &option;
      fields.push_back({std::string(option.name), field});
    }
    Schema* inference = Free(std::move(fields));
    inference->rule = &CheckInferenceSection;
    return inference;
  }

  const Schema* Api() {
    Schema* response = Free(
        {{"parse_json", Bool()}, {"return_body", Bool()}, {"raise_for_status", Bool()}});
    // Without url the published default endpoint applies (the executor's configuration).
    return Free({{"url", Str()},
                 {"method", Enum({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})},
                 {"headers", MapOf(Str(), "a mapping of header names to strings")},
                 {"body", Any()},
                 {"params", MapOf(nullptr, "a mapping")},
                 {"timeout", Positive()},
                 {"retries", Int(0.0)},
                 {"concurrency", Int(1.0)},
                 {"cache", Bool()},
                 {"response", response}});
  }

  const Schema* Rag() {
    Schema* rag =
        Free({{"embedding", Free({{"model", Str()}, {"dimension", Int(1.0)}, {"device", Str()}})},
              {"search", Free({{"top_k", Int(1.0)}, {"score_threshold", Num()}})},
              {"qdrant", Free({{"url", Str()},
                               {"host", Str()},
                               {"port", Int(1.0, 65535.0)},
                               {"collection", Str()},
                               {"api_key", Str()}})},
              {"index", Str()},
              {"collection", Str()},
              {"query", Str()}});
    rag->exclusive = {{"index", "collection"}};
    return rag;
  }

  const Schema* Agent() {
    const Schema* tools = List(Any(), "a list of tools");
    return Free({{"task", Str()},
                 {"tools", tools},
                 {"max_steps", Int(1.0)},
                 {"timeout", Positive()},
                 {"model", Any()},
                 {"agent", Free({{"tools", tools},
                                 {"max_steps", Int(1.0)},
                                 {"timeout", Positive()},
                                 {"type", Str()},
                                 {"model", Any()}})}});
  }

  const Schema* Training() {
    const Schema* count = Int(1.0);
    return Free({{"num_train_epochs", Positive()},
                 {"epochs", Positive()},
                 {"max_steps", Int(-1.0)},
                 {"batch_size", count},
                 {"per_device_train_batch_size", count},
                 {"per_device_eval_batch_size", count},
                 {"gradient_accumulation_steps", count},
                 {"learning_rate", Positive()},
                 {"lr_scheduler_type", Str()},
                 {"warmup_ratio", Num(0.0, 1.0)},
                 {"warmup_steps", Int(0.0)},
                 {"weight_decay", Num(0.0)},
                 {"max_seq_length", count},
                 {"max_length", count},
                 {"max_prompt_length", count},
                 {"logging_steps", count},
                 {"save_steps", count},
                 {"eval_steps", count},
                 {"save_strategy", Str()},
                 {"evaluation_strategy", Str()},
                 {"seed", Int()},
                 {"bf16", Bool()},
                 {"fp16", Bool()},
                 {"gradient_checkpointing", Bool()},
                 {"optim", Str()},
                 {"beta", Num()},
                 {"loss_type", Str()},
                 {"packing", Bool()},
                 {"output_dir", Str()},
                 {"save_model", Bool()},
                 {"save_freq", count},
                 {"save_total_limit", count},
                 {"steps", count},
                 {"padding_side", Str()},
                 {"early_stopping", Bool()},
                 {"project", Str()},
                 // ppo: log_with (null, a name or a list of names) becomes report_to,
                 // tracker_project_name becomes project
                 {"log_with", Any()},
                 {"tracker_project_name", Str()},
                 {"num_mini_batches", count},
                 {"save_only_model", Bool()},
                 {"save_safetensors", Bool()},
                 {"max_grad_norm", Num(0.0)},
                 {"resume_from_checkpoint", Any()},
                 {"report_to", Any()},
                 {"num_gpus", Int(0.0)},
                 // multi-GPU launch (torchrun) in the published sft/dpo/ppo executors;
                 // visible_devices is a comma-separated list of GPU ids ("0,1")
                 {"allow_multi_gpu", Bool()},
                 {"visible_devices", OneOf({Str(), Int(0.0)}, "GPU ids, \"0,1\"")},
                 {"nproc_per_node", count},
                 {"auto_deepspeed_stage", Int(0.0, 3.0)},
                 {"deepspeed", Any()},
                 {"image_size", Any()},
                 {"num_labels", count},
                 // ppo
                 {"ppo_epochs", count},
                 {"mini_batch_size", count},
                 {"init_kl_coef", Num()},
                 {"target_kl", Num()},
                 {"total_episodes", count},
                 {"response_length", count},
                 {"kl_coef", Num()}});
  }

  const Schema* Lora() {
    return Free({{"r", Int(1.0)},
                 {"alpha", Positive()},
                 {"lora_alpha", Positive()},
                 {"dropout", Num(0.0, 1.0)},
                 {"lora_dropout", Num(0.0, 1.0)},
                 {"bias", Str()},
                 {"task_type", Str()},
                 {"use_rslora", Bool()},
                 {"target_modules", StrOrStrings()}});
  }

  const Schema* AccessMode() { return Enum({"direct", "proxy", "forward"}); }

  const Schema* StageInputs() {
    Schema* input = Obj({{"stage", Str()}, {"mountPath", Str()}});
    input->required = {"stage"};
    return List(OneOf({Str(), input}, "a stage name or {stage, mountPath}"),
                "a list of inputs [{stage, mountPath}]");
  }
  const Schema* Env() {
    return MapOf(Scalar(), "a mapping of variable names to strings");
  }

  const Schema* Ssh() {
    return Obj({{"interactive", Bool()},
                {"image", Str()},
                {"authorizedKeys", Strings()},
                {"user", Str()},
                {"command", StrOrStrings()},
                {"entrypoint", StrOrStrings()},
                {"ttlSeconds", Positive()},
                {"idleTimeoutSeconds", Positive()},
                {"accessMode", AccessMode()},
                {"inputs", StageInputs()},
                {"sshOutput", Obj({{"mountPath", Str()}, {"maxBytes", Int(1.0)}})},
                {"env", Env()}});
  }

  const Schema* Python() {
    return Obj({{"code", Str()},
                {"entrypoint", Str()},
                {"image", Str()},
                {"requirements", Strings()},
                {"inputs", StageInputs()},
                {"timeoutSeconds", Positive()},
                {"network", Enum({"none", "bridge"})},
                {"env", Env()},
                {"emits", Strings()},
                {"pythonOutput", Obj({{"maxBytes", Int(1.0)}})}});
  }

  const Schema* Serve() {
    return Obj({{"ttlSeconds", Positive()},
                {"idleTimeoutSeconds", Positive()},
                {"readinessTimeoutSeconds", Positive()},
                {"accessMode", AccessMode()},
                {"port", Int(1.0, 65535.0)},
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
    const Schema* section = MapOf(nullptr, "a mapping");
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
                {"sloSeconds", Int(0.0)},
                {"parallel", Obj({{"enabled", Bool()}, {"max_shards", Int(1.0)}})},
                {"enforce_cpu", Bool()},
                {"configName", Str()},
                {"postprocess", Free({{"jsonl_export", Any()}})},
                {"shard", Any()},  // set by the published server when it splits a task
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
                {"generation", section},
                {"omni", section},
                {"storyboard", section},
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

// Executor fields the published format writes at the top of a task spec; ours live in a
// section named after the task type. Both spellings are read; the task spec is normalised
// to the section so that executors read one place.
struct FlatSection {
  std::string task_type;
  std::string section;
  std::vector<std::string> keys;
};

const std::vector<FlatSection>& FlatSections() {
  static const std::vector<FlatSection> kFlat = {
      {"ssh", "ssh",
       {"interactive", "image", "user", "authorizedKeys", "command", "entrypoint", "ttlSeconds",
        "idleTimeoutSeconds", "accessMode", "inputs", "sshOutput", "env"}},
      {"serve", "serve",
       {"ttlSeconds", "idleTimeoutSeconds", "readinessTimeoutSeconds", "accessMode", "port", "apiKey"}},
      {"python", "python",
       {"code", "entrypoint", "image", "requirements", "inputs", "network", "env", "emits",
        "pythonOutput"}},
      {"rag", "rag", {"qdrant", "embedding", "search", "query"}},
  };
  return kFlat;
}

// Keys of the task spec itself (never moved into a section).
bool IsTaskField(const std::string& key) {
  const Schema& root = TaskSchema();
  return std::any_of(root.fields.begin(), root.fields.end(),
                     [&](const auto& field) { return field.first == key; });
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

void NormaliseTaskSpec(json* spec, std::vector<SchemaIssue>* issues) {
  if (!spec->is_object()) return;
  auto type_it = spec->find("taskType");
  std::string type = type_it != spec->end() && type_it->is_string() ? type_it->get<std::string>()
                                                                     : std::string();
  for (const FlatSection& flat : FlatSections()) {
    if (flat.task_type != type) continue;
    json moved = json::object();
    for (const std::string& key : flat.keys) {
      auto it = spec->find(key);
      if (it == spec->end()) continue;
      moved[key] = std::move(*it);
      spec->erase(it);
    }
    if (moved.empty()) break;
    json& section = (*spec)[flat.section];
    if (section.is_null()) section = json::object();
    if (!section.is_object()) break;  // the schema reports the section's type
    for (auto it = moved.begin(); it != moved.end(); ++it) {
      const std::string& key = it.key();
      if (section.contains(key)) {
        issues->push_back(SchemaIssue{"." + key, true,
                                      "'" + key + "' is given both as spec." + key +
                                          " and as spec." + flat.section + "." + key +
                                          "; keep one"});
        continue;
      }
      section[key] = std::move(*it);
    }
    break;
  }
  // A flat key of another task type: say whose it is rather than only "unknown key".
  for (const FlatSection& flat : FlatSections()) {
    for (const std::string& key : flat.keys) {
      if (!spec->contains(key) || IsTaskField(key)) continue;
      std::vector<std::string> owners;
      for (const FlatSection& other : FlatSections()) {
        if (std::find(other.keys.begin(), other.keys.end(), key) != other.keys.end()) {
          owners.push_back(other.task_type);
        }
      }
      issues->push_back(SchemaIssue{
          "." + key, true,
          "'" + key + "' is a field of taskType " + Join(owners, " or ") + ", not of " +
              (type.empty() ? std::string("this task") : "'" + type + "'")});
      spec->erase(key);
    }
  }
}

void ValidateTaskFields(json* spec, std::vector<SchemaIssue>* issues) {
  NormaliseTaskSpec(spec, issues);
  Validator(issues).Check(TaskSchema(), *spec, "");
}

}  // namespace flowmesh::spec
