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

// Bounds of the inference options, chosen once for submit and worker alike:
// - temperature 0..2 and presence/frequency penalties -2..2: the OpenAI API's ranges, which
//   vLLM documents too; published workflows stay inside them, and llama.cpp's samplers are
//   well-defined there (beyond 2 the distribution is close to uniform noise).
// - repetition_penalty > 0 (vLLM, transformers: strictly positive; 1 = off), at most 100 as
//   a sanity cap: llama.cpp divides positive logits by it, and beyond 100 every seen token
//   is banned anyway.
// - top_p, min_p 0..1: probabilities. top_k -1..2^24: -1 is vLLM's "all tokens", 0 is
//   llama.cpp's and transformers'; 2^24 is above any vocabulary.
// - max_tokens, max_new_tokens, min_tokens up to 2^20: above any context llama.cpp loads.
// - seed 0..2^32-1: llama.cpp's seed is a uint32 (absent: random). n 1..64: the choices of
//   one prompt run as parallel sequences of one engine.
constexpr double kMaxTokens = 1 << 20;

// Fields left out of a designated initializer take their defaults (that is the point of the
// table's layout); GCC before 12 still warns about them.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const std::vector<Option>& BuildInferenceOptions() {
  using T = OptionType;
  static const std::vector<Option> kOptions = {
      {.name = "max_tokens", .type = T::kInt, .min = 1, .max = kMaxTokens,
       .default_json = "256", .doc = "Most tokens generated per choice."},
      {.name = "max_new_tokens", .type = T::kInt, .min = 1, .max = kMaxTokens,
       .doc = "transformers' spelling of max_tokens.", .alias_of = "max_tokens"},
      {.name = "min_tokens", .type = T::kInt, .min = 0, .max = kMaxTokens, .default_json = "0",
       .doc = "Tokens generated before a stop string or end of text may end a choice; "
              "at most max_tokens."},
      {.name = "temperature", .type = T::kNumber, .min = 0, .max = 2, .default_json = "1",
       .doc = "Sampling temperature; 0 decodes greedily."},
      {.name = "do_sample", .type = T::kBool,
       .doc = "transformers' switch: false decodes greedily (temperature 0)."},
      {.name = "top_p", .type = T::kNumber, .min = 0, .max = 1, .default_json = "1",
       .doc = "Nucleus sampling: the smallest set of tokens with this probability mass."},
      {.name = "top_k", .type = T::kInt, .min = -1, .max = 1 << 24, .default_json = "0",
       .doc = "Sample from the k most likely tokens; 0 or -1: all."},
      {.name = "min_p", .type = T::kNumber, .min = 0, .max = 1, .default_json = "0",
       .doc = "Drop tokens less likely than min_p times the most likely one."},
      {.name = "seed", .type = T::kInt, .min = 0, .max = 4294967295.0,
       .doc = "Seed of the sampler (choice c uses seed + c); absent: random."},
      {.name = "n", .type = T::kInt, .min = 1, .max = 64, .default_json = "1",
       .doc = "Choices generated per prompt."},
      {.name = "repetition_penalty", .type = T::kNumber, .min = 0, .max = 100,
       .min_exclusive = true, .default_json = "1",
       .doc = "Penalty on tokens already seen (1: none)."},
      {.name = "presence_penalty", .type = T::kNumber, .min = -2, .max = 2, .default_json = "0",
       .doc = "Subtracted from the logit of every token already seen."},
      {.name = "frequency_penalty", .type = T::kNumber, .min = -2, .max = 2,
       .default_json = "0", .doc = "Subtracted once per earlier occurrence of a token."},
      {.name = "stop", .type = T::kStringOrList,
       .doc = "Strings that end a choice (not included in the output)."},
      {.name = "stop_token_ids", .type = T::kIntList, .min = 0, .max = 2147483647.0,
       .doc = "Token ids that end a choice."},
      {.name = "system_prompt", .type = T::kString,
       .doc = "System message put before each prompt through the chat template."},
      {.name = "prompt", .type = T::kAny, .doc = "The single input when data.items is absent."},
      {.name = "logprobs", .type = T::kBoolOrInt, .min = 0, .default_json = "false",
       .doc = "Return the log-probability of each generated token (an integer > 0: on)."},
      {.name = "stream", .type = T::kBool, .default_json = "true",
       .doc = "Send generated text as task log lines while it runs."},
      // Options of the published format's other engines (vLLM, transformers, diffusers):
      // type-checked at submit, passed over by llama.cpp.
      {.name = "best_of", .type = T::kInt, .min = 1, .doc = "vLLM.", .used = false},
      {.name = "num_beams", .type = T::kInt, .min = 1, .doc = "transformers.", .used = false},
      {.name = "length_penalty", .type = T::kNumber, .doc = "transformers.", .used = false},
      {.name = "no_repeat_ngram_size", .type = T::kInt, .min = 0, .doc = "transformers.",
       .used = false},
      {.name = "bad_words", .type = T::kStringList, .doc = "vLLM.", .used = false},
      {.name = "ignore_eos", .type = T::kBool, .doc = "vLLM.", .used = false},
      {.name = "skip_special_tokens", .type = T::kBool, .doc = "vLLM.", .used = false},
      {.name = "prompt_logprobs", .type = T::kInt, .min = 0, .doc = "vLLM.", .used = false},
      {.name = "templates", .type = T::kAny,
       .doc = "Structured output: named fields or a JSON schema.", .used = false},
      {.name = "response_format", .type = T::kAny, .doc = "Structured output.", .used = false},
      {.name = "guided_json", .type = T::kAny, .doc = "vLLM structured output.", .used = false},
      {.name = "chat_template_kwargs", .type = T::kMapping, .doc = "vLLM.", .used = false},
      {.name = "batch_size", .type = T::kInt, .min = 1, .doc = "transformers.", .used = false},
      {.name = "prompts", .type = T::kAny, .doc = "Published inputs list.", .used = false},
      {.name = "num_inference_steps", .type = T::kInt, .min = 1, .doc = "diffusers.",
       .used = false},
      {.name = "guidance_scale", .type = T::kNumber, .min = 0, .doc = "diffusers.",
       .used = false},
      {.name = "height", .type = T::kInt, .min = 1, .doc = "diffusers.", .used = false},
      {.name = "width", .type = T::kInt, .min = 1, .doc = "diffusers.", .used = false},
      {.name = "negative_prompt", .type = T::kStringOrList, .doc = "diffusers.", .used = false},
      {.name = "num_images_per_prompt", .type = T::kInt, .min = 1, .doc = "diffusers.",
       .used = false},
      {.name = "output_type", .type = T::kString, .doc = "diffusers.", .used = false},
  };
  return kOptions;
}
#pragma GCC diagnostic pop

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
  }
  return false;
}

