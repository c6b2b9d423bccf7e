#include "spec/internal/task_validator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <string_view>

#include "spec/diagnostics.h"

namespace flowmesh::spec::schema_internal {

using nlohmann::json;

namespace {

std::string Quote(const json& value) { return QuoteValue(value); }

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

bool IsInteger(const json& v) { return v.is_number_integer() || v.is_number_unsigned(); }

double AsDouble(const json& v) {
  if (v.is_number_unsigned()) return static_cast<double>(v.get<uint64_t>());
  if (v.is_number_integer()) return static_cast<double>(v.get<int64_t>());
  return v.get<double>();
}

// "16Gi", "512Mi", "1.5G", "1024" (bytes), or a positive number of bytes.
bool IsMemoryQuantity(const json& v) {
  if (v.is_number()) return std::isfinite(AsDouble(v)) && AsDouble(v) > 0;
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  size_t i = 0, digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  }
  if (digits == 0) return false;
  static const std::set<std::string, std::less<>> kUnits = {
      "",   "K",   "M",   "G",   "T",   "P",   "Ki", "Mi", "Gi", "Ti", "Pi", "k",
      "KB", "MB",  "GB",  "TB",  "PB",  "KiB", "MiB", "GiB", "TiB", "PiB"};
  return kUnits.count(std::string_view(s).substr(i)) > 0;
}

// Quoted scalars ("4", "0.5", "yes") are read as the published parser reads them:
// CoerceNumber and CoerceBool (spec/options.h), shared with the worker.

// "16GiB" -> "16Gi": one spelling of binary units for everything that reads the spec.
void NormaliseMemory(json* v) {
  if (!v->is_string()) return;
  std::string& s = v->get_ref<std::string&>();
  if (s.size() > 3 && s.compare(s.size() - 2, 2, "iB") == 0) s.pop_back();
}

class Validator {
 public:
  explicit Validator(std::vector<SchemaIssue>* out) : out_(out) {}

  void Check(const Schema& s, json& v, const std::string& rel) {
    if (v.is_null()) return;  // an empty value is the same as an absent one
    if (v.is_string() && s.kind != Schema::Kind::kString && s.kind != Schema::Kind::kAny &&
        IsWholeReference(v.get_ref<const std::string&>())) {
      return;  // `${node.path}` keeps the JSON type of what it names; checked at dispatch
    }
    switch (s.kind) {
      case Schema::Kind::kAny:
        return;
      case Schema::Kind::kString:
        return CheckString(s, v, rel);
      case Schema::Kind::kInt:
        CoerceNumber(&v, true);
        if (!IsInteger(v) || !InRange(s, AsDouble(v))) Bad(s, v, rel);
        return;
      case Schema::Kind::kNumber:
        CoerceNumber(&v, false);
        if (!v.is_number() || !std::isfinite(AsDouble(v)) || !InRange(s, AsDouble(v))) {
          Bad(s, v, rel);
        }
        return;
      case Schema::Kind::kBool:
        CoerceBool(&v);
        if (!v.is_boolean()) Bad(s, v, rel);
        return;
      case Schema::Kind::kMemory:
        if (!IsMemoryQuantity(v)) return Bad(s, v, rel);
        NormaliseMemory(&v);
        return;
      case Schema::Kind::kObject:
        if (!v.is_object()) return Bad(s, v, rel);
        return CheckObject(s, v, rel);
      case Schema::Kind::kList:
        if (!v.is_array()) return Bad(s, v, rel);
        for (size_t i = 0; i < v.size(); ++i) Check(*s.item, v[i], JoinIndex(rel, i));
        return;
      case Schema::Kind::kOneOf:
        for (const Schema* option : s.options) {
          if (TypeMatches(*option, v)) return Check(*option, v, rel);
        }
        return Bad(s, v, rel);
      case Schema::Kind::kTagged:
        return CheckTagged(s, v, rel);
      case Schema::Kind::kOption:
        if (auto problem = CheckOption(*s.option, &v, Name(rel))) {
          Issue(rel + problem->at, false, std::move(problem->message));
        }
        return;
    }
  }

 private:
  static std::string Name(const std::string& rel) {
    return rel.empty() ? "the task spec" : rel.substr(1);
  }

  static bool InRange(const Schema& s, double d) {
    if (s.min && (s.min_exclusive ? d <= *s.min : d < *s.min)) return false;
    if (s.max && d > *s.max) return false;
    return true;
  }

  static bool TypeMatches(const Schema& s, const json& v) {
    switch (s.kind) {
      case Schema::Kind::kAny:
        return true;
      case Schema::Kind::kString:
        return v.is_string();
      case Schema::Kind::kInt:
        return IsInteger(v);
      case Schema::Kind::kNumber:
        return v.is_number();
      case Schema::Kind::kBool:
        return v.is_boolean();
      case Schema::Kind::kMemory:
        return v.is_string() || v.is_number();
      case Schema::Kind::kObject:
        return v.is_object() && (s.match_key.empty() || v.contains(s.match_key));
      case Schema::Kind::kTagged:
        return v.is_object();
      case Schema::Kind::kList:
        return v.is_array();
      case Schema::Kind::kOneOf:
        return std::any_of(s.options.begin(), s.options.end(),
                           [&](const Schema* o) { return TypeMatches(*o, v); });
      case Schema::Kind::kOption:
        return true;
    }
    return false;
  }

