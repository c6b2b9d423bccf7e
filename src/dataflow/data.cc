// MaterializeData: every `data` type becomes `{type: list, source_type, items}`.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "dataflow/dataflow.h"
#include "dataflow/internal.h"

namespace flowmesh::dataflow::internal {
namespace {

constexpr const char* kKnownTypes = "list, graph_template, dataframe, dataset";

// Built-in named text templates for graph_template `template.name`.
const std::map<std::string, std::string>& BuiltinTemplates() {
  static const auto* templates = new std::map<std::string, std::string>{
      {"qa", "Question: {question}\nAnswer:"},
      {"summarize", "Summarize the following text:\n{text}"},
      {"classify", "Classify: {text}\nLabels: {labels}"},
  };
  return *templates;
}

std::string KnownTemplateNames() {
  std::string out;
  for (const auto& [name, text] : BuiltinTemplates()) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// A text with `{label}` slots, parsed once and filled per row.
struct SlotText {
  struct Piece {
    bool slot = false;
    std::string text;  // literal text, or the slot's label
  };
  std::vector<Piece> pieces;

  std::string Fill(const std::map<std::string, json>& row) const {
    std::string out;
    for (const Piece& p : pieces) out += p.slot ? TextOf(row.at(p.text)) : p.text;
    return out;
  }
};

Result<SlotText> ParseSlots(const std::string& text, const std::vector<std::string>& labels,
                            const std::string& where) {
  SlotText out;
  std::string literal;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '{' && i + 1 < text.size() && text[i + 1] == '{') {
      literal += '{';
      ++i;
    } else if (c == '}' && i + 1 < text.size() && text[i + 1] == '}') {
      literal += '}';
      ++i;
    } else if (c == '}') {
      return InvalidArgument(
          fmt::format("{}: single '}}' at offset {} (write '}}}}' for a literal brace)", where, i));
    } else if (c == '{') {
      size_t close = text.find_first_of("{}", i + 1);
      if (close == std::string::npos || text[close] != '}') {
        return InvalidArgument(fmt::format(
            "{}: '{{' at offset {} has no closing '}}' (write '{{{{' for a literal brace)", where,
            i));
      }
      std::string label = text.substr(i + 1, close - i - 1);
      if (std::find(labels.begin(), labels.end(), label) == labels.end()) {
        return InvalidArgument(fmt::format("{}: slot {{{}}} has no column (columns: {})", where,
                                           label, labels.empty() ? "none" : Join(labels)));
      }
      if (!literal.empty()) out.pieces.push_back({false, std::move(literal)});
      literal.clear();
      out.pieces.push_back({true, std::move(label)});
      i = close;
    } else {
      literal += c;
    }
  }
  if (!literal.empty()) out.pieces.push_back({false, std::move(literal)});
  return out;
}

// A chat message list whose string contents have `{label}` slots.
struct SlotMessages {
  json messages;                       // the template, contents as given
  std::vector<std::optional<SlotText>> contents;  // parsed string contents

  json Fill(const std::map<std::string, json>& row) const {
    json out = messages;
    for (size_t i = 0; i < contents.size(); ++i) {
      if (contents[i]) out[i]["content"] = contents[i]->Fill(row);
    }
    return out;
  }
};

Status CheckChatMessages(const json& messages, const std::string& where) {
  if (!messages.is_array() || messages.empty()) {
    return InvalidArgument(where +
                           ": a chat message list must be a non-empty list of {role, content}");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content")) {
      return InvalidArgument(JoinIndex(where, i) + ": a chat message needs role and content");
    }
  }
  return Status::Ok();
}

