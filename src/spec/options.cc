#include "spec/options.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "spec/task_schema.h"

namespace flowmesh::spec {

using nlohmann::json;

namespace {

std::string JoinViews(const std::vector<std::string_view>& items, std::string_view sep);

std::string FormatNumber(double d) {
  char buf[32];
  if (d == std::floor(d) && std::fabs(d) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", d);
  } else {
    std::snprintf(buf, sizeof buf, "%g", d);
  }
  return buf;
}

std::string RangeText(const Option& o) {
  if (o.min && o.max && o.min_exclusive) {
    return " greater than " + FormatNumber(*o.min) + " and at most " + FormatNumber(*o.max);
  }
  if (o.min && o.max) return " from " + FormatNumber(*o.min) + " to " + FormatNumber(*o.max);
  if (o.min && o.min_exclusive) return " greater than " + FormatNumber(*o.min);
  if (o.min) return " >= " + FormatNumber(*o.min);
  if (o.max) return " <= " + FormatNumber(*o.max);
  return "";
}

bool IsInteger(const json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

double AsDouble(const json& v) {
  if (v.is_number_unsigned()) return static_cast<double>(v.get<uint64_t>());
  if (v.is_number_integer()) return static_cast<double>(v.get<int64_t>());
  return v.get<double>();
}

bool InRange(const Option& o, double d) {
  if (!std::isfinite(d)) return false;
  if (o.min && (o.min_exclusive ? d <= *o.min : d < *o.min)) return false;
  return !(o.max && d > *o.max);
}

bool IntOk(const Option& o, json* v) {
  CoerceNumber(v, true);
  return IsInteger(*v) && InRange(o, AsDouble(*v));
}

bool Accepts(const Option& o, json* v) {
  switch (o.type) {
    case OptionType::kInt:
      return IntOk(o, v);
    case OptionType::kNumber:
      CoerceNumber(v, false);
      return v->is_number() && InRange(o, AsDouble(*v));
    case OptionType::kBool:
      CoerceBool(v);
      return v->is_boolean();
    case OptionType::kString:
      return v->is_string();
    case OptionType::kStringOrList:
      if (v->is_string()) return true;
      [[fallthrough]];
    case OptionType::kStringList:
      return v->is_array() &&
             std::all_of(v->begin(), v->end(), [](const json& s) { return s.is_string(); });
    case OptionType::kIntList:
      return false;  // CheckOption checks the items
    case OptionType::kBoolOrInt:
      return v->is_boolean() || IntOk(o, v);
    case OptionType::kMapping:
      return v->is_object();
    case OptionType::kAny:
      return true;
    case OptionType::kList:
    case OptionType::kStageInputs:
      return v->is_array();
    case OptionType::kStringOrInt:
      return v->is_string() || IntOk(o, v);
    case OptionType::kEnum:
      return v->is_string() &&
             std::find(o.values.begin(), o.values.end(), v->get<std::string>()) != o.values.end();
    case OptionType::kStringMap:
    case OptionType::kScalarMap:
      return v->is_object() && std::all_of(v->begin(), v->end(), [&](const json& e) {
               return e.is_string() || (o.type == OptionType::kScalarMap &&
                                        (e.is_number() || e.is_boolean()));
             });
    case OptionType::kSection:
      return v->is_object();
  }
  return false;
}

std::string JoinViews(const std::vector<std::string_view>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

json JsonSchemaType(std::string_view type) { return json{{"type", type}}; }

// 1, not 1.0, for an integral bound.
nlohmann::ordered_json SchemaNumber(double d) {
  if (d == std::floor(d) && std::fabs(d) < 1e15) return static_cast<int64_t>(d);
  return d;
}

}  // namespace

const Option* FindOption(const OptionSection& section, std::string_view name) {
  for (const Option& o : section.options) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

std::string Describe(const Option& o) {
  if (!o.what.empty()) return std::string(o.what);
  switch (o.type) {
    case OptionType::kInt:
      return "an integer" + RangeText(o);
    case OptionType::kNumber:
      return "a number" + RangeText(o);
    case OptionType::kBool:
      return "true or false";
    case OptionType::kString:
      return "a string";
    case OptionType::kStringOrList:
      return "a string or a list of strings";
    case OptionType::kStringList:
      return "a list of strings";
    case OptionType::kIntList:
      return "a list of integers" + RangeText(o);
    case OptionType::kBoolOrInt:
      return "true, false or an integer" + RangeText(o);
    case OptionType::kMapping:
      return "a mapping";
    case OptionType::kAny:
      return "anything";
    case OptionType::kList:
      return "a list";
    case OptionType::kStringOrInt:
      return "a string or an integer" + RangeText(o);
    case OptionType::kEnum:
      return "one of " + JoinViews(o.values, ", ");
    case OptionType::kStringMap:
      return "a mapping of names to strings";
    case OptionType::kScalarMap:
      return "a mapping of names to strings, numbers or booleans";
    case OptionType::kStageInputs:
      return "a list of inputs [{stage, mountPath}]";
    case OptionType::kSection:
      return "a mapping";
  }
  return "anything";
}

std::optional<OptionProblem> CheckOption(const Option& option, json* value,
                                         const std::string& path) {
  if (value->is_null()) return std::nullopt;
  if (option.type == OptionType::kIntList && value->is_array()) {
    Option item = option;
    item.type = OptionType::kInt;
    for (size_t i = 0; i < value->size(); ++i) {
      json& v = (*value)[i];
      if (v.is_string() && IsWholeReference(v.get_ref<const std::string&>())) continue;
      if (IntOk(item, &v)) continue;
      std::string at = "[" + std::to_string(i) + "]";
      return OptionProblem{at, path + at + " must be " + Describe(item) + ", got " +
                                   QuoteValue(v)};
    }
    return std::nullopt;
  }
  if (Accepts(option, value)) return std::nullopt;
  return OptionProblem{"", path + " must be " + Describe(option) + ", got " + QuoteValue(*value)};
}

json DefaultOf(const Option& option) {
  if (option.default_json.empty()) return nullptr;
  return json::parse(option.default_json);
}

std::optional<std::string> ResolveSection(const OptionSection& declared, json* value) {
  if (value->is_null()) *value = json::object();
  if (!value->is_object()) return std::string(declared.name) + " must be a mapping";
  json& section = *value;
  for (auto it = section.begin(); it != section.end(); ++it) {
    const Option* option = FindOption(declared, it.key());
    if (option == nullptr) continue;
    std::string path = std::string(declared.name) + "." + it.key();
    if (auto problem = CheckOption(*option, &*it, path)) return problem->message;
  }
  if (declared.rule != nullptr) {
    if (auto problem = declared.rule(section)) return problem->message;
  }
  auto absent = [&](std::string_view key) {
    auto it = section.find(key);
    return it == section.end() || it->is_null();
  };
  for (const Option& o : declared.options) {
    if (o.alias_of.empty() || absent(o.name) || !absent(o.alias_of)) continue;
    section[std::string(o.alias_of)] = section[std::string(o.name)];
  }
  for (const Option& o : declared.options) {
    if (!o.default_json.empty() && absent(o.name)) section[std::string(o.name)] = DefaultOf(o);
  }
  return std::nullopt;
}

namespace {

nlohmann::ordered_json OptionSchema(const Option& o) {
  using ojson = nlohmann::ordered_json;
  ojson p;
  auto bounds = [&](ojson* s) {
    if (o.min) (*s)[o.min_exclusive ? "exclusiveMinimum" : "minimum"] = SchemaNumber(*o.min);
    if (o.max) (*s)["maximum"] = SchemaNumber(*o.max);
  };
  auto map_of = [&](ojson values) {
    p["type"] = "object";
    p["additionalProperties"] = std::move(values);
  };
  switch (o.type) {
    case OptionType::kInt:
    case OptionType::kNumber:
      p["type"] = o.type == OptionType::kInt ? "integer" : "number";
      bounds(&p);
      break;
    case OptionType::kBool:
      p["type"] = "boolean";
      break;
    case OptionType::kString:
      p["type"] = "string";
      break;
    case OptionType::kStringOrList:
      p["oneOf"] = {JsonSchemaType("string"),
                    {{"type", "array"}, {"items", JsonSchemaType("string")}}};
      break;
    case OptionType::kStringList:
      p["type"] = "array";
      p["items"] = JsonSchemaType("string");
      break;
    case OptionType::kIntList: {
      ojson item = {{"type", "integer"}};
      bounds(&item);
      p["type"] = "array";
      p["items"] = item;
      break;
    }
    case OptionType::kBoolOrInt:
    case OptionType::kStringOrInt: {
      ojson integer = {{"type", "integer"}};
      bounds(&integer);
      p["oneOf"] = {JsonSchemaType(o.type == OptionType::kBoolOrInt ? "boolean" : "string"),
                    integer};
      break;
    }
    case OptionType::kMapping:
    case OptionType::kSection:
      p["type"] = "object";
      break;
    case OptionType::kAny:
      break;
    case OptionType::kList:
      p["type"] = "array";
      break;
    case OptionType::kEnum:
      p["type"] = "string";
      p["enum"] = ojson::array();
      for (std::string_view v : o.values) p["enum"].push_back(std::string(v));
      break;
    case OptionType::kStringMap:
      map_of(JsonSchemaType("string"));
      break;
    case OptionType::kScalarMap:
      map_of({{"type", {"string", "number", "boolean"}}});
      break;
    case OptionType::kStageInputs: {
      ojson fields = {{"stage", JsonSchemaType("string")},
                      {"mountPath", JsonSchemaType("string")}};
      ojson input = {{"type", "object"},
                     {"properties", std::move(fields)},
                     {"required", {"stage"}},
                     {"additionalProperties", false}};
      p["type"] = "array";
      p["items"] = {{"oneOf", {JsonSchemaType("string"), std::move(input)}}};
      break;
    }
  }
  if (o.type == OptionType::kSection && o.section != nullptr) {
    p = OptionsJsonSchema(*o.section);
    p.erase("$comment");
  }
  if (!o.default_json.empty()) p["default"] = ojson::parse(o.default_json);
  p["description"] = std::string(o.doc);
  return p;
}

std::string MarkdownTable(const OptionSection& section) {
  std::string out = "## " + std::string(section.name) + "\n\n";
  if (!section.readers.empty()) out += "Read by: " + std::string(section.readers) + ".";
  if (!section.doc.empty()) out += (section.readers.empty() ? "" : " ") + std::string(section.doc);
  out += section.closed
             ? " Other keys are refused.\n\n"
             : " Other keys are kept, reported as warnings and passed on as they are.\n\n";
  for (const auto& group : section.exclusive) {
    out += "At most one of " + JoinViews(group, ", ") + ".\n\n";
  }
  out += "| Option | Value | Default | Used | Description |\n|---|---|---|---|---|\n";
  for (const Option& o : section.options) {
    std::string doc(o.doc);
    if (!o.alias_of.empty()) doc += " Read when " + std::string(o.alias_of) + " is absent.";
    if (o.section != nullptr) doc += " See " + std::string(o.section->name) + ".";
    if (o.flat) doc += " Also read at the top of the task spec.";
    out += "| `" + std::string(o.name) + "` | " + Describe(o) + " | " +
           (o.default_json.empty() ? "" : "`" + std::string(o.default_json) + "`") + " | " +
           (o.used ? "yes" : "passed over") + " | " + doc + " |\n";
  }
  for (const Option& o : section.options) {
    if (o.section != nullptr) out += "\n" + MarkdownTable(*o.section);
  }
  return out;
}

}  // namespace

nlohmann::ordered_json OptionsJsonSchema(const OptionSection& section) {
  nlohmann::ordered_json properties = nlohmann::ordered_json::object();
  for (const Option& o : section.options) properties[std::string(o.name)] = OptionSchema(o);
  nlohmann::ordered_json schema;
  schema["$comment"] =
      "generated from src/spec/executor_options.cc (scripts/docs-options); do not edit";
  schema["type"] = "object";
  schema["properties"] = std::move(properties);
  if (section.closed) schema["additionalProperties"] = false;
  return schema;
}

std::string OptionsMarkdown(const std::vector<const OptionSection*>& sections) {
  std::string out =
      "# Executor options\n\n"
      "Generated from `src/spec/executor_options.cc`, where each option's type, range and\n"
      "default are declared once for the submit-time validator, the executors and\n"
      "`docs/workflow.schema.json`. Do not edit: change the table and run\n"
      "`scripts/docs-options`.\n\n"
      "Options marked \"passed over\" belong to another engine of the published format: they\n"
      "are type-checked at submit and not used by ours.\n";
  for (const OptionSection* section : sections) out += "\n" + MarkdownTable(*section);
  return out;
}

std::string QuoteValue(const json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  if (text.size() > 64) text = text.substr(0, 61) + "...";
  return "'" + text + "'";
}

bool CoerceNumber(json* v, bool integer) {
  if (!v->is_string()) return false;
  const std::string& s = v->get_ref<const std::string&>();
  // Plain decimal text only: no leading blanks, no hex, no inf/nan.
  if (s.empty() || s.size() > 40 || s.find_first_of("xXpP") != std::string::npos ||
      !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '+' ||
        s[0] == '.')) {
    return false;
  }
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  long long i = std::strtoll(begin, &end, 10);
  if (errno == 0 && end == begin + s.size()) {
    *v = static_cast<int64_t>(i);
    return true;
  }
  if (integer) return false;
  errno = 0;
  double d = std::strtod(begin, &end);
  if (errno != 0 || end != begin + s.size() || !std::isfinite(d)) return false;
  *v = d;
  return true;
}

bool CoerceBool(json* v) {
  if (!v->is_string()) return false;
  std::string s = v->get<std::string>();
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "true" || s == "yes" || s == "on" || s == "1") {
    *v = true;
  } else if (s == "false" || s == "no" || s == "off" || s == "0") {
    *v = false;
  } else {
    return false;
  }
  return true;
}

}  // namespace flowmesh::spec