json JsonSchemaType(std::string_view type) { return json{{"type", type}}; }

// 1, not 1.0, for an integral bound.
nlohmann::ordered_json SchemaNumber(double d) {
  if (d == std::floor(d) && std::fabs(d) < 1e15) return static_cast<int64_t>(d);
  return d;
}

}  // namespace

const std::vector<Option>& InferenceOptions() { return BuildInferenceOptions(); }

const Option* FindInferenceOption(std::string_view name) {
  for (const Option& o : InferenceOptions()) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

std::string Describe(const Option& o) {
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

std::optional<SectionProblem> CheckInferenceSection(const json& section) {
  if (!section.is_object()) return std::nullopt;
  auto integer = [&](std::string_view key) -> std::optional<int64_t> {
    auto it = section.find(key);
    if (it == section.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };
  std::optional<int64_t> min = integer("min_tokens");
  if (!min) return std::nullopt;
  auto given = [&](std::string_view key) {
    auto it = section.find(key);
    return it != section.end() && !it->is_null();
  };
  std::optional<int64_t> max = integer("max_tokens");
  if (!max && !given("max_tokens")) max = integer("max_new_tokens");
  if (!max && !given("max_tokens") && !given("max_new_tokens")) {
    max = DefaultOf(*FindInferenceOption("max_tokens")).get<int64_t>();
  }
  // A `${...}` max is checked at dispatch; an out-of-range one has its own message.
  if (!max || *max < 1 || *min <= *max) return std::nullopt;
  return SectionProblem{"min_tokens", "inference.min_tokens must be at most max_tokens (" +
                                          std::to_string(*max) + "), got " +
                                          std::to_string(*min)};
}

std::optional<std::string> ResolveInferenceSection(json* section) {
  if (!section->is_object()) return std::string("inference must be a mapping");
  for (auto it = section->begin(); it != section->end(); ++it) {
    const Option* option = FindInferenceOption(it.key());
    if (option == nullptr) continue;
    if (auto problem = CheckOption(*option, &*it, "inference." + it.key())) {
      return problem->message;
    }
  }
  if (auto problem = CheckInferenceSection(*section)) return problem->message;
  auto absent = [&](std::string_view key) {
    auto it = section->find(key);
    return it == section->end() || it->is_null();
  };
  for (const Option& o : InferenceOptions()) {
    if (o.alias_of.empty() || absent(o.name) || !absent(o.alias_of)) continue;
    (*section)[std::string(o.alias_of)] = (*section)[std::string(o.name)];
  }
  for (const Option& o : InferenceOptions()) {
    if (!o.default_json.empty() && absent(o.name)) (*section)[std::string(o.name)] = DefaultOf(o);
  }
  return std::nullopt;
}

nlohmann::ordered_json OptionsJsonSchema(const std::vector<Option>& options) {
  nlohmann::ordered_json properties = nlohmann::ordered_json::object();
  for (const Option& o : options) {
    nlohmann::ordered_json p;
    auto bounds = [&](nlohmann::ordered_json* s) {
      if (o.min) (*s)[o.min_exclusive ? "exclusiveMinimum" : "minimum"] = SchemaNumber(*o.min);
      if (o.max) (*s)["maximum"] = SchemaNumber(*o.max);
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
        nlohmann::ordered_json item = {{"type", "integer"}};
        bounds(&item);
        p["type"] = "array";
        p["items"] = item;
        break;
      }
      case OptionType::kBoolOrInt: {
        nlohmann::ordered_json integer = {{"type", "integer"}};
        bounds(&integer);
        p["oneOf"] = {JsonSchemaType("boolean"), integer};
        break;
      }
      case OptionType::kMapping:
        p["type"] = "object";
        break;
      case OptionType::kAny:
        break;
    }
    if (!o.default_json.empty()) p["default"] = nlohmann::ordered_json::parse(o.default_json);
    p["description"] = std::string(o.doc);
    properties[std::string(o.name)] = std::move(p);
  }
  nlohmann::ordered_json schema;
  schema["$comment"] = "generated from src/spec/options.cc (scripts/docs-options); do not edit";
  schema["type"] = "object";
  schema["properties"] = std::move(properties);
  return schema;
}

std::string OptionsMarkdown() {
  std::string out =
      "# Executor options\n\n"
      "Generated from `src/spec/options.cc`, where each option's type, range and default are\n"
      "declared once for the submit-time validator, the worker and\n"
      "`docs/workflow.schema.json`. Do not edit: change the table and run\n"
      "`scripts/docs-options`.\n\n"
      "Keys a section does not list are kept, reported as warnings and passed to the\n"
      "executor as they are.\n\n"
      "## inference\n\n"
      "| Option | Value | Default | Used | Description |\n"
      "|---|---|---|---|---|\n";
  for (const Option& o : InferenceOptions()) {
    std::string doc(o.doc);
    if (!o.alias_of.empty()) doc += " Read when " + std::string(o.alias_of) + " is absent.";
    out += "| `" + std::string(o.name) + "` | " + Describe(o) + " | " +
           (o.default_json.empty() ? "" : "`" + std::string(o.default_json) + "`") + " | " +
           (o.used ? "yes" : "passed over") + " | " + doc + " |\n";
  }
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