Result<SlotMessages> ParseSlotMessages(const json& messages, const Upstream& up,
                                       const std::vector<std::string>& labels,
                                       const std::string& where) {
  FM_RETURN_IF_ERROR(CheckChatMessages(messages, where));
  SlotMessages out;
  out.messages = messages;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& content = messages[i]["content"];
    std::string content_where = JoinIndex(where, i) + ".content";
    if (!content.is_string()) {
      FM_ASSIGN_OR_RETURN(out.messages[i]["content"], ResolveAt(content, up, content_where));
      out.contents.emplace_back();
      continue;
    }
    FM_ASSIGN_OR_RETURN(json text,
                        ResolveString(content.get<std::string>(), up, content_where, true));
    FM_ASSIGN_OR_RETURN(SlotText slots, ParseSlots(text.get<std::string>(), labels, content_where));
    out.contents.emplace_back(std::move(slots));
  }
  return out;
}

// Named values, each a list (one per row) or a scalar (the same in every row).
struct Columns {
  std::vector<std::string> labels;
  std::vector<json> values;
  std::vector<bool> is_list;

  // Rows = the common length of the list columns, or 1 when there is none.
  Result<size_t> RowCount(const std::string& where) const {
    std::optional<size_t> n;
    bool mismatch = false;
    for (size_t i = 0; i < labels.size(); ++i) {
      if (!is_list[i]) continue;
      if (n && *n != values[i].size()) mismatch = true;
      if (!n) n = values[i].size();
    }
    if (mismatch) {
      std::vector<std::string> parts;
      for (size_t i = 0; i < labels.size(); ++i) {
        if (is_list[i]) parts.push_back(fmt::format("{}={}", labels[i], values[i].size()));
      }
      return InvalidArgument(fmt::format(
          "{}: list columns must have the same length to broadcast, got {}", where, Join(parts)));
    }
    return n.value_or(1);
  }

  std::map<std::string, json> Row(size_t r) const {
    std::map<std::string, json> row;
    for (size_t i = 0; i < labels.size(); ++i) {
      row[labels[i]] = is_list[i] ? values[i][r] : values[i];
    }
    return row;
  }
};

Status CheckRows(size_t rows, const DataOptions& opts, const std::string& where) {
  if (rows > opts.max_rows) {
    return TooLarge(
        fmt::format("{}: {} rows exceed max_rows ({})", where, rows, opts.max_rows));
  }
  return Status::Ok();
}

// The value of one graph_template column.
Result<json> ColumnValue(const json& col, const Upstream& up, const std::string& where) {
  std::string node;
  std::string path;
  std::string what;
  if (auto expr = col.find("expr"); expr != col.end()) {
    if (!expr->is_string() || expr->get<std::string>().empty()) {
      return InvalidArgument(where + ".expr must be a ${node.path} expression or a dot path");
    }
    std::string e = expr->get<std::string>();
    bool whole = e.size() > 3 && e.compare(0, 2, "${") == 0 && e.back() == '}' &&
                 e.find('}') == e.size() - 1;
    if (!whole && e.find("${") != std::string::npos) {
      // Text with embedded references: a scalar string.
      return ResolveString(e, up, where + ".expr", false);
    }
    std::string inner = whole ? e.substr(2, e.size() - 3) : e;
    size_t cut = inner.find_first_of(".[");
    node = inner.substr(0, cut);
    if (cut != std::string::npos) path = inner.substr(inner[cut] == '.' ? cut + 1 : cut);
    what = "expr '" + e + "'";
  } else if (auto n = col.find("node"); n != col.end()) {
    if (!n->is_string() || n->get<std::string>().empty()) {
      return InvalidArgument(where + ".node must name an upstream node");
    }
    node = n->get<std::string>();
    if (auto p = col.find("path"); p != col.end() && !p->is_null()) {
      if (!p->is_string()) return InvalidArgument(where + ".path must be a dot path string");
      path = p->get<std::string>();
    }
    what = path.empty() ? "node '" + node + "'" : "node '" + node + "' path '" + path + "'";
  } else if (auto v = col.find("value"); v != col.end()) {
    return ResolveAt(*v, up, where + ".value");
  } else if (auto d = col.find("data"); d != col.end()) {  // the published spelling of value
    return ResolveAt(*d, up, where + ".data");
  } else if (auto d = col.find("default"); d != col.end()) {
    return *d;
  } else {
    return InvalidArgument(where + ": a column needs expr, node (+ path), value or default");
  }
  bool missing = false;
  FM_ASSIGN_OR_RETURN(json value, LookupUpstream(up, node, path, what, where, &missing));
  if (!missing && !value.is_null()) return value;
  if (auto d = col.find("default"); d != col.end()) return *d;
  if (missing) {
    Result<json> again = LookupUpstream(up, node, path, what, where);
    return InvalidArgument(again.status().message() + " and the column has no default");
  }
  return InvalidArgument(fmt::format("{}: {} is null and the column has no default", where, what));
}

