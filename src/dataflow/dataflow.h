// Run-time semantics of the workflow language (WORKFLOWS.md): `${node.path}` references,
// `condition` evaluation and `data` materialisation. The scheduler calls these at dispatch
// time with the results of a task's upstream nodes; executors then only ever see
// `data: {type: list, items: [...]}`.
//
// All functions are pure (no state, no exceptions across the interface) and safe to call
// from any thread. MaterializeData/PrepareTaskSpec block while reading a dataset file or
// fetching it over HTTP, so call them off latency-sensitive loops.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"
#include "spec/task_spec.h"

namespace flowmesh::dataflow {

// Node name → that node's result JSON. A skipped node's result is {"skipped": true}.
using Upstream = std::map<std::string, nlohmann::json>;

// Looks up a dot path in `root`. Segments are object keys or array indices, written
// `items.0.output`, `items[0].output` or `a.b[2][1]`; an empty path is `root` itself.
// A `*` segment on an array maps the rest of the path over every element
// (`items.*.output` → [out0, out1, …]).
// NotFound names the missing segment and where it was looked for; a malformed path
// (`a..b`, `a[x]`, `a[1`) is InvalidArgument.
Result<nlohmann::json> LookupPath(const nlohmann::json& root, std::string_view path);

// Replaces `${node.path}` references in every string value of `spec` (object keys are left
// alone). A string that is exactly one reference becomes the referenced JSON value with its
// type kept; a reference embedded in text is replaced by its string form (strings raw,
// anything else JSON-dumped). `${node}` is the whole result. `$${…}` stays as the literal
// `${…}`. `${HOME}` and other forms without a dot or index whose name is not in `up` stay
// as they are. A dotted reference to a node not in `up`, or a path that does not resolve,
// is InvalidArgument naming the reference and where it is (`spec.api.url`).
Result<nlohmann::json> ResolveReferences(const nlohmann::json& spec, const Upstream& up);

// Evaluates `condition: {node, field, equals}`: looks up `field` (a dot path; empty or
// absent = the whole result) in the node's result and compares it with `equals` by JSON
// equality, where numbers compare by value (1 == 1.0) and the strings "true"/"false"
// (any case) equal the booleans. A field that does not resolve (e.g. the node was
// skipped) is "not met". A node not in `up`, or a malformed condition, is InvalidArgument.
Result<bool> ConditionMet(const spec::Condition& condition, const Upstream& up);
// The same, from the condition's JSON (spec::ParseCondition says what is malformed).
Result<bool> ConditionMet(const nlohmann::json& condition, const Upstream& up);

struct DataOptions {
  // Base directory for relative dataset paths; empty = the process's working directory.
  std::string data_dir;
  // Most items `data` may materialise to (any type), and most bytes a dataset may have.
  size_t max_rows = 100000;
  size_t max_bytes = size_t{256} << 20;
  // Bounds each wait when fetching an http:// dataset.
  std::chrono::milliseconds http_timeout{30000};
  // CA bundle to verify https:// dataset servers with; empty = the system's trust store.
  std::string https_ca_file;
  // `data` names a source the executor reads itself (data_retrieval: sql, http, file, …):
  // references are resolved and `params` columns ({label, node+path | data | value}) become
  // {label, value}, but nothing is materialised and every type is left to the executor.
  bool retrieval_source = false;
};

// Materialises a task's `data` into `{type: list, source_type: <original type>, items:
// [...]}`; the data object's other keys are kept. Types:
// - list: strings (references resolved), chat message lists, `{node, path}` references
//   (each becomes one item keeping its JSON type).
// - graph_template: `template: {name | text | messages, columns: [{label, expr | node+path,
//   default, broadcast}], options}`. A column whose value is an array is a list column
//   (unless `broadcast: false`); list columns must all have the same length N, scalar
//   columns repeat; a value that does not resolve (or is null) takes `default`, else it is
//   an error. One item per row (1 row when no list column): `text` with `{label}` slots
//   (`{{`/`}}` escape braces) → a string; `messages` → a chat message list; `name` → a
//   built-in text template ("qa", "summarize", "classify").
// - dataframe: `columns: {col: [values]}` or `[{name, values}]`, with `messages` (or
//   `text`) holding `{col}` slots → one item per row.
// - dataset: `url | name` (local path, absolute or relative to `data_dir`; `file://`;
//   `http://`), JSONL (or a JSON array) or CSV by extension, else by content, or by
//   `format: jsonl|csv`; `column` picks the field (default "text"); `split` such as
//   "train", "train[:100]", "train[10:20]", "train[10%:20%]" slices rows; then `shuffle:
//   true` shuffles with `seed` (default 0) by std::mt19937_64 + Fisher–Yates (j = rng() %
//   (i + 1) for i = n-1 … 1, so the order is the same on every platform); then `limit`
//   keeps the first rows.
// Errors are InvalidArgument (bad data, unresolvable reference), NotFound (missing file),
// Unavailable/Unimplemented (http failure / https), TooLarge (max_rows, max_bytes), each
// naming what and where (`data.template.columns[1]`).
Result<nlohmann::json> MaterializeData(const nlohmann::json& data, const Upstream& up,
                                       const DataOptions& opts);

// The spec to dispatch: ResolveReferences on every key except `data`, then MaterializeData
// for `data` (when present). Error locations start with `spec.`. A python task's input
// stages get their upstream results attached (`python.inputs[i].result`; without `inputs`
// every upstream node is an input).
Result<nlohmann::json> PrepareTaskSpec(const nlohmann::json& spec, const Upstream& up,
                                       const DataOptions& opts);

}  // namespace flowmesh::dataflow
