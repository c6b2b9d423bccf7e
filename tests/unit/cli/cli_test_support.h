// Helpers shared by the CLI unit tests: parsing a command line into an Invocation, and the
// event records the fake servers stream.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace flowmesh::cli::test_support {

struct Parsed {
  bool ok = false;
  std::string command;  // "task list"
  Invocation inv;
};

// Parses `args` (after the program name) as `flowmesh` would; ok is false on a parse error.
inline Parsed Parse(std::vector<std::string> args) {
  Parsed p;
  CLI::App app("flowmesh", "flowmesh");
  BuildApp(&app, &p.inv);
  std::reverse(args.begin(), args.end());
  try {
    app.parse(args);
    p.ok = true;
    p.command = CommandPath(app);
  } catch (const CLI::ParseError&) {
  }
  return p;
}

// One stored event of workflow wfl-1, as the server's log routes return it.
inline nlohmann::json Event(const std::string& type, const std::string& task,
                            nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json e = {
      {"type", type}, {"ts", 1700000000.5}, {"workflow_id", "wfl-1"}, {"task_id", task}};
  for (auto& [k, v] : extra.items()) e[k] = v;
  return e;
}

}  // namespace flowmesh::cli::test_support
