#include "spec/internal/n8n_translator.h"

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

bool Translator::IsUpstream(size_t ancestor, size_t n) const {
  std::vector<bool> seen(nodes_.size(), false);
  std::vector<size_t> stack = {n};
  while (!stack.empty()) {
    size_t cur = stack.back();
    stack.pop_back();
    for (const auto& [from, slot] : nodes_[cur].inputs) {
      if (from == ancestor) return true;
      if (!seen[from]) {
        seen[from] = true;
        stack.push_back(from);
        if (++work_ > kMaxWork) return false;
      }
    }
  }
  return false;
}

std::optional<json> Translator::MapExpression(size_t n, std::string_view expr,
                                              std::set<size_t>* extra_deps) const {
  std::optional<ExprSource> src = ParseSource(Trim(expr));
  if (!src.has_value()) return std::nullopt;
  const N8nNode& node = nodes_[n];
  if (src->direct) {
    // A field a Set node assigned on every way in.
    if (!src->path.front().index.has_value() && !node.in_routes.empty()) {
      const json* value = nullptr;
      bool all = true;
      for (const Route& r : node.in_routes) {
        auto f = std::find_if(r.fields.rbegin(), r.fields.rend(), [&](const SetField& g) {
          return g.name == src->path.front().key;
        });
        if (f == r.fields.rend() || (value != nullptr && *value != f->value)) {
          all = false;
          break;
        }
        value = &f->value;
      }
      if (all && value != nullptr) {
        if (consumed_ != nullptr) consumed_->insert(src->path.front().key);
        const json* at = Walk(*value, src->path, 1);
        if (at != nullptr) return *at;
        return std::nullopt;
      }
    }
    std::set<int> tasks;
    for (const Route& r : node.in_routes) tasks.insert(r.task);
    if (tasks.size() != 1 || *tasks.begin() < 0) return std::nullopt;
    std::string path = NativePath(src->path);
    if (path.empty()) return std::nullopt;
    return json("${" + nodes_[static_cast<size_t>(*tasks.begin())].task + "." + path + "}");
  }
  auto it = by_name_.find(src->node);
  if (it == by_name_.end() || !IsUpstream(it->second, n)) return std::nullopt;
  const N8nNode& named = nodes_[it->second];
  if (named.disabled) return std::nullopt;
  if (named.kind == Kind::kSet) {
    for (auto f = named.own_fields.rbegin(); f != named.own_fields.rend(); ++f) {
      if (src->path.front().index.has_value() || f->name != src->path.front().key) continue;
      if (consumed_ != nullptr) consumed_->insert(f->name);
      const json* at = Walk(f->value, src->path, 1);
      if (at != nullptr) return *at;
      return std::nullopt;
    }
    return std::nullopt;
  }
  if (named.task.empty()) return std::nullopt;
  std::string path = NativePath(src->path);
  if (path.empty()) return std::nullopt;
  if (extra_deps != nullptr) extra_deps->insert(it->second);
  return json("${" + named.task + "." + path + "}");
}

json Translator::Resolve(size_t n, const json& value, std::set<size_t>* extra_deps) const {
  if (value.is_object()) {
    json out = json::object();
    for (auto it = value.begin(); it != value.end(); ++it) {
      out[it.key()] = Resolve(n, *it, extra_deps);
    }
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (const json& v : value) out.push_back(Resolve(n, v, extra_deps));
    return out;
  }
  if (!value.is_string()) return value;
  const std::string& s = value.get_ref<const std::string&>();
  if (s.empty() || s[0] != '=') return value;
  std::string_view body = std::string_view(s).substr(1);
  std::string_view whole = Trim(body);
  if (StartsWith(whole, "{{") && whole.size() >= 4 &&
      whole.substr(whole.size() - 2) == "}}" &&
      whole.find("{{", 2) == std::string_view::npos) {
    std::optional<json> mapped =
        MapExpression(n, whole.substr(2, whole.size() - 4), extra_deps);
    if (mapped.has_value()) return *mapped;
  }
  std::string out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t open = body.find("{{", pos);
    if (open == std::string_view::npos) break;
    size_t close = body.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    out += body.substr(pos, open - pos);
    std::optional<json> mapped = MapExpression(n, body.substr(open + 2, close - open - 2),
                                               extra_deps);
    if (mapped.has_value()) {
      out += AsText(*mapped);
    } else {
      out += body.substr(open, close + 2 - open);
    }
    pos = close + 2;
  }
  out += body.substr(pos);
  return json(out);
}