  void Bad(const Schema& s, const json& v, const std::string& rel) {
    Issue(rel, false, Name(rel) + " must be " + s.what + ", got " + Quote(v));
  }

  void Issue(const std::string& rel, bool at_key, std::string message) {
    out_->push_back(SchemaIssue{rel, at_key, std::move(message)});
  }

  void Warn(const std::string& rel, bool at_key, std::string message) {
    out_->push_back(SchemaIssue{rel, at_key, std::move(message), /*warning=*/true});
  }

  void CheckString(const Schema& s, const json& v, const std::string& rel) {
    if (!v.is_string()) return Bad(s, v, rel);
    if (s.values.empty()) return;
    const std::string& text = v.get_ref<const std::string&>();
    if (std::find(s.values.begin(), s.values.end(), text) != s.values.end()) return;
    if (s.warn_unknown) {
      return Warn(rel, false,
                  Name(rel) + " " + Quote(v) + " is not one of " + Join(s.values, ", ") +
                      DidYouMean(text, s.values) + "; passed to the executor as is");
    }
    Issue(rel, false,
          Name(rel) + " must be one of " + Join(s.values, ", ") + ", got " + Quote(v) +
              DidYouMean(text, s.values));
  }

  void CheckObject(const Schema& s, json& v, const std::string& rel) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      const std::string& key = it.key();
      std::string child = rel + "." + key;
      const Schema* field = nullptr;
      for (const auto& [name, schema] : s.fields) {
        if (name == key) {
          field = schema;
          break;
        }
      }
      if (field != nullptr) {
        Check(*field, *it, child);
      } else if (s.open) {
        if (s.rest != nullptr) Check(*s.rest, *it, child);
      } else if (s.warn_unknown) {
        std::vector<std::string> names;
        for (const auto& f : s.fields) names.push_back(f.first);
        Warn(child, true,
             "unknown key '" + key + "' in " + Name(rel) + s.label + DidYouMean(key, names) +
                 "; kept and passed to the executor as is");
      } else {
        std::vector<std::string> names;
        for (const auto& f : s.fields) names.push_back(f.first);
        Issue(child, true,
              "unknown key '" + key + "' in " + Name(rel) + s.label + DidYouMean(key, names) +
                  "; allowed: " + Join(names, ", "));
      }
    }
    auto present = [&](const std::string& key) {
      auto it = v.find(key);
      return it != v.end() && !it->is_null();
    };
    for (const std::string& key : s.required) {
      if (!present(key)) Issue(rel, false, "missing " + JoinKey(Name(rel), key) + s.label);
    }
    for (const auto& group : s.one_required) {
      if (std::none_of(group.begin(), group.end(), present)) {
        std::vector<std::string> names;
        for (const std::string& key : group) names.push_back(JoinKey(Name(rel), key));
        Issue(rel, false, "missing " + Join(names, " or ") + s.label);
      }
    }
    for (const auto& group : s.exclusive) {
      std::vector<std::string> set;
      for (const std::string& key : group) {
        if (present(key)) set.push_back(key);
      }
      if (set.size() > 1) {
        Issue(rel, false, Name(rel) + " may hold only one of " + Join(group, ", ") + ", got " +
                              Join(set, " and "));
      }
    }
    if (s.rule != nullptr) {
      if (auto problem = s.rule(v)) Issue(rel + "." + problem->key, false, problem->message);
    }
  }

  void CheckTagged(const Schema& s, json& v, const std::string& rel) {
    if (!v.is_object()) return Bad(s, v, rel);
    std::vector<std::string> tags;
    for (const auto& variant : s.variants) tags.push_back(variant.first);
    auto tag = v.find(s.tag);
    if (tag == v.end() || tag->is_null()) {
      if (s.untagged != nullptr) return CheckObject(*s.untagged, v, rel);
      return Issue(rel, false,
                   "missing " + JoinKey(Name(rel), s.tag) + " (one of " + Join(tags, ", ") + ")");
    }
    std::string tag_rel = rel + "." + s.tag;
    if (!tag->is_string()) {
      return Issue(tag_rel, false,
                   Name(tag_rel) + " must be one of " + Join(tags, ", ") + ", got " + Quote(*tag));
    }
    const std::string& value = tag->get_ref<const std::string&>();
    for (const auto& [name, schema] : s.variants) {
      if (name == value) return CheckObject(*schema, v, rel);
    }
    if (s.warn_unknown_tag) {
      return Warn(tag_rel, false,
                  "unknown " + Name(tag_rel) + " " + Quote(*tag) + DidYouMean(value, tags) +
                      " (known: " + Join(tags, ", ") + "); passed to the executor unchecked");
    }
    Issue(tag_rel, false,
          Name(tag_rel) + " must be one of " + Join(tags, ", ") + ", got " + Quote(*tag) +
              DidYouMean(value, tags));
  }

  std::vector<SchemaIssue>* out_;
};

}  // namespace

void Validate(const Schema& schema, json* value, const std::string& rel,
              std::vector<SchemaIssue>* issues) {
  Validator(issues).Check(schema, *value, rel);
}

}  // namespace flowmesh::spec::schema_internal
