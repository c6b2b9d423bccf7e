// How an executor option is declared (name, type, range, default, doc, alias) and what is
// done with a declaration: checked (CheckOption), resolved for an executor (ResolveSection),
// written as JSON Schema and as docs. The tables themselves are in spec/executor_options.cc;
// the submit-time validator (task_schema.cc), the executors that read the values
// (inference::SamplingFromSpec, executors::EchoExecutor), docs/workflow.schema.json and
// docs/executor-options.md all take a parameter's rule from there, so a bound is changed in
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
  kList,         // a list of anything
  kStringOrInt,  // min/max bound the integer
  kEnum,         // one of `values`
  kStringMap,    // a mapping of names to strings
  kScalarMap,    // a mapping of names to strings, numbers or booleans
  kStageInputs,  // a list of stage names or {stage, mountPath}
  kSection,      // a nested mapping with its own options (`section`)
};

struct OptionSection;

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
  std::vector<std::string_view> values;     // kEnum
  const OptionSection* section = nullptr;  // kSection
  std::string_view what;  // Describe's words when the type's own are too vague
  // The published format also writes it at the top of the task spec (`ttlSeconds` of an ssh
  // task); NormaliseTaskSpec moves it into the section.
  bool flat = false;
};

// A rule across options of a section (min_tokens <= max_tokens). `key` is the option the
// problem is reported at.
struct SectionProblem {
  std::string key;
  std::string message;
};

// The options of one executor section of a task spec (`inference`, `ssh`) or of a mapping
// inside one (`api.response`).
struct OptionSection {
  std::string_view name;     // "inference", "api.response"
  std::string_view readers;  // task types whose executors read it (docs)
  std::string_view doc;
  std::vector<Option> options;
  // Closed: an unknown key is refused. Open (the published format's free-form sections):
  // it is kept, reported as a warning and passed to the executor as is.
  bool closed = false;
  std::vector<std::vector<std::string_view>> exclusive;  // at most one of each group
  std::optional<SectionProblem> (*rule)(const nlohmann::json& section) = nullptr;
  std::string_view label;  // after the section's name in unknown-key messages
};

const Option* FindOption(const OptionSection& section, std::string_view name);

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

// What an executor reads: checks each option of `section` (CheckOption) and the rule
// across them, then gives each absent option its alias's value or its default. Returns the
// message of the first refused value. Unknown keys are left as they are. `value` null: an
// absent section, read as {}.
std::optional<std::string> ResolveSection(const OptionSection& declared, nlohmann::json* value);

// The JSON Schema of a section: {"type": "object", "properties": {...}}.
nlohmann::ordered_json OptionsJsonSchema(const OptionSection& section);

// docs/executor-options.md, from the given sections (and the sections nested in them).
std::string OptionsMarkdown(const std::vector<const OptionSection*>& sections);

// 'text' of a value for messages (long values are cut).
std::string QuoteValue(const nlohmann::json& value);

// The published (pydantic, lax mode) readings of quoted scalars: "4" for an integer, "0.5"
// for a number, "true"/"no" for a boolean. Replace `v` and return true on a match.
bool CoerceNumber(nlohmann::json* v, bool integer);
bool CoerceBool(nlohmann::json* v);

}  // namespace flowmesh::spec