Result<Columns> TemplateColumns(const json& columns, const Upstream& up,
                                const std::string& where) {
  Columns out;
  if (columns.is_null()) return out;
  if (!columns.is_array()) {
    return InvalidArgument(where + " must be a list of {label, expr | node+path, default}");
  }
  for (size_t i = 0; i < columns.size(); ++i) {
    std::string col_where = JoinIndex(where, i);
    const json& col = columns[i];
    if (!col.is_object()) {
      return InvalidArgument(col_where + " must be an object {label, expr | node+path, default}");
    }
    auto label = col.find("label");
    if (label == col.end() || !label->is_string() || label->get<std::string>().empty()) {
      return InvalidArgument(col_where + ".label must be a non-empty string");
    }
    std::string name = label->get<std::string>();
    if (std::find(out.labels.begin(), out.labels.end(), name) != out.labels.end()) {
      return InvalidArgument(fmt::format("{}.label: duplicate column '{}'", col_where, name));
    }
    FM_ASSIGN_OR_RETURN(json value, ColumnValue(col, up, col_where));
    bool broadcast = true;
    if (auto b = col.find("broadcast"); b != col.end()) {
      if (!b->is_boolean()) return InvalidArgument(col_where + ".broadcast must be a boolean");
      broadcast = b->get<bool>();
    }
    out.is_list.push_back(broadcast && value.is_array());
    out.labels.push_back(std::move(name));
    out.values.push_back(std::move(value));
  }
  return out;
}

// Builds one item per row from `text` or `messages` with `{label}` slots.
Result<json> FillRows(const Columns& columns, const json* text, const json* messages,
                      const Upstream& up, const DataOptions& opts, const std::string& text_where,
                      const std::string& messages_where, const std::string& where) {
  std::optional<SlotText> slot_text;
  std::optional<SlotMessages> slot_messages;
  if (text != nullptr) {
    if (!text->is_string()) return InvalidArgument(text_where + " must be a string");
    FM_ASSIGN_OR_RETURN(json resolved,
                        ResolveString(text->get<std::string>(), up, text_where, true));
    FM_ASSIGN_OR_RETURN(slot_text, ParseSlots(resolved.get<std::string>(), columns.labels,
                                              text_where));
  } else {
    FM_ASSIGN_OR_RETURN(slot_messages,
                        ParseSlotMessages(*messages, up, columns.labels, messages_where));
  }
  FM_ASSIGN_OR_RETURN(size_t rows, columns.RowCount(where));
  FM_RETURN_IF_ERROR(CheckRows(rows, opts, where));
  json items = json::array();
  for (size_t r = 0; r < rows; ++r) {
    auto row = columns.Row(r);
    items.push_back(slot_text ? json(slot_text->Fill(row)) : slot_messages->Fill(row));
  }
  return items;
}