json Translator::Typed(const json& value, const std::string& type) {
  if (!value.is_string()) return value;
  const std::string& s = value.get_ref<const std::string&>();
  if (type == "number" || type == "numberValue") {
    json parsed = ParseLimited(s);
    return parsed.is_number() ? parsed : value;
  }
  if (type == "boolean" || type == "booleanValue") {
    if (s == "true") return true;
    if (s == "false") return false;
    return value;
  }
  if (type == "object" || type == "array" || type == "objectValue" || type == "arrayValue") {
    json parsed = ParseLimited(s);
    return parsed.is_discarded() ? value : parsed;
  }
  return value;
}

void Translator::AddField(size_t n, const json& name, const json& value, const std::string& type,
                          const std::string& path) {
  if (!name.is_string() || name.get_ref<const std::string&>().empty()) {
    diag_->Add(path, "a Set field needs a name");
    return;
  }
  json resolved = Resolve(n, value, nullptr);
  nodes_[n].own_fields.push_back(
      SetField{name.get<std::string>(), Typed(resolved, type), JoinKey(path, "value")});
}

void Translator::ReadSetFields(size_t n) {
  const N8nNode& node = nodes_[n];
  const json& p = node.params;
  std::string base = JoinKey(node.path, "parameters");
  std::string mode = StringAt(p, "mode", "manual");
  if (mode == "raw") {
    const json* raw = Find(p, "jsonOutput");
    json parsed = raw != nullptr ? Typed(Resolve(n, *raw, nullptr), "object") : json();
    if (!parsed.is_object()) {
      diag_->Add(JoinKey(base, "jsonOutput"),
                 "Set node " + Quoted(node.name) + ": jsonOutput must be a JSON object");
      return;
    }
    // The published importer reads a raw Set node by its own name: "Data…" holds the
    // data section, "Resource…" the resources and so on. That applies when no key of the
    // JSON names a section itself.
    std::string section = SectionOfSetNode(node.name);
    bool keys_name_sections = false;
    for (auto it = parsed.begin(); it != parsed.end(); ++it) {
      keys_name_sections = keys_name_sections || !SectionOfSetNode(it.key()).empty();
    }
    if (!section.empty() && !keys_name_sections) {
      nodes_[n].own_fields.push_back(SetField{section, parsed, JoinKey(base, "jsonOutput")});
      return;
    }
    for (auto it = parsed.begin(); it != parsed.end(); ++it) {
      nodes_[n].own_fields.push_back(SetField{it.key(), *it, JoinKey(base, "jsonOutput")});
    }
    return;
  }
  // typeVersion 3.3+: assignments.assignments[{name, value, type}]
  if (const json* a = Find(p, "assignments"); a != nullptr) {
    const json* list = Find(*a, "assignments");
    if (list != nullptr && list->is_array()) {
      for (size_t i = 0; i < list->size(); ++i) {
        const json& item = (*list)[i];
        std::string path = JoinIndex(JoinKey(JoinKey(base, "assignments"), "assignments"), i);
        if (!item.is_object()) continue;
        AddField(n, item.value("name", json()), item.value("value", json()),
                 StringAt(item, "type", "string"), path);
      }
    }
  }
  // typeVersion 3.0-3.2: fields.values[{name, type, stringValue|numberValue|…}]
  if (const json* f = Find(p, "fields"); f != nullptr) {
    const json* list = Find(*f, "values");
    if (list != nullptr && list->is_array()) {
      for (size_t i = 0; i < list->size(); ++i) {
        const json& item = (*list)[i];
        std::string path = JoinIndex(JoinKey(JoinKey(base, "fields"), "values"), i);
        if (!item.is_object()) continue;
        std::string type = StringAt(item, "type", "stringValue");
        AddField(n, item.value("name", json()), item.value(type, json()), type, path);
      }
    }
  }
  // typeVersion 1-2: values.{string,number,boolean}[{name, value}]
  if (const json* v = Find(p, "values"); v != nullptr && v->is_object()) {
    for (const char* type : {"string", "number", "boolean"}) {
      const json* list = Find(*v, type);
      if (list == nullptr || !list->is_array()) continue;
      for (size_t i = 0; i < list->size(); ++i) {
        const json& item = (*list)[i];
        std::string path = JoinIndex(JoinKey(JoinKey(base, "values"), type), i);
        if (!item.is_object()) continue;
        AddField(n, item.value("name", json()), item.value("value", json()), type, path);
      }
    }
  }
}

