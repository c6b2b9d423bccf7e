// Paths, references, conditions and PrepareTaskSpec.
#include "dataflow/dataflow.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "dataflow/internal.h"

namespace flowmesh::dataflow {
namespace internal {

std::string JoinIndex(const std::string& where, size_t i) {
  return fmt::format("{}[{}]", where, i);
}

std::string JoinKey(const std::string& where, std::string_view key) {
  return where.empty() ? std::string(key) : fmt::format("{}.{}", where, key);
}

std::string TextOf(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

}  // namespace internal

namespace {

using nlohmann::json;
using namespace internal;

struct Segment {
  std::string text;
  bool bracket = false;  // written `[i]`
};

Result<std::vector<Segment>> ParsePath(std::string_view path) {
  std::vector<Segment> segs;
  if (path.empty()) return segs;
  auto bad = [&](std::string_view why) {
    return InvalidArgument(fmt::format("malformed path '{}': {}", path, why));
  };
  size_t i = 0;
  bool expect_key = true;  // at the start or after '.'
  while (i < path.size()) {
    char c = path[i];
    if (c == '[') {
      size_t close = path.find(']', i);
      if (close == std::string_view::npos) return bad("'[' without ']'");
      std::string_view inner = path.substr(i + 1, close - i - 1);
      bool digits = !inner.empty() && std::all_of(inner.begin(), inner.end(), [](char d) {
        return d >= '0' && d <= '9';
      });
      if (!digits && inner != "*") return bad(fmt::format("'[{}]' is not an array index", inner));
      if (expect_key && !segs.empty()) return bad("empty segment before '['");
      segs.push_back(Segment{std::string(inner), true});
      i = close + 1;
      expect_key = false;
      if (i < path.size() && path[i] != '.' && path[i] != '[') {
        return bad("expected '.' or '[' after ']'");
      }
      continue;
    }
    if (c == '.') {
      if (expect_key) return bad("empty segment");
      expect_key = true;
      ++i;
      if (i == path.size()) return bad("ends with '.'");
      continue;
    }
    size_t end = path.find_first_of(".[", i);
    if (end == std::string_view::npos) end = path.size();
    if (!expect_key) return bad("expected '.' or '['");
    segs.push_back(Segment{std::string(path.substr(i, end - i)), false});
    expect_key = false;
    i = end;
  }
  return segs;
}

std::string ShowPath(const std::vector<Segment>& segs, size_t n) {
  std::string out;
  for (size_t k = 0; k < n; ++k) {
    if (segs[k].bracket) {
      out += "[" + segs[k].text + "]";
    } else {
      if (!out.empty()) out += '.';
      out += segs[k].text;
    }
  }
  return out;
}

std::optional<size_t> ParseIndex(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  return v;
}

std::string TypeName(const json& v) {
  if (v.is_number()) return "number";
  return v.type_name();
}

Result<json> Walk(const json& cur, const std::vector<Segment>& segs, size_t k,
                  std::string_view path) {
  if (k == segs.size()) return cur;
  const Segment& seg = segs[k];
  std::string at = ShowPath(segs, k);
  std::string in = at.empty() ? "at the top level" : fmt::format("in '{}'", at);
  if (cur.is_array()) {
    if (seg.text == "*") {
      json out = json::array();
      for (const json& el : cur) {
        FM_ASSIGN_OR_RETURN(json v, Walk(el, segs, k + 1, path));
        out.push_back(std::move(v));
      }
      return out;
    }
    auto index = ParseIndex(seg.text);
    if (!index) {
      return NotFound(fmt::format("path '{}': '{}' is not an index into the array {}", path,
                                  seg.text, in));
    }
    if (*index >= cur.size()) {
      return NotFound(fmt::format("path '{}': index {} out of range {} ({} elements)", path,
                                  *index, in, cur.size()));
    }
    return Walk(cur[*index], segs, k + 1, path);
  }
  if (cur.is_object() && !seg.bracket) {
    auto it = cur.find(seg.text);
    if (it == cur.end()) {
      return NotFound(fmt::format("path '{}': no field '{}' {}", path, seg.text, in));
    }
    return Walk(*it, segs, k + 1, path);
  }
  return NotFound(fmt::format("path '{}': cannot look up '{}' in {} {}", path,
                              seg.bracket ? "[" + seg.text + "]" : seg.text, TypeName(cur), in));
}

bool IsNodeNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

std::string KnownNodes(const Upstream& up) {
  std::string out;
  for (const auto& [name, result] : up) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out.empty() ? "none" : out;
}

bool IsSkipped(const json& result) {
  return result.is_object() && result.size() == 1 && result.value("skipped", false) == true;
}

// One `${...}` found in a string: the node name and the path after it.
struct Ref {
  std::string node;
  std::string path;
};

// Whether `inner` (the text between `${` and `}`) is a reference to resolve. `${HOME}`
// (no dot or index, not a node) and text that does not start with a node name are not.
std::optional<Ref> ParseRef(std::string_view inner, const Upstream& up) {
  size_t cut = inner.find_first_of(".[");
  std::string_view node = inner.substr(0, cut);
  if (node.empty() || !std::all_of(node.begin(), node.end(), IsNodeNameChar)) {
    return std::nullopt;
  }
  if (cut == std::string_view::npos) {
    if (up.count(std::string(node)) == 0) return std::nullopt;
    return Ref{std::string(node), ""};
  }
  std::string_view path = inner.substr(cut);
  if (path.size() > 1 && path.front() == '.') path.remove_prefix(1);  // `${a.}` stays malformed
  return Ref{std::string(node), std::string(path)};
}

bool NumbersEqual(const json& a, const json& b) {
  if (a.is_number_integer() && b.is_number_integer()) {
    // Both integers: compare exactly (sign-aware).
    if (a.is_number_unsigned() && b.is_number_unsigned()) {
      return a.get<uint64_t>() == b.get<uint64_t>();
    }
    if (a.is_number_unsigned() || b.is_number_unsigned()) {
      const json& u = a.is_number_unsigned() ? a : b;
      const json& s = a.is_number_unsigned() ? b : a;
      return s.get<int64_t>() >= 0 &&
             static_cast<uint64_t>(s.get<int64_t>()) == u.get<uint64_t>();
    }
    return a.get<int64_t>() == b.get<int64_t>();
  }
  double x = a.get<double>();
  double y = b.get<double>();
  return x == y || std::fabs(x - y) <= 1e-9 * std::max({1.0, std::fabs(x), std::fabs(y)});
}

std::optional<bool> BoolFromString(const json& v) {
  if (!v.is_string()) return std::nullopt;
  std::string s = v.get<std::string>();
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s == "true") return true;
  if (s == "false") return false;
  return std::nullopt;
}

bool LooselyEqual(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return NumbersEqual(a, b);
  if (a.is_boolean() && b.is_string()) return BoolFromString(b) == a.get<bool>();
  if (a.is_string() && b.is_boolean()) return BoolFromString(a) == b.get<bool>();
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!LooselyEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !LooselyEqual(*it, *other)) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace

namespace internal {

Result<json> LookupUpstream(const Upstream& up, const std::string& node, std::string_view path,
                            const std::string& what, const std::string& where, bool* missing) {
  auto it = up.find(node);
  if (it == up.end()) {
    return InvalidArgument(fmt::format("{} at {}: node '{}' is not an upstream result (known: {})",
                                       what, where, node, KnownNodes(up)));
  }
  Result<json> value = LookupPath(it->second, path);
  if (value.ok()) return value;
  if (value.status().code() == StatusCode::kNotFound && missing != nullptr) {
    *missing = true;
    return json();
  }
  std::string skipped =
      IsSkipped(it->second) ? fmt::format(" (node '{}' was skipped)", node) : std::string();
  return InvalidArgument(
      fmt::format("{} at {}: {}{}", what, where, value.status().message(), skipped));
}

Result<json> ResolveString(const std::string& s, const Upstream& up, const std::string& where,
                           bool escape_braces) {
  // The whole string is one reference: keep the referenced value's type.
  if (!escape_braces && s.size() > 3 && s.compare(0, 2, "${") == 0 && s.back() == '}' &&
      s.find('}') == s.size() - 1) {
    if (auto ref = ParseRef(std::string_view(s).substr(2, s.size() - 3), up)) {
      return LookupUpstream(up, ref->node, ref->path, "reference " + s, where);
    }
  }
  if (s.find("${") == std::string::npos) return json(s);
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    size_t start = s.find("${", pos);
    if (start == std::string::npos) {
      out.append(s, pos, std::string::npos);
      break;
    }
    if (start > 0 && s[start - 1] == '$') {  // `$${` → literal `${`
      out.append(s, pos, start - 1 - pos);
      out += "${";
      pos = start + 2;
      continue;
    }
    out.append(s, pos, start - pos);
    size_t end = s.find('}', start + 2);
    if (end == std::string::npos) {
      out.append(s, start, std::string::npos);
      break;
    }
    std::string text = s.substr(start, end - start + 1);
    auto ref = ParseRef(std::string_view(text).substr(2, text.size() - 3), up);
    if (!ref) {
      out += text;
    } else {
      FM_ASSIGN_OR_RETURN(json v, LookupUpstream(up, ref->node, ref->path, "reference " + text,
                                                 where));
      std::string sub = TextOf(v);
      if (escape_braces) {
        for (char c : sub) {
          out += c;
          if (c == '{' || c == '}') out += c;
        }
      } else {
        out += sub;
      }
    }
    pos = end + 1;
  }
  return json(std::move(out));
}

Result<json> ResolveAt(const json& value, const Upstream& up, const std::string& where) {
  if (value.is_string()) {
    return ResolveString(value.get_ref<const std::string&>(), up, where, false);
  }
  if (value.is_array()) {
    json out = json::array();
    for (size_t i = 0; i < value.size(); ++i) {
      FM_ASSIGN_OR_RETURN(json v, ResolveAt(value[i], up, JoinIndex(where, i)));
      out.push_back(std::move(v));
    }
    return out;
  }
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      FM_ASSIGN_OR_RETURN(json v, ResolveAt(*it, up, JoinKey(where, it.key())));
      out[it.key()] = std::move(v);
    }
    return out;
  }
  return value;
}

}  // namespace internal