Result<json> GraphTemplateItems(const json& data, const Upstream& up, const DataOptions& opts,
                                const std::string& where) {
  std::string twhere = where + ".template";
  auto tmpl = data.find("template");
  if (tmpl == data.end() || !tmpl->is_object()) {
    return InvalidArgument(twhere + " must be an object {name | text | messages, columns}");
  }
  const json* text = nullptr;
  const json* messages = nullptr;
  json builtin;
  int given = 0;
  if (auto t = tmpl->find("text"); t != tmpl->end()) text = &*t, ++given;
  if (auto m = tmpl->find("messages"); m != tmpl->end()) messages = &*m, ++given;
  if (auto n = tmpl->find("name"); n != tmpl->end()) {
    ++given;
    if (!n->is_string()) return InvalidArgument(twhere + ".name must be a string");
    auto it = BuiltinTemplates().find(n->get<std::string>());
    if (it == BuiltinTemplates().end()) {
      return InvalidArgument(fmt::format("{}.name: unknown template '{}' (known: {})", twhere,
                                         n->get<std::string>(), KnownTemplateNames()));
    }
    builtin = it->second;
    text = &builtin;
  }
  if (given != 1) {
    return InvalidArgument(twhere + " needs exactly one of name, text, messages");
  }
  auto cols = tmpl->find("columns");
  FM_ASSIGN_OR_RETURN(Columns columns,
                      TemplateColumns(cols == tmpl->end() ? json() : *cols, up,
                                      twhere + ".columns"));
  std::string text_where = builtin.is_null() ? twhere + ".text" : twhere + ".name";
  return FillRows(columns, text, messages, up, opts, text_where, twhere + ".messages", where);
}

Result<json> DataframeItems(const json& data, const Upstream& up, const DataOptions& opts,
                            const std::string& where) {
  std::string cwhere = where + ".columns";
  auto cols = data.find("columns");
  if (cols == data.end()) return InvalidArgument(cwhere + " is missing");
  Columns columns;
  auto add = [&](const std::string& name, const json& values,
                 const std::string& at) -> Status {
    if (std::find(columns.labels.begin(), columns.labels.end(), name) != columns.labels.end()) {
      return InvalidArgument(fmt::format("{}: duplicate column '{}'", at, name));
    }
    FM_ASSIGN_OR_RETURN(json resolved, ResolveAt(values, up, at));
    columns.is_list.push_back(resolved.is_array());
    columns.labels.push_back(name);
    columns.values.push_back(std::move(resolved));
    return Status::Ok();
  };
  if (cols->is_object()) {
    for (auto it = cols->begin(); it != cols->end(); ++it) {
      FM_RETURN_IF_ERROR(add(it.key(), *it, JoinKey(cwhere, it.key())));
    }
  } else if (cols->is_array()) {
    for (size_t i = 0; i < cols->size(); ++i) {
      const json& c = (*cols)[i];
      std::string at = JoinIndex(cwhere, i);
      if (c.is_object() && c.contains("label") && c["label"].is_string()) {
        // The published form: {label, node, path} (or expr / value), like a template column.
        FM_ASSIGN_OR_RETURN(json values, ColumnValue(c, up, at));
        FM_RETURN_IF_ERROR(add(c["label"].get<std::string>(), values, at));
        continue;
      }
      if (!c.is_object() || !c.contains("name") || !c["name"].is_string() ||
          !c.contains("values")) {
        return InvalidArgument(at + " must be an object {name, values}");
      }
      FM_RETURN_IF_ERROR(add(c["name"].get<std::string>(), c["values"], at + ".values"));
    }
  } else {
    return InvalidArgument(cwhere + " must be {column: [values]} or [{name, values}]");
  }
  auto text = data.find("text");
  auto messages = data.find("messages");
  if (text == data.end() && messages == data.end()) {
    // A plain table: one item per row, an object of its column values.
    FM_ASSIGN_OR_RETURN(size_t rows, columns.RowCount(where));
    FM_RETURN_IF_ERROR(CheckRows(rows, opts, where));
    json items = json::array();
    for (size_t r = 0; r < rows; ++r) {
      json row = json::object();
      for (size_t c = 0; c < columns.labels.size(); ++c) {
        row[columns.labels[c]] = columns.is_list[c] ? columns.values[c][r] : columns.values[c];
      }
      items.push_back(std::move(row));
    }
    return items;
  }
  if (text != data.end() && messages != data.end()) {
    return InvalidArgument(where + " needs at most one of messages, text");
  }
  return FillRows(columns, text == data.end() ? nullptr : &*text,
                  messages == data.end() ? nullptr : &*messages, up, opts, where + ".text",
                  where + ".messages", where);
}

