// Filters over the metadata of collection entries (JSON objects), in a small typed form
// parsed once and evaluated per entry:
//
//   {"lang": "en"}                          equality (strings, numbers, booleans)
//   {"year": {"$gte": 2020, "$lt": 2024}}   ranges on numbers ($gt $gte $lt $lte)
//   {"tag": {"$in": ["a", "b"]}}            membership; {"$ne": x} inequality
//   {"must": [{"key": "lang", "match": {"value": "en"}},
//             {"key": "year", "range": {"gte": 2020}}]}   Qdrant's form, the same meaning
//
// Every condition must hold. A field that is absent fails every condition on it.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/status.h"

namespace flowmesh::vector {

class MetadataFilter {
 public:
  // InvalidArgument naming the field and operator that cannot be read.
  static Result<MetadataFilter> Parse(const nlohmann::json& filter);
  bool Matches(const nlohmann::json& metadata) const;
  bool empty() const { return conditions_.empty(); }

 private:
  enum class Op { kEq, kNe, kIn, kGt, kGte, kLt, kLte };
  struct Condition {
    std::string field;
    Op op;
    nlohmann::json value;  // a scalar, or a list for kIn
  };
  static Status Add(const std::string& field, const nlohmann::json& spec,
                    std::vector<Condition>& out);
  std::vector<Condition> conditions_;
};

}  // namespace flowmesh::vector
