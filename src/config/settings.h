// A table of process settings, each declared once: its flag, its environment variable, its
// default (the bound field's value at declaration) and its doc. Binds every entry to a CLI11
// app (a flag wins over the environment, which wins over the default) and renders the same
// entries as a Markdown table for docs/configuration.md, so the help text, the environment
// and the docs cannot drift apart. Used by main() only; nothing below it reads getenv.
#pragma once

#include <CLI/CLI.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace flowmesh::config {

struct SettingDoc {
  std::string flag;     // "--port"
  std::string env;      // "FLOWMESH_PORT"; "" when the flag has none
  std::string default_value;
  std::string doc;
};

class SettingsTable {
 public:
  explicit SettingsTable(CLI::App* app) : app_(app) {}

  // Declares one setting bound to `*target`; its current value is the default. Returns the
  // CLI11 option for extra checks (->check(CLI::IsMember(...))).
  template <typename T>
  CLI::Option* Add(const std::string& flag, const std::string& env, T* target,
                   const std::string& doc) {
    CLI::Option* opt = app_->add_option(flag, *target, doc);
    opt->capture_default_str();
    if (!env.empty()) opt->envname(env);
    docs_.push_back({flag, env, opt->get_default_str(), doc});
    return opt;
  }

  // A boolean switch (present: true). Switches take no environment variable.
  CLI::Option* AddFlag(const std::string& flag, bool* target, const std::string& doc) {
    docs_.push_back({flag, "", *target ? "true" : "false", doc});
    return app_->add_flag(flag, *target, doc);
  }

  const std::vector<SettingDoc>& entries() const { return docs_; }

  // | flag | environment | default | meaning |
  std::string Markdown() const;

 private:
  CLI::App* app_;
  std::vector<SettingDoc> docs_;
};

}  // namespace flowmesh::config
