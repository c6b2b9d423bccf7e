#include "config/settings.h"

namespace flowmesh::config {
namespace {

std::string Cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

}  // namespace

std::string SettingsTable::Markdown() const {
  std::ostringstream out;
  out << "| flag | environment | default | meaning |\n|---|---|---|---|\n";
  for (const auto& d : docs_) {
    out << "| `" << d.flag << "` | " << (d.env.empty() ? "" : "`" + d.env + "`") << " | "
        << (d.default_value.empty() ? "" : "`" + Cell(d.default_value) + "`") << " | "
        << Cell(d.doc) << " |\n";
  }
  return out.str();
}

}  // namespace flowmesh::config
