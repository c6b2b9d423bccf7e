#include "spec/internal/n8n_common.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "spec/diagnostics.h"
#include "spec/source_doc.h"

namespace flowmesh::spec::n8n_internal {

Kind KindOf(const std::string& type) {
  static const std::unordered_map<std::string, Kind> kKinds = {
      {"n8n-nodes-base.manualTrigger", Kind::kTrigger},
      {"n8n-nodes-base.webhook", Kind::kTrigger},
      {"n8n-nodes-base.scheduleTrigger", Kind::kTrigger},
      {"n8n-nodes-base.start", Kind::kTrigger},
      {"n8n-nodes-base.stickyNote", Kind::kNote},
      {"n8n-nodes-base.set", Kind::kSet},
      {"n8n-nodes-base.if", Kind::kIf},
      {"n8n-nodes-base.httpRequest", Kind::kHttp},
      {"@n8n/n8n-nodes-langchain.chainLlm", Kind::kChainLlm},
      {"@n8n/n8n-nodes-langchain.lmOpenHuggingFaceInference", Kind::kHfModel},
      {"@n8n/n8n-nodes-langchain.lmChatOpenAi", Kind::kOpenAiChatModel},
      {"@n8n/n8n-nodes-langchain.openAi", Kind::kOpenAi},
      {"n8n-nodes-base.openAi", Kind::kOpenAi},
  };
  auto it = kKinds.find(type);
  return it == kKinds.end() ? Kind::kUnsupported : it->second;
}

const std::vector<std::string>& SupportedTypes() {
  static const std::vector<std::string> kTypes = {
      "n8n-nodes-base.manualTrigger",
      "n8n-nodes-base.webhook",
      "n8n-nodes-base.scheduleTrigger",
      "n8n-nodes-base.start",
      "n8n-nodes-base.set",
      "n8n-nodes-base.if",
      "n8n-nodes-base.httpRequest",
      "n8n-nodes-base.openAi",
      "@n8n/n8n-nodes-langchain.chainLlm",
      "@n8n/n8n-nodes-langchain.lmOpenHuggingFaceInference",
      "@n8n/n8n-nodes-langchain.lmChatOpenAi",
      "@n8n/n8n-nodes-langchain.openAi",
  };
  return kTypes;
}

std::string_view ShortType(std::string_view type) {
  size_t dot = type.rfind('.');
  return dot == std::string_view::npos ? type : type.substr(dot + 1);
}

std::string SuggestType(const std::string& type) {
  std::string_view word = ShortType(type);
  if (word.size() > 128) return "";
  const std::string* best = nullptr;
  size_t best_distance = SIZE_MAX;
  for (const std::string& candidate : SupportedTypes()) {
    size_t d = EditDistance(word, ShortType(candidate));
    if (d < best_distance) {
      best_distance = d;
      best = &candidate;
    }
  }
  if (best == nullptr ||
      best_distance > std::max<size_t>(1, word.size() / 4)) {
    return "";
  }
  return " (did you mean '" + *best + "'?)";
}

bool IsTaskKind(Kind k) {
  return k == Kind::kChainLlm || k == Kind::kOpenAi || k == Kind::kHttp;
}

bool IsModelKind(Kind k) { return k == Kind::kHfModel || k == Kind::kOpenAiChatModel; }

std::string Quoted(const std::string& s) {
  return "'" + (s.size() > 200 ? s.substr(0, 200) + "..." : s) + "'";
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += sep;
    out += items[i];
  }
  return out;
}

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
}

std::string Slug(const std::string& name, std::string_view fallback) {
  std::string out;
  for (char c : name) {
    if (IsNameChar(c) && static_cast<unsigned char>(c) < 0x80) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
    if (out.size() >= kMaxName - 8) break;
  }
  while (!out.empty() && (out.back() == '-' || out.back() == '_')) out.pop_back();
  if (out.empty() || !std::isalnum(static_cast<unsigned char>(out[0]))) {
    out = std::string(fallback) + (out.empty() ? "" : "-" + out);
  }
  return out;
}

