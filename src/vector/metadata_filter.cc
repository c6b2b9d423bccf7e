#include "vector/metadata_filter.h"

namespace flowmesh::vector {

using json = nlohmann::json;

namespace {

bool Scalar(const json& v) { return v.is_string() || v.is_number() || v.is_boolean(); }

bool Equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

}  // namespace

Status MetadataFilter::Add(const std::string& field, const json& spec,
                           std::vector<Condition>& out) {
  if (field.empty()) return InvalidArgument("filter: a condition without a field");
  if (Scalar(spec)) {
    out.push_back({field, Op::kEq, spec});
    return Status::Ok();
  }
  if (!spec.is_object() || spec.empty()) {
    return InvalidArgument("filter." + field + ": a value, or {$op: value}");
  }
  for (const auto& [op, value] : spec.items()) {
    std::string where = "filter." + field + "." + op;
    if (op == "$in") {
      if (!value.is_array() || value.empty()) return InvalidArgument(where + ": a non-empty list");
      for (const auto& v : value) {
        if (!Scalar(v)) return InvalidArgument(where + ": list of strings, numbers or booleans");
      }
      out.push_back({field, Op::kIn, value});
      continue;
    }
    static const std::pair<const char*, Op> kOps[] = {{"$eq", Op::kEq}, {"$ne", Op::kNe},
                                                      {"$gt", Op::kGt}, {"$gte", Op::kGte},
                                                      {"$lt", Op::kLt}, {"$lte", Op::kLte}};
    const std::pair<const char*, Op>* found = nullptr;
    for (const auto& o : kOps) found = op == o.first ? &o : found;
    if (found == nullptr) {
      return InvalidArgument(where + ": unknown operator (use $eq $ne $in $gt $gte $lt $lte)");
    }
    bool ordered = found->second != Op::kEq && found->second != Op::kNe;
    if (ordered ? !value.is_number() : !Scalar(value)) {
      return InvalidArgument(where + (ordered ? ": a number" : ": a string, number or boolean"));
    }
    out.push_back({field, found->second, value});
  }
  return Status::Ok();
}

Result<MetadataFilter> MetadataFilter::Parse(const json& filter) {
  MetadataFilter f;
  if (filter.is_null()) return f;
  if (!filter.is_object()) return InvalidArgument("filter must be a mapping");
  for (const auto& [key, value] : filter.items()) {
    if (key != "must") {
      FM_RETURN_IF_ERROR(Add(key, value, f.conditions_));
      continue;
    }
    if (!value.is_array()) return InvalidArgument("filter.must must be a list");
    for (size_t i = 0; i < value.size(); ++i) {
      const json& c = value[i];
      std::string where = "filter.must[" + std::to_string(i) + "]";
      if (!c.is_object() || !c.contains("key") || !c["key"].is_string()) {
        return InvalidArgument(where + ": {key, match | range}");
      }
      std::string field = c["key"].get<std::string>();
      if (c.contains("match")) {
        const json& m = c["match"];
        if (m.is_object() && m.contains("value")) {
          FM_RETURN_IF_ERROR(Add(field, json{{"$eq", m["value"]}}, f.conditions_));
        } else if (m.is_object() && m.contains("any")) {
          FM_RETURN_IF_ERROR(Add(field, json{{"$in", m["any"]}}, f.conditions_));
        } else {
          return InvalidArgument(where + ".match: {value} or {any}");
        }
      } else if (c.contains("range") && c["range"].is_object()) {
        json ops = json::object();
        for (const auto& [op, v] : c["range"].items()) ops["$" + op] = v;
        FM_RETURN_IF_ERROR(Add(field, ops, f.conditions_));
      } else {
        return InvalidArgument(where + ": {key, match | range}");
      }
    }
  }
  return f;
}

bool MetadataFilter::Matches(const json& metadata) const {
  for (const auto& c : conditions_) {
    if (!metadata.is_object()) return false;
    auto it = metadata.find(c.field);
    if (it == metadata.end()) return false;
    const json& v = *it;
    bool ok = false;
    switch (c.op) {
      case Op::kEq: ok = Equal(v, c.value); break;
      case Op::kNe: ok = !Equal(v, c.value); break;
      case Op::kIn:
        for (const auto& option : c.value) ok = ok || Equal(v, option);
        break;
      case Op::kGt: ok = v.is_number() && v.get<double>() > c.value.get<double>(); break;
      case Op::kGte: ok = v.is_number() && v.get<double>() >= c.value.get<double>(); break;
      case Op::kLt: ok = v.is_number() && v.get<double>() < c.value.get<double>(); break;
      case Op::kLte: ok = v.is_number() && v.get<double>() <= c.value.get<double>(); break;
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace flowmesh::vector
