#include "state/store_sql.h"

#include <algorithm>

namespace flowmesh::state::store_internal {


std::string Join(Columns cols, std::string_view sep) {
  std::string out;
  for (std::string_view c : cols) {
    if (!out.empty()) out += sep;
    out += c;
  }
  return out;
}

std::string UpsertSql(std::string_view table, Columns cols, Columns keys) {
  std::string params;
  std::string updates;
  for (size_t i = 0; i < cols.size(); ++i) {
    params += fmt::format("{}?{}", i > 0 ? "," : "", i + 1);
    if (std::find(keys.begin(), keys.end(), cols[i]) != keys.end()) continue;
    updates += fmt::format("{}{}=excluded.{}", updates.empty() ? "" : ",", cols[i], cols[i]);
  }
  return fmt::format("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT({}) DO UPDATE SET {}", table,
                     Join(cols, ","), params, Join(keys, ","), updates);
}

const Sql& Q() {
  static const Sql sql;
  return sql;
}

}  // namespace flowmesh::state::store_internal