Result<json> ListItems(const json& items, const Upstream& up, const std::string& where) {
  if (!items.is_array()) return InvalidArgument(where + " must be a list");
  json out = json::array();
  for (size_t i = 0; i < items.size(); ++i) {
    const json& item = items[i];
    std::string at = JoinIndex(where, i);
    if (item.is_object() && item.contains("node") && !item.contains("role")) {
      const json& node = item["node"];
      if (!node.is_string() || node.get<std::string>().empty()) {
        return InvalidArgument(at + ".node must name an upstream node");
      }
      std::string path;
      if (auto p = item.find("path"); p != item.end() && !p->is_null()) {
        if (!p->is_string()) return InvalidArgument(at + ".path must be a dot path string");
        path = p->get<std::string>();
      }
      std::string what = fmt::format("data reference {{node: {}, path: {}}}",
                                     node.get<std::string>(), path.empty() ? "''" : path);
      FM_ASSIGN_OR_RETURN(json value,
                          LookupUpstream(up, node.get<std::string>(), path, what, at));
      out.push_back(std::move(value));
      continue;
    }
    if (item.is_array()) FM_RETURN_IF_ERROR(CheckChatMessages(item, at));
    FM_ASSIGN_OR_RETURN(json value, ResolveAt(item, up, at));
    out.push_back(std::move(value));
  }
  return out;
}

Result<uint64_t> SeedOf(const json& data, const std::string& where) {
  auto seed = data.find("seed");
  if (seed == data.end() || seed->is_null()) return uint64_t{0};
  if (seed->is_number_unsigned()) return seed->get<uint64_t>();
  if (seed->is_number_integer()) return static_cast<uint64_t>(seed->get<int64_t>());
  return InvalidArgument(where + ".seed must be an integer");
}

Result<json> DatasetItems(const json& data, const DataOptions& opts, const std::string& where) {
  FM_ASSIGN_OR_RETURN(std::vector<json> rows, LoadDatasetRows(data, opts, where));
  if (auto split = data.find("split"); split != data.end() && !split->is_null()) {
    if (!split->is_string()) return InvalidArgument(where + ".split must be a string");
    FM_RETURN_IF_ERROR(ApplySplit(split->get<std::string>(), &rows, where + ".split"));
  }
  bool shuffle = false;
  if (auto s = data.find("shuffle"); s != data.end() && !s->is_null()) {
    if (!s->is_boolean()) return InvalidArgument(where + ".shuffle must be a boolean");
    shuffle = s->get<bool>();
  }
  if (shuffle) {
    FM_ASSIGN_OR_RETURN(uint64_t seed, SeedOf(data, where));
    ShuffleRows(&rows, seed);
  }
  if (auto limit = data.find("limit"); limit != data.end() && !limit->is_null()) {
    if (!limit->is_number_integer() || limit->get<int64_t>() < 0) {
      return InvalidArgument(where + ".limit must be a non-negative integer");
    }
    auto n = static_cast<uint64_t>(limit->get<int64_t>());
    if (n < rows.size()) rows.resize(n);
  }
  FM_RETURN_IF_ERROR(CheckRows(rows.size(), opts, where));
  json items = json::array();
  for (json& row : rows) items.push_back(std::move(row));
  return items;
}

