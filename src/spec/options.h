// The options of an executor's section of a task spec, declared once: name, type, range,
// default, doc and alias. The submit-time validator (task_schema.cc), the worker that reads
// the values (inference::SamplingFromSpec), the JSON Schema (docs/workflow.schema.json) and
// docs/executor-options.md all take a parameter's rule from here, so a bound is changed in
// one place. The tables are immutable; everything here is safe to use from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flowmesh::spec {

enum class OptionType {
  kInt,
  kNumber,
  kBool,
  kString,
  kStringOrList,  // a string or a list of strings
  kStringList,
  kIntList,    // min/max bound each item
  kBoolOrInt,  // min/max bound the integer
  kMapping,
  kAny,
};

struct Option {
  std::string_view name;
  OptionType type = OptionType::kAny;
  std::optional<double> min;
  std::optional<double> max;
  bool min_exclusive = false;
  std::string_view default_json;  // the value when absent, as JSON text; "" = none
  std::string_view doc;
  std::string_view alias_of;  // read as that option when that option is absent
  bool used = true;           // false: another engine's option, accepted and passed over
};

// The `inference` section (executors inference; llama.cpp sampling).
const std::vector<Option>& InferenceOptions();
const Option* FindInferenceOption(std::string_view name);

// What a value of the option must be: "an integer from 1 to 1048576". The end of
// "inference.max_tokens must be …".
std::string Describe(const Option& option);

// Reads the published spellings of the value ("4", "0.5", "yes") into the option's type, in
// place, then checks type and range. When the value is refused: the message
// ("inference.temperature must be a number from 0 to 2, got '3'") and where, below `path`,
// the refused value is ("" or "[2]" for an item of a list). `path` names the value.
struct OptionProblem {
  std::string at;
  std::string message;
};
std::optional<OptionProblem> CheckOption(const Option& option, nlohmann::json* value,
                                         const std::string& path);

// The default of an option (null when it has none).
nlohmann::json DefaultOf(const Option& option);

// A rule across options of the inference section (min_tokens <= max_tokens, the default
// max_tokens counting). `key` is the option the problem is reported at.
struct SectionProblem {
  std::string key;
  std::string message;
};
std::optional<SectionProblem> CheckInferenceSection(const nlohmann::json& section);

// What an executor reads: checks each option of `section` (CheckOption) and the rules
// across them, then gives each absent option its alias's value or its default. Returns the
// message of the first refused value. Unknown keys are left as they are.
std::optional<std::string> ResolveInferenceSection(nlohmann::json* section);

// The JSON Schema of a section: {"type": "object", "properties": {...}}.
nlohmann::ordered_json OptionsJsonSchema(const std::vector<Option>& options);

// docs/executor-options.md.
std::string OptionsMarkdown();

// 'text' of a value for messages (long values are cut).
std::string QuoteValue(const nlohmann::json& value);

// The published (pydantic, lax mode) readings of quoted scalars: "4" for an integer, "0.5"
// for a number, "true"/"no" for a boolean. Replace `v` and return true on a match.
bool CoerceNumber(nlohmann::json* v, bool integer);
bool CoerceBool(nlohmann::json* v);

}  // namespace flowmesh::spec
