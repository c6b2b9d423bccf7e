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
#include "spec/internal/task_validator.h"
#include "spec/executor_options.h"
#include "spec/options.h"

namespace flowmesh::spec {

using nlohmann::json;

namespace {

using schema_internal::Schema;

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

  // A list of columns: each an expression, an upstream result (node + path) or inline data.
  const Schema* Columns() {
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
    return List(column, "a list of columns [{label, expr | node+path | data, default}]");
  }

  // Training data names its fields without a type (dataset_name, preferences, prompts…).
  Schema* UntypedData() {
    return Free(DataExtras({{"dataset_name", Str()},
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
  }

  // data_retrieval's sources (sql, s3) and lumid, whose params are columns.
  std::pair<Schema*, Schema*> RetrievalData(const Schema* columns) {
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
                                         {"num_test_queries", Int(1.0)},
                                         // ours (executors/data_retrieval.h): sqlite,
                                         // postgresql, http and file sources.
                                         {"path", Str()},
                                         {"url", Str()},
                                         {"headers", MapOf(Str(), "a mapping of strings")},
                                         {"format", Enum({"csv", "jsonl", "ndjson", "json"})},
                                         {"records_path", Str()},
                                         {"table", Str()},
                                         {"columns", List(Str(), "a list of column names")},
                                         {"filters", List(Any(), "a list of filters "
                                                                 "[{column, op, value}]")},
                                         {"limit", Int(1.0)},
                                         {"max_bytes", Int(1.0)},
                                         {"timeout_seconds", Positive()}}),
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
    return {retrieval, lumid};
  }

  const Schema* Data() {
    // data.items: strings, chat message lists, {node, path} references, or rows (any other
    // mapping: a collection's documents, an api task's bodies). A mapping with `node` (and
    // no `role`) is a reference, as the dispatcher reads it (dataflow::MaterializeData).
    Schema* ref = Obj({{"node", Str()}, {"path", Str()}});
    ref->required = {"node"};
    ref->match_key = "node";
    const Schema* row = MapOf(nullptr, "a row mapping");
    const Schema* scalar = New(Schema::Kind::kNumber, "a number");
    const Schema* item =
        OneOf({Str(), scalar, Bool(), ChatMessages(), ref, row},
              "a string, a chat message list, a {node, path} reference or a row mapping");
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
    const Schema* columns = Columns();
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
    Schema* data = New(Schema::Kind::kTagged, "a mapping");
    data->tag = "type";
    auto [retrieval, lumid] = RetrievalData(columns);
    Schema* untyped = UntypedData();
    data->variants = {{"list", list},
                      {"dataset", dataset},
                      {"graph_template", graph_template},
                      {"dataframe", dataframe},
                      {"sql", retrieval},
                      {"s3", retrieval},
                      {"sqlite", retrieval},
                      {"postgresql", retrieval},
                      {"postgres", retrieval},
                      {"http", retrieval},
                      {"https", retrieval},
                      {"file", retrieval},
                      {"lumid", lumid}};
    data->untagged = untyped;
    data->warn_unknown_tag = true;
    return data;
  }

  // An executor section declared in spec/executor_options.cc. Scalars are checked by the
  // declaration's own rule (CheckOption, as the executor checks them); enumerations, maps,
  // stage inputs and nested sections become schema nodes so that a problem inside them is
  // reported at its own path.
  Schema* Section(const OptionSection& declared) {
    Fields fields;
    for (const Option& o : declared.options) fields.push_back({std::string(o.name), FromOption(o)});
    Schema* s = declared.closed ? Obj(std::move(fields))
                                : Free(std::move(fields), std::string(declared.label));
    for (const auto& group : declared.exclusive) {
      s->exclusive.emplace_back(group.begin(), group.end());
    }
    s->rule = declared.rule;
    return s;
  }

  const Schema* FromOption(const Option& o) {
    switch (o.type) {
      case OptionType::kEnum:
        return Enum({o.values.begin(), o.values.end()});
      case OptionType::kStringMap:
        return MapOf(Str(), Describe(o));
      case OptionType::kScalarMap:
        return MapOf(Scalar(), Describe(o));
      case OptionType::kStageInputs:
        return StageInputs();
      case OptionType::kSection:
        return Section(*o.section);
      default: {
        Schema* field = New(Schema::Kind::kOption, Describe(o));
        field->option = &o;
        return field;
      }
    }
  }


  const Schema* StageInputs() {
    Schema* input = Obj({{"stage", Str()}, {"mountPath", Str()}});
    input->required = {"stage"};
    return List(OneOf({Str(), input}, "a stage name or {stage, mountPath}"),
                "a list of inputs [{stage, mountPath}]");
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
                {"inference", Section(InferenceSection())},
                {"api", Section(*FindSection("api"))},
                {"rag", Section(*FindSection("rag"))},
                {"collection", Section(*FindSection("collection"))},
                {"agent", Section(*FindSection("agent"))},
                {"task", Str()},
                {"training", Section(*FindSection("training"))},
                {"lora", Section(*FindSection("lora"))},
                {"checkpoint", Any()},
                {"reward_model", Any()},
                {"generation", section},
                {"omni", section},
                {"storyboard", section},
                {"ssh", Section(*FindSection("ssh"))},
                {"python", Section(*FindSection("python"))},
                {"serve", Section(*FindSection("serve"))},
                {"echo", Section(EchoSection())}});
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

// From the tables' `flat` options, in the order the published executors were added.
const std::vector<FlatSection>& FlatSections() {
  static const std::vector<FlatSection> kFlat = [] {
    std::vector<FlatSection> out;
    for (std::string_view name : {"ssh", "serve", "python", "rag"}) {
      FlatSection flat{std::string(name), std::string(name), {}};
      for (const Option& o : FindSection(name)->options) {
        if (o.flat) flat.keys.emplace_back(o.name);
      }
      out.push_back(std::move(flat));
    }
    return out;
  }();
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
  schema_internal::Validate(TaskSchema(), spec, "", issues);
}

}  // namespace flowmesh::spec
