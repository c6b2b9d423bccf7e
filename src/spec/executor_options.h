// The executor sections of a task spec (`inference`, `echo`, `api`, `ssh`, ...), each option
// declared once: name, type, range, default and doc (spec/options.h says what a declaration
// holds and what is done with it). The submit-time validator builds its checks of these
// sections from here, the executors resolve the values they read through here, and
// docs/executor-options.md and the sections of docs/workflow.schema.json are generated from
// here (scripts/docs-options). Immutable; safe to use from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spec/options.h"

namespace flowmesh::spec {

// Every top-level executor section, in the order of the docs.
const std::vector<const OptionSection*>& ExecutorSections();
// nullptr when `name` is not an executor section.
const OptionSection* FindSection(std::string_view name);

// `inference` (inference, embedding; llama.cpp sampling).
const OptionSection& InferenceSection();
// `echo` (echo).
const OptionSection& EchoSection();

const std::vector<Option>& InferenceOptions();
const Option* FindInferenceOption(std::string_view name);

// min_tokens <= max_tokens, the default max_tokens counting.
std::optional<SectionProblem> CheckInferenceSection(const nlohmann::json& section);

// ResolveSection(InferenceSection(), section).
std::optional<std::string> ResolveInferenceSection(nlohmann::json* section);

}  // namespace flowmesh::spec