const json* Find(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

std::string StringAt(const json& object, const char* key, const std::string& fallback) {
  const json* v = Find(object, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : fallback;
}

std::string LocatorValue(const json* v) {
  if (v == nullptr) return "";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) return StringAt(*v, "value");
  return "";
}

bool IsIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$';
}

bool ParsePath(std::string_view s, std::vector<Segment>* out) {
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '.') {
      size_t start = ++i;
      while (i < s.size() && IsIdentChar(s[i])) ++i;
      if (i == start) return false;
      out->push_back(Segment{std::string(s.substr(start, i - start)), std::nullopt});
    } else if (s[i] == '[') {
      ++i;
      if (i < s.size() && (s[i] == '"' || s[i] == '\'')) {
        char quote = s[i++];
        size_t end = s.find(quote, i);
        if (end == std::string_view::npos || end + 1 >= s.size() || s[end + 1] != ']') return false;
        out->push_back(Segment{std::string(s.substr(i, end - i)), std::nullopt});
        i = end + 2;
      } else {
        size_t start = i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        if (i == start || i - start > 9 || i >= s.size() || s[i] != ']') return false;
        out->push_back(Segment{"", std::stoul(std::string(s.substr(start, i - start)))});
        ++i;
      }
    } else {
      return false;
    }
  }
  return true;
}

std::string NativePath(const std::vector<Segment>& path) {
  std::string out;
  for (const Segment& seg : path) {
    if (seg.index.has_value()) {
      if (out.empty()) return "";  // a reference starts with a key
      out += "[" + std::to_string(*seg.index) + "]";
      continue;
    }
    if (seg.key.empty() || !std::all_of(seg.key.begin(), seg.key.end(), IsNameChar)) return "";
    if (!out.empty()) out += '.';
    out += seg.key;
  }
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

std::optional<ExprSource> ParseSource(std::string_view e) {
  ExprSource src;
  std::string_view rest;
  if (StartsWith(e, "$json")) {
    src.direct = true;
    rest = e.substr(5);
  } else if (StartsWith(e, "$input.")) {
    src.direct = true;
    rest = e.substr(6);
    for (std::string_view acc : {".item.json", ".first().json", ".last().json"}) {
      if (StartsWith(rest, acc)) {
        rest = rest.substr(acc.size());
        goto parsed;
      }
    }
    return std::nullopt;
  } else if (StartsWith(e, "$(") || StartsWith(e, "$node[")) {
    bool call = e[1] == '(';
    size_t i = call ? 2 : 6;
    if (i >= e.size() || (e[i] != '\'' && e[i] != '"')) return std::nullopt;
    char quote = e[i++];
    size_t end = e.find(quote, i);
    if (end == std::string_view::npos || end + 1 >= e.size()) return std::nullopt;
    if (e[end + 1] != (call ? ')' : ']')) return std::nullopt;
    src.node = std::string(e.substr(i, end - i));
    rest = e.substr(end + 2);
    const std::vector<std::string_view> accessors =
        call ? std::vector<std::string_view>{".item.json", ".first().json", ".last().json"}
             : std::vector<std::string_view>{".json"};
    for (std::string_view acc : accessors) {
      if (StartsWith(rest, acc)) {
        rest = rest.substr(acc.size());
        goto parsed;
      }
    }
    return std::nullopt;
  } else {
    return std::nullopt;
  }
parsed:
  if (!ParsePath(rest, &src.path) || src.path.empty()) return std::nullopt;
  return src;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

const json* Walk(const json& value, const std::vector<Segment>& path, size_t from) {
  const json* cur = &value;
  for (size_t i = from; i < path.size(); ++i) {
    if (path[i].index.has_value()) {
      if (!cur->is_array() || *path[i].index >= cur->size()) return nullptr;
      cur = &(*cur)[*path[i].index];
    } else {
      if (!cur->is_object()) return nullptr;
      auto it = cur->find(path[i].key);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    }
  }
  return cur;
}

json ParseLimited(const std::string& s) {
  constexpr int kMaxDepth = 64;
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return json(json::value_t::discarded);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return json::parse(s, nullptr, false);
}

std::string AsText(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace flowmesh::spec::n8n_internal
