#include "cli/records.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "cli/output.h"

namespace flowmesh::cli {

using nlohmann::json;

size_t CountOf(const json& value) {
  if (value.is_array()) return value.size();
  if (value.is_number_unsigned()) return value.get<size_t>();
  if (value.is_number()) {
    double d = value.get<double>();
    return d > 0 ? static_cast<size_t>(d) : 0;
  }
  return 0;
}

std::optional<double> EpochSeconds(const json& value) {
  if (value.is_number()) return value.get<double>();
  if (!value.is_string()) return std::nullopt;
  const std::string s = value.get<std::string>();
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, consumed = 0;
  double sec = 0;
  char sep = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2d%c%2d:%2d:%lf%n", &y, &mo, &d, &sep, &h, &mi, &sec,
                  &consumed) != 7 ||
      (sep != 'T' && sep != 't' && sep != ' ')) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  double epoch = static_cast<double>(::timegm(&tm)) + sec;
  std::string zone = s.substr(static_cast<size_t>(consumed));
  if (zone.empty() || zone == "Z" || zone == "z") return epoch;  // no zone: UTC
  int zh = 0, zm = 0;
  if ((zone[0] == '+' || zone[0] == '-') &&
      (std::sscanf(zone.c_str() + 1, "%2d:%2d", &zh, &zm) == 2 ||
       std::sscanf(zone.c_str() + 1, "%2d%2d", &zh, &zm) == 2)) {
    double offset = zh * 3600.0 + zm * 60.0;
    return zone[0] == '+' ? epoch - offset : epoch + offset;
  }
  return std::nullopt;
}

std::string FieldText(const json& record, std::initializer_list<const char*> keys) {
  if (!record.is_object()) return "";
  for (const char* k : keys) {
    auto it = record.find(k);
    if (it != record.end() && !it->is_null()) return DisplayValue(*it);
  }
  return "";
}

std::string WorkerId(const json& worker) { return FieldText(worker, {"worker_id", "id"}); }

std::vector<std::string> WorkerTaskTypes(const json& worker) {
  std::vector<std::string> out;
  auto take = [&out](const json& list) {
    if (!list.is_array()) return;
    for (const auto& t : list) {
      if (!t.is_string()) continue;
      std::string type = t.get<std::string>();
      if (std::find(out.begin(), out.end(), type) == out.end()) out.push_back(type);
    }
  };
  if (!worker.is_object()) return out;
  if (worker.contains("task_types")) take(worker["task_types"]);
  if (worker.contains("capabilities") && worker["capabilities"].is_object()) {
    take(worker["capabilities"].value("supported_task_types", json::array()));
  }
  if (worker.contains("info") && worker["info"].is_object()) {
    take(worker["info"].value("task_types", json::array()));
  }
  return out;
}

json FlattenWorkerLists(const json& value) {
  if (value.is_array()) return value;
  json out = json::array();
  if (!value.is_object()) return out;
  for (const auto& [node, workers] : value.items()) {
    if (!workers.is_array()) continue;
    for (const auto& w : workers) out.push_back(w);
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseQueryFilters(
    const std::vector<std::string>& raw) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (const auto& item : raw) {
    std::string chunk = item;
    while (!chunk.empty() && chunk.front() == '?') chunk.erase(0, 1);
    if (chunk.find('=') == std::string::npos) {
      return InvalidArgument("invalid query filter '" + item + "': use key=value");
    }
    size_t start = 0;
    while (start <= chunk.size()) {
      size_t amp = chunk.find('&', start);
      std::string part =
          chunk.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
      auto eq = part.find('=');
      if (eq == std::string::npos || eq == 0) {
        return InvalidArgument("invalid query filter '" + item + "': use key=value");
      }
      pairs.emplace_back(part.substr(0, eq), part.substr(eq + 1));
      if (amp == std::string::npos) break;
      start = amp + 1;
    }
  }
  return pairs;
}

json FilterByAny(const json& records, const std::string& field,
                 const std::vector<std::string>& values) {
  if (values.empty() || !records.is_array()) return records;
  auto wanted = [&values](const json& v) {
    std::string text = v.is_string() ? v.get<std::string>() : DisplayValue(v);
    return std::find(values.begin(), values.end(), text) != values.end();
  };
  json out = json::array();
  for (const auto& r : records) {
    if (!r.is_object() || !r.contains(field)) continue;
    const json& v = r[field];
    bool hit = v.is_array() ? std::any_of(v.begin(), v.end(), wanted) : wanted(v);
    if (hit) out.push_back(r);
  }
  return out;
}

json KeepNewest(const json& records, int limit) {
  if (limit <= 0 || !records.is_array() || records.size() <= static_cast<size_t>(limit)) {
    return records;
  }
  return json(records.end() - limit, records.end());
}

}  // namespace flowmesh::cli