bool Translator::IsDataFragment(const std::string& name) {
  return StartsWith(name, "Data") || StartsWith(name, "Input") || StartsWith(name, "Format");
}

std::string Translator::SectionOfSetNode(const std::string& name) {
  static const std::vector<std::pair<std::string, std::string>> kNames = {
      {"Data", "Data"},         {"Input", "Data"},          {"Format", "Data"},
      {"Resource", "Resource"}, {"Training", "Training"},   {"Runtime", "Runtime.vllm"},
      {"Omni", "Omni"},         {"Checkpoint", "Checkpoint"}};
  for (const auto& [prefix, fragment] : kNames) {
    if (StartsWith(name, prefix)) return fragment;
  }
  return "";
}

void Translator::ApplyFragment(const SetField& f, json* spec) {
  static const std::vector<std::pair<std::string, std::string>> kPrefixes = {
      {"Data", "data"},         {"Input", "data"},     {"Format", "data"},
      {"Resource", "resources"}, {"Training", "training"}, {"Runtime", "model"},
      {"Omni", "omni"}};
  for (const auto& [prefix, section] : kPrefixes) {
    if (!StartsWith(f.name, prefix)) continue;
    std::string rest = f.name.substr(prefix.size());
    if (rest == "s" || StartsWith(rest, "s.") || StartsWith(rest, "s_") ||
        StartsWith(rest, "s:")) {
      rest = rest.substr(1);
    }
    json& target = (*spec)[section];
    if (!target.is_object()) target = json::object();
    if (!rest.empty() && (rest[0] == '.' || rest[0] == '_' || rest[0] == ':')) {
      json* cur = &target;
      size_t start = 1;
      while (true) {
        size_t dot = rest.find('.', start);
        std::string key = rest.substr(start, dot == std::string::npos ? dot : dot - start);
        if (key.empty()) {
          diag_->Add(f.path, "Set field " + Quoted(f.name) + " has an empty key");
          return;
        }
        if (dot == std::string::npos) {
          (*cur)[key] = f.value;
          return;
        }
        json& next = (*cur)[key];
        if (!next.is_object()) next = json::object();
        cur = &next;
        start = dot + 1;
      }
    }
    if (f.value.is_object()) {
      MergeInto(&target, f.value);
    } else if (section == "data" && (f.value.is_string() || f.value.is_array())) {
      if (!target.contains("type")) target["type"] = "list";
      json& items = target["items"];
      if (!items.is_array()) items = json::array();
      if (f.value.is_array()) {
        for (const json& v : f.value) items.push_back(v);
      } else {
        items.push_back(f.value);
      }
    } else {
      diag_->Add(f.path, "Set field " + Quoted(f.name) + " maps to " + section +
                             " and needs an object value or a key after the prefix (e.g. " +
                             prefix + ".key)");
    }
    return;
  }
}

void Translator::MergeInto(json* base, const json& over) {
  if (!base->is_object() || !over.is_object()) {
    *base = over;
    return;
  }
  for (auto it = over.begin(); it != over.end(); ++it) {
    auto existing = base->find(it.key());
    if (existing != base->end() && existing->is_object() && it->is_object()) {
      MergeInto(&*existing, *it);
    } else {
      (*base)[it.key()] = *it;
    }
  }
}

int Translator::AddCond(json value, std::string error, std::string path) {
  conds_.push_back(Cond{std::move(value), std::move(error), std::move(path)});
  return static_cast<int>(conds_.size()) - 1;
}