// A data_retrieval source: references resolved, params columns reduced to their values.
Result<json> RetrievalSource(const json& data, const Upstream& up, const std::string& where) {
  json out = json::object();
  for (auto it = data.begin(); it != data.end(); ++it) {
    if (it.key() != "params") {
      FM_ASSIGN_OR_RETURN(out[it.key()], ResolveAt(*it, up, JoinKey(where, it.key())));
      continue;
    }
    std::string pwhere = JoinKey(where, "params");
    if (!it->is_array()) {
      return InvalidArgument(pwhere + " must be a list of {label, node+path | data | value}");
    }
    json params = json::array();
    for (size_t i = 0; i < it->size(); ++i) {
      const json& col = (*it)[i];
      std::string cwhere = JoinIndex(pwhere, i);
      if (!col.is_object() || !col.contains("label") || !col["label"].is_string()) {
        return InvalidArgument(cwhere + " must be an object with a label");
      }
      json value;
      if (auto d = col.find("data"); d != col.end() && d->is_object() && !col.contains("node")) {
        // An inline list: {type: list, items: [...]}.
        FM_ASSIGN_OR_RETURN(json list, MaterializeDataAt(*d, up, DataOptions{}, cwhere + ".data"));
        value = list["items"];
      } else {
        FM_ASSIGN_OR_RETURN(value, ColumnValue(col, up, cwhere));
      }
      params.push_back({{"label", col["label"]}, {"value", std::move(value)}});
    }
    out["params"] = std::move(params);
  }
  return out;
}

}  // namespace

Result<json> MaterializeDataAt(const json& data, const Upstream& up, const DataOptions& opts,
                               const std::string& where) {
  if (!data.is_object()) {
    return InvalidArgument(where + " must be an object with a type (" + kKnownTypes + ")");
  }
  auto type_it = data.find("type");
  if (type_it == data.end() || type_it->is_null()) {
    // Training data of the published format names its fields without a type
    // (dataset_name, preferences, prompts, …): the executor reads it as it is.
    return ResolveAt(data, up, where);
  }
  if (!type_it->is_string()) {
    return InvalidArgument(where + ".type must be a string (one of " + kKnownTypes + ")");
  }
  std::string type = type_it->get<std::string>();
  if (opts.retrieval_source) return RetrievalSource(data, up, where);
  // Keys that build the items are handled by type; every other key has its references
  // resolved and is kept.
  static const std::set<std::string> kConsumed = {"items", "template", "columns", "messages",
                                                  "text"};
  json out = json::object();
  for (auto it = data.begin(); it != data.end(); ++it) {
    if (kConsumed.count(it.key()) && (type != "dataset")) {
      out[it.key()] = *it;
      continue;
    }
    FM_ASSIGN_OR_RETURN(out[it.key()], ResolveAt(*it, up, JoinKey(where, it.key())));
  }
  json items;
  if (type == "list") {
    auto list = data.find("items");
    auto node = data.find("node");
    if (list == data.end() && node != data.end() && node->is_string()) {
      // The published form: the list is at `path` in an upstream node's result.
      std::string path = data.value("path", json("")).is_string() ? data.value("path", "") : "";
      std::string what = fmt::format("data list {{node: {}, path: {}}}", node->get<std::string>(),
                                     path.empty() ? "''" : path);
      FM_ASSIGN_OR_RETURN(json value, LookupUpstream(up, node->get<std::string>(), path, what,
                                                     where));
      if (!value.is_array()) return InvalidArgument(where + ": " + what + " is not a list");
      items = std::move(value);
    } else if (list == data.end()) {
      return InvalidArgument(where + ".items is missing");
    } else {
      FM_ASSIGN_OR_RETURN(items, ListItems(*list, up, where + ".items"));
    }
    FM_RETURN_IF_ERROR(CheckRows(items.size(), opts, where));
  } else if (type == "graph_template") {
    FM_ASSIGN_OR_RETURN(items, GraphTemplateItems(data, up, opts, where));
  } else if (type == "dataframe") {
    FM_ASSIGN_OR_RETURN(items, DataframeItems(data, up, opts, where));
  } else if (type == "dataset") {
    FM_ASSIGN_OR_RETURN(items, DatasetItems(out, opts, where));
  } else {
    return InvalidArgument(
        fmt::format("{}.type: unknown data type '{}' (known: {})", where, type, kKnownTypes));
  }
  out["type"] = "list";
  out["source_type"] = type;
  out["items"] = std::move(items);
  return out;
}

}  // namespace flowmesh::dataflow::internal
