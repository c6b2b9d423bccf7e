// The schema tree of a task spec and the validator that walks it (spec/task_schema.h).
// The tree is built once by task_schema.cc (from spec/executor_options.cc for the executor
// sections) and never modified; Validate is safe to call from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "spec/options.h"
#include "spec/task_schema.h"

namespace flowmesh::spec::schema_internal {

using nlohmann::json;

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
  // kObject inside a kOneOf: matches only a mapping that has this key ("" = any mapping)
  std::string match_key;
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

// Checks `value` (at `rel` of the task spec, "" for the spec itself) against `schema`, reading
// quoted scalars into their types and normalising memory sizes in place.
void Validate(const Schema& schema, json* value, const std::string& rel,
              std::vector<SchemaIssue>* issues);

}  // namespace flowmesh::spec::schema_internal