Result<json> LookupPath(const json& root, std::string_view path) {
  FM_ASSIGN_OR_RETURN(std::vector<Segment> segs, ParsePath(path));
  return Walk(root, segs, 0, path);
}

Result<json> ResolveReferences(const json& spec, const Upstream& up) {
  return ResolveAt(spec, up, "spec");
}

Result<bool> ConditionMet(const spec::Condition& condition, const Upstream& up) {
  auto result = up.find(condition.node);
  if (result == up.end()) {
    return InvalidArgument(fmt::format("condition.node: node '{}' is not an upstream result "
                                       "(known: {})",
                                       condition.node, KnownNodes(up)));
  }
  Result<json> value = LookupPath(result->second, condition.field);
  if (!value.ok()) {
    if (value.status().code() == StatusCode::kNotFound) return false;
    return InvalidArgument("condition.field: " + value.status().message());
  }
  return LooselyEqual(*value, condition.equals);
}

Result<bool> ConditionMet(const json& condition, const Upstream& up) {
  FM_ASSIGN_OR_RETURN(spec::Condition cond, spec::ParseCondition(condition));
  return ConditionMet(cond, up);
}

Result<json> MaterializeData(const json& data, const Upstream& up, const DataOptions& opts) {
  return MaterializeDataAt(data, up, opts, "data");
}

Result<json> PrepareTaskSpec(const json& spec, const Upstream& up, const DataOptions& opts) {
  if (!spec.is_object()) return ResolveReferences(spec, up);
  json out = json::object();
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    if (it.key() == "data" && !it->is_null()) {
      FM_ASSIGN_OR_RETURN(out["data"], MaterializeDataAt(*it, up, opts, "spec.data"));
    } else {
      FM_ASSIGN_OR_RETURN(out[it.key()], ResolveAt(*it, up, JoinKey("spec", it.key())));
    }
  }
  return out;
}

}  // namespace flowmesh::dataflow