void Translator::ReadIf(size_t n) {
  N8nNode& node = nodes_[n];
  std::string base = JoinKey(node.path, "parameters.conditions");
  const json* conds = Find(node.params, "conditions");
  std::string label = "IF node " + Quoted(node.name);
  auto fail = [&](const std::string& path, const std::string& message) {
    diag_->Add(path, label + ": " + message);
  };
  if (conds == nullptr || !conds->is_object()) {
    fail(node.path, "has no conditions");
    return;
  }
  json left, right;
  std::string type, op;
  std::string item_path;
  if (const json* list = Find(*conds, "conditions"); list != nullptr) {  // typeVersion 2
    if (!list->is_array() || list->empty()) {
      fail(JoinKey(base, "conditions"), "has no conditions");
      return;
    }
    if (list->size() > 1) {
      fail(JoinKey(base, "conditions"),
           std::to_string(list->size()) + " conditions combined with '" +
               StringAt(*conds, "combinator", "and") +
               "' cannot be translated; a task condition tests one field (split it into "
               "one IF per test)");
      return;
    }
    const json& c = (*list)[0];
    item_path = JoinIndex(JoinKey(base, "conditions"), 0);
    left = c.value("leftValue", json());
    right = c.value("rightValue", json());
    const json* oper = Find(c, "operator");
    type = oper != nullptr ? StringAt(*oper, "type", "string") : "string";
    op = oper != nullptr ? StringAt(*oper, "operation", "equals") : "equals";
    const json* options = Find(*conds, "options");
    if (type == "string" && options != nullptr && options->value("caseSensitive", true) == false) {
      fail(JoinKey(JoinKey(base, "options"), "caseSensitive"),
           "a case-insensitive comparison cannot be translated (conditions compare exactly)");
      return;
    }
  } else {  // typeVersion 1: {string|number|boolean: [{value1, operation, value2}]}
    size_t count = 0;
    for (const char* t : {"string", "number", "boolean", "dateTime"}) {
      const json* list = Find(*conds, t);
      if (list == nullptr || !list->is_array()) continue;
      for (size_t i = 0; i < list->size(); ++i) {
        if (count++ > 0) continue;
        const json& c = (*list)[i];
        item_path = JoinIndex(JoinKey(base, t), i);
        type = t;
        left = c.value("value1", json());
        right = c.value("value2", json());
        op = StringAt(c, "operation", type == "number" ? "smaller" : "equal");
        if (op == "equal") op = "equals";
        if (type == "boolean" && op == "equals" && c.find("value2") == c.end()) right = false;
      }
    }
    if (count == 0) {
      fail(base, "has no conditions");
      return;
    }
    if (count > 1) {
      fail(base, std::to_string(count) +
                     " conditions cannot be translated; a task condition tests one field "
                     "(split it into one IF per test)");
      return;
    }
  }
  json equals;
  if (op == "equals" && (type == "string" || type == "number" || type == "boolean")) {
    json r = Resolve(n, right, nullptr);
    if (r.is_string() && r.get_ref<const std::string&>().find("{{") != std::string::npos) {
      fail(JoinKey(item_path, "rightValue"),
           "the value compared against must be a constant, got " + AsText(right));
      return;
    }
    equals = Typed(r, type);
    if (type == "number" && !equals.is_number()) {
      fail(JoinKey(item_path, "rightValue"), "expects a number, got " + AsText(right));
      return;
    }
    if (type == "boolean" && !equals.is_boolean()) {
      fail(JoinKey(item_path, "rightValue"), "expects true or false, got " + AsText(right));
      return;
    }
  } else if (type == "boolean" && (op == "true" || op == "false")) {
    equals = op == "true";
  } else {
    fail(JoinKey(item_path, "operator"),
         "operator '" + op + "' on " + type +
             " cannot be translated; a task condition only tests that a field equals a "
             "value (string/number/boolean 'is equal to', boolean 'is true'/'is false')");
    return;
  }
  std::set<size_t> extra;
  json l = Resolve(n, left, &extra);
  std::string ref = l.is_string() ? l.get<std::string>() : "";
  if (!StartsWith(ref, "${") || ref.back() != '}' || ref.find("${", 2) != std::string::npos) {
    fail(JoinKey(item_path, "leftValue"),
         "the tested value must be a field of an upstream task's result, such as "
         "{{ $json.items[0].output }}, got " +
             AsText(left));
    return;
  }
  AddIfConds(&node, ref, equals, label);
}

void Translator::AddIfConds(N8nNode* node_ptr, const std::string& ref, const json& equals,
                            const std::string& label) {
  N8nNode& node = *node_ptr;
  std::string inner = ref.substr(2, ref.size() - 3);
  size_t dot = inner.find('.');
  std::string field = inner.substr(dot + 1);
  std::string dotted;  // items[0].output -> items.0.output
  for (char c : field) {
    if (c == '[') {
      dotted += '.';
    } else if (c != ']') {
      dotted += c;
    }
  }
  json value = {{"node", inner.substr(0, dot)}, {"field", dotted}, {"equals", equals}};
  node.cond_true = AddCond(value, "", "");
  if (equals.is_boolean()) {
    json negated = value;
    negated["equals"] = !equals.get<bool>();
    node.cond_false = AddCond(negated, "", "");
  } else {
    node.cond_false = AddCond(
        json(), label + ": its false branch (output 1) cannot be translated: a condition "
                        "can only test that " + dotted + " equals " + equals.dump() +
                        ", not that it differs",
        node.path);
  }
}

}  // namespace flowmesh::spec::n8n_internal
