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

std::string Translator::CredentialRef(const N8nNode& node, const char* type) const {
  // Only the credential's display name is used; ids and anything else stay behind.
  const json* cred = Find(node.credentials, type);
  if (cred == nullptr) return "";
  std::string name = StringAt(*cred, "name");
  std::string clean;
  for (char c : name) {
    if (c != '{' && c != '}' && c != '$' && static_cast<unsigned char>(c) >= 0x20) clean += c;
  }
  return clean.empty() ? "" : "{{credential:" + clean + "}}";
}

json Translator::OpenAiChat(const N8nNode& model_node, const std::string& model, const json& options,
                            const json& messages, const char* cred_type) const {
  std::string base(kOpenAiUrl);
  if (std::string url = StringAt(options, "baseURL"); !url.empty()) base = url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  json body = {{"model", model}, {"messages", messages}};
  static const std::vector<std::pair<const char*, const char*>> kOptions = {
      {"temperature", "temperature"},
      {"topP", "top_p"},
      {"frequencyPenalty", "frequency_penalty"},
      {"presencePenalty", "presence_penalty"},
      {"maxTokens", "max_tokens"}};
  for (const auto& [from, to] : kOptions) {
    const json* v = Find(options, from);
    if (v == nullptr || !v->is_number()) continue;
    if (std::string(from) == "maxTokens" && v->get<double>() < 0) continue;  // -1: no limit
    body[to] = *v;
  }
  const json* format = Find(options, "responseFormat");
  if ((format != nullptr && format->is_string() && format->get<std::string>() == "json_object") ||
      options.value("jsonOutput", false) == true) {
    body["response_format"] = {{"type", "json_object"}};
  }
  json api = {{"url", base + "/chat/completions"},
              {"method", "POST"},
              {"headers", {{"Content-Type", "application/json"}}},
              {"body", body},
              {"response", {{"parse_json", true}}}};
  if (std::string ref = CredentialRef(model_node, cred_type); !ref.empty()) {
    api["headers"]["Authorization"] = "Bearer " + ref;
  }
  if (const json* retries = Find(options, "maxRetries"); retries && retries->is_number_integer()) {
    api["retries"] = *retries;
  }
  json spec = {{"taskType", "api"}, {"api", std::move(api)}};
  if (const json* t = Find(options, "timeout"); t && t->is_number() && t->get<double>() > 0) {
    spec["timeoutSeconds"] = t->get<double>() / 1000.0;
  }
  return spec;
}

std::string Translator::RoleOf(const std::string& template_type) {
  if (template_type == "AIMessagePromptTemplate") return "assistant";
  if (template_type == "HumanMessagePromptTemplate") return "user";
  return "system";
}

json Translator::ChainLlm(size_t n, std::set<size_t>* extra, bool has_data) {
  const N8nNode& node = nodes_[n];
  const json& p = node.params;
  std::string label = "Basic LLM Chain " + Quoted(node.name);
  if (node.models.empty()) {
    diag_->Add(node.path, label +
                              " has no language model connected (connect a Hugging Face "
                              "Inference Model or an OpenAI Chat Model to its Model input)");
    return json::object();
  }
  if (node.models.size() > 1) {
    diag_->Add(node.models[1].second, label + " has more than one language model connected");
    return json::object();
  }
  const N8nNode& model = nodes_[node.models[0].first];
  json messages = json::array();
  if (const json* mv = Find(p, "messages"); mv != nullptr) {
    const json* list = Find(*mv, "messageValues");
    if (list != nullptr && list->is_array()) {
      for (const json& m : *list) {
        if (!m.is_object()) continue;
        json content = Resolve(n, m.value("message", json("")), extra);
        messages.push_back(
            {{"role", RoleOf(StringAt(m, "type", "SystemMessagePromptTemplate"))},
             {"content", AsText(content)}});
      }
    }
  }
  json prompt;
  std::string prompt_type = StringAt(p, "promptType", "");
  if (const json* text = Find(p, "text"); text != nullptr && prompt_type != "auto") {
    prompt = Resolve(n, *text, extra);
  } else if (const json* old = Find(p, "prompt"); old != nullptr) {
    prompt = Resolve(n, *old, extra);
  } else {
    // "Take from previous node automatically": the input's chatInput field.
    json implicit = Resolve(n, json("={{ $json.chatInput }}"), extra);
    if (AsText(implicit).find("{{") == std::string::npos) prompt = implicit;
  }
  if (!prompt.is_null()) {
    messages.push_back({{"role", "user"}, {"content", AsText(prompt)}});
  } else if (!has_data) {
    diag_->Add(JoinKey(node.path, "parameters"),
               label + " has no prompt: set its Prompt to 'Define below' and give the text, "
                       "or feed it a Set node with a Data field");
    return json::object();
  }
  json options = model.params.value("options", json::object());
  if (!options.is_object()) options = json::object();
  if (model.kind == Kind::kOpenAiChatModel) {
    std::string id = LocatorValue(Find(model.params, "model"));
    if (id.empty()) id = "gpt-4o-mini";
    return OpenAiChat(model, id, options, messages, "openAiApi");
  }
  // Hugging Face: a local inference task.
  std::string id = LocatorValue(Find(model.params, "model"));
  if (id.empty()) {
    diag_->Add(JoinKey(model.path, "parameters"),
               "Hugging Face Inference Model " + Quoted(model.name) + " names no model");
    return json::object();
  }
  std::string task_type = node.notes_task_type.empty() ? "inference" : node.notes_task_type;
  json spec = {{"taskType", task_type},
               {"model", {{"source", {{"type", "huggingface"}, {"identifier", id}}}}}};
  json inference = json::object();
  // Data fields the prompt did not read itself (those stay rows of their own).
  bool rows_elsewhere = false;
  for (const Route& r : node.in_routes) {
    for (const SetField& f : r.fields) {
      if (IsDataFragment(f.name) && (consumed_ == nullptr || consumed_->count(f.name) == 0)) {
        rows_elsewhere = true;
      }
    }
  }
  if (rows_elsewhere && !prompt.is_null() && messages.size() == 1) {
    // A Data Set node gives the rows; the chain's prompt instructs the model about
    // each of them (the published importer's reading).
    inference["system_prompt"] = AsText(prompt);
  } else if (!prompt.is_null()) {
    spec["data"] = {{"type", "list"}, {"items", json::array({messages})}};
  }
  static const std::vector<std::pair<const char*, const char*>> kOptions = {
      {"maxTokens", "max_tokens"},
      {"temperature", "temperature"},
      {"topP", "top_p"},
      {"topK", "top_k"},
      {"frequencyPenalty", "frequency_penalty"},
      {"presencePenalty", "presence_penalty"}};
  for (const auto& [from, to] : kOptions) {
    const json* v = Find(options, from);
    if (v != nullptr && v->is_number()) inference[to] = *v;
  }
  if (!inference.empty()) spec["inference"] = std::move(inference);
  return spec;
}

json Translator::OpenAiNode(size_t n, std::set<size_t>* extra) {
  const N8nNode& node = nodes_[n];
  const json& p = node.params;
  std::string base = JoinKey(node.path, "parameters");
  bool langchain = StartsWith(node.type, "@n8n/");
  std::string resource = StringAt(p, "resource", langchain ? "text" : "text");
  std::string operation = StringAt(p, "operation", langchain ? "message" : "complete");
  json messages = json::array();
  std::string model;
  // typeVersion 2.x keeps the prompt in responses.values ("Generate a response").
  const json* responses = langchain ? Find(p, "responses") : nullptr;
  bool v2 = responses != nullptr && responses->is_object();
  if (langchain) {
    if (!v2 && (resource != "text" || operation != "message")) {
      diag_->Add(base, "OpenAI node " + Quoted(node.name) + ": only 'Message a model' (text) "
                       "can be translated, not " + resource + "/" + operation);
      return json::object();
    }
    model = LocatorValue(Find(p, "modelId"));
    const json* mv = v2 ? responses : Find(p, "messages");
    const json* list = mv != nullptr ? Find(*mv, "values") : nullptr;
    if (list != nullptr && list->is_array()) {
      for (const json& m : *list) {
        if (!m.is_object()) continue;
        messages.push_back({{"role", StringAt(m, "role", "user")},
                            {"content", AsText(Resolve(n, m.value("content", json("")), extra))}});
      }
    }
  } else {
    if (resource != "chat" && !(resource == "text" && operation == "complete")) {
      diag_->Add(base, "OpenAI node " + Quoted(node.name) + ": only chat and text completion "
                       "can be translated, not " + resource + "/" + operation);
      return json::object();
    }
    model = StringAt(p, "model", resource == "chat" ? "gpt-3.5-turbo" : "gpt-3.5-turbo-instruct");
    if (resource == "chat") {
      const json* pr = Find(p, "prompt");
      const json* list = pr != nullptr ? Find(*pr, "messages") : nullptr;
      if (list != nullptr && list->is_array()) {
        for (const json& m : *list) {
          if (!m.is_object()) continue;
          messages.push_back(
              {{"role", StringAt(m, "role", "user")},
               {"content", AsText(Resolve(n, m.value("content", json("")), extra))}});
        }
      }
    } else if (const json* pr = Find(p, "prompt"); pr != nullptr) {
      messages.push_back({{"role", "user"}, {"content", AsText(Resolve(n, *pr, extra))}});
    }
  }
  if (langchain && v2 && !messages.empty()) {
    // As the published importer does: the upstream task's answer follows the prompt
    // unless the prompt already refers to it.
    for (const Route& r : node.in_routes) {
      if (r.task < 0) continue;
      const N8nNode& up = nodes_[static_cast<size_t>(r.task)];
      std::string& content = messages.back()["content"].get_ref<std::string&>();
      if (content.find("${" + up.task + ".") != std::string::npos) break;
      std::string path = up.kind == Kind::kChainLlm && up.models.size() == 1 &&
                                 nodes_[up.models[0].first].kind != Kind::kOpenAiChatModel
                             ? "items.0.output"
                             : "items.0.text";
      content = "The previous stage's response is as follows. " + content + "\n${" + up.task +
                "." + path + "}";
      break;
    }
  }
  if (model.empty()) {
    diag_->Add(base, "OpenAI node " + Quoted(node.name) + " names no model");
    return json::object();
  }
  if (messages.empty()) {
    diag_->Add(base, "OpenAI node " + Quoted(node.name) + " has no messages");
    return json::object();
  }
  json options = p.value("options", json::object());
  if (!options.is_object()) options = json::object();
  if (p.value("jsonOutput", false) == true) options["jsonOutput"] = true;
  return OpenAiChat(node, model, options, messages, "openAiApi");
}

std::string Translator::UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        c == '$' || c == '{' || c == '}') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

json Translator::Pairs(size_t n, const json* holder, std::set<size_t>* extra) const {
  json out = json::object();
  if (holder == nullptr) return out;
  for (const char* key : {"parameters", "parameter"}) {
    const json* list = Find(*holder, key);
    if (list == nullptr || !list->is_array()) continue;
    for (const json& item : *list) {
      if (!item.is_object()) continue;
      std::string name = StringAt(item, "name");
      if (name.empty()) continue;
      out[name] = Resolve(n, item.value("value", json("")), extra);
    }
  }
  return out;
}

json Translator::Http(size_t n, std::set<size_t>* extra) {
  const N8nNode& node = nodes_[n];
  const json& p = node.params;
  std::string base = JoinKey(node.path, "parameters");
  json url = Resolve(n, p.value("url", json("")), extra);
  if (!url.is_string() || url.get_ref<const std::string&>().empty()) {
    diag_->Add(JoinKey(base, "url"), "HTTP Request " + Quoted(node.name) + " has no URL");
    return json::object();
  }
  std::string method = StringAt(p, "method", StringAt(p, "requestMethod", "GET"));
  json api = {{"url", url}, {"method", method}};
  std::string query;
  if (p.value("sendQuery", false) == true || Find(p, "queryParametersUi") != nullptr) {
    json q = Pairs(n, Find(p, "queryParameters"), extra);
    q.update(Pairs(n, Find(p, "queryParametersUi"), extra));
    for (auto it = q.begin(); it != q.end(); ++it) {
      query += (query.empty() ? "" : "&") + UrlEncode(it.key()) + "=" + UrlEncode(AsText(*it));
    }
  }
  if (!query.empty()) {
    std::string u = url.get<std::string>();
    api["url"] = u + (u.find('?') == std::string::npos ? "?" : "&") + query;
  }
  json headers = json::object();
  if (p.value("sendHeaders", false) == true || Find(p, "headerParametersUi") != nullptr) {
    if (StringAt(p, "specifyHeaders") == "json") {
      json h = Typed(Resolve(n, p.value("jsonHeaders", json("{}")), extra), "object");
      if (!h.is_object()) {
        diag_->Add(JoinKey(base, "jsonHeaders"),
                   "HTTP Request " + Quoted(node.name) + ": headers must be a JSON object");
      } else {
        headers.update(h);
      }
    } else {
      headers.update(Pairs(n, Find(p, "headerParameters"), extra));
      headers.update(Pairs(n, Find(p, "headerParametersUi"), extra));
    }
  }
  bool send_body = p.value("sendBody", false) == true || Find(p, "bodyParametersUi") != nullptr ||
                   Find(p, "bodyParametersJson") != nullptr;
  if (send_body) {
    std::string content = StringAt(p, "contentType", "json");
    std::string specify = StringAt(p, "specifyBody", "keypair");
    if (content == "raw") {
      api["body"] = Resolve(n, p.value("body", json("")), extra);
      if (std::string type = StringAt(p, "rawContentType"); !type.empty()) {
        headers["Content-Type"] = type;
      }
    } else if (specify == "json" || Find(p, "bodyParametersJson") != nullptr) {
      const json* raw = Find(p, "jsonBody");
      if (raw == nullptr) raw = Find(p, "bodyParametersJson");
      json body = raw != nullptr ? Resolve(n, *raw, extra) : json::object();
      api["body"] = Typed(body, "object");
    } else {
      json body = Pairs(n, Find(p, "bodyParameters"), extra);
      body.update(Pairs(n, Find(p, "bodyParametersUi"), extra));
      api["body"] = body;
      if (content == "form-urlencoded") {
        headers["Content-Type"] = "application/x-www-form-urlencoded";
      } else if (content == "multipart-form-data") {
        headers["Content-Type"] = "multipart/form-data";
      }
    }
  }
  std::string auth = StringAt(p, "authentication", "none");
  if (auth != "none") {
    std::string cred_type = StringAt(p, auth == "predefinedCredentialType" ? "nodeCredentialType"
                                                                           : "genericAuthType");
    if (cred_type.empty() && node.credentials.is_object() && !node.credentials.empty()) {
      cred_type = node.credentials.begin().key();
    }
    if (std::string ref = CredentialRef(node, cred_type.c_str()); !ref.empty()) {
      headers["Authorization"] = ref;
    }
  }
  if (!headers.empty()) api["headers"] = headers;
  json spec = {{"taskType", "api"}, {"api", std::move(api)}};
  const json* options = Find(p, "options");
  if (options != nullptr) {
    const json* timeout = Find(*options, "timeout");
    if (timeout != nullptr && timeout->is_number() && timeout->get<double>() > 0) {
      spec["timeoutSeconds"] = timeout->get<double>() / 1000.0;
    }
  }
  return spec;
}

json Translator::MakeTask(size_t n) {
  N8nNode& node = nodes_[n];
  // Dependencies, Set fragments and the condition carried by the ways in.
  std::vector<std::string> deps;
  std::set<size_t> dep_set;
  int cond = -1;
  bool mixed = false;
  bool has_data = false;
  for (size_t i = 0; i < node.in_routes.size(); ++i) {
    const Route& r = node.in_routes[i];
    if (r.task >= 0 && dep_set.insert(static_cast<size_t>(r.task)).second) {
      deps.push_back(nodes_[static_cast<size_t>(r.task)].task);
    }
    for (const SetField& f : r.fields) {
      has_data = has_data || IsDataFragment(f.name);
    }
    if (i == 0) {
      cond = r.cond;
    } else if (r.cond != cond) {
      mixed = true;
    }
  }
  if (cond == -2) {
    diag_->Add(node.path, "node " + Quoted(node.name) +
                              " sits behind more than one IF; a task takes a single condition");
  } else if (mixed) {
    diag_->Add(node.path, "node " + Quoted(node.name) +
                              " is reached both through an IF branch and another way; a "
                              "condition applies to the whole task");
  }
  std::set<size_t> extra;
  std::set<std::string> consumed;
  consumed_ = &consumed;
  json own;
  switch (node.kind) {
    case Kind::kChainLlm:
      own = ChainLlm(n, &extra, has_data);
      break;
    case Kind::kOpenAi:
      own = OpenAiNode(n, &extra);
      break;
    default:
      own = Http(n, &extra);
      break;
  }
  consumed_ = nullptr;
  json spec = json::object();
  for (const Route& r : node.in_routes) {
    for (const SetField& f : r.fields) {
      if (f.name == "Checkpoint") {
        // A Checkpoint Set node after a training node: load what that node trained.
        if (r.task < 0) {
          diag_->Add(f.path, "a Checkpoint Set node must follow a task node (the training "
                             "whose final model to load)");
          continue;
        }
        const std::string& trained = nodes_[static_cast<size_t>(r.task)].task;
        spec["checkpoint"] = {
            {"load", {{"type", "http"}, {"url", "${" + trained + ".final_model_archive}"}}}};
        continue;
      }
      if (consumed.count(f.name) == 0) ApplyFragment(f, &spec);
    }
  }
  MergeInto(&spec, own);
  RenameReferences(&spec);
  if (cond >= 0 && !mixed) {
    const Cond& c = conds_[static_cast<size_t>(cond)];
    if (!c.error.empty()) {
      diag_->Add(c.path, c.error);
    } else {
      spec["condition"] = c.value;
      std::string target = c.value["node"].get<std::string>();
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (nodes_[i].task == target && !dep_set.count(i)) extra.insert(i);
      }
    }
  }
  for (size_t e : extra) {
    if (dep_set.insert(e).second) deps.push_back(nodes_[e].task);
  }
  json entry = {{"name", node.task}};
  if (!deps.empty()) entry["dependsOn"] = deps;
  entry["spec"] = std::move(spec);
  return entry;
}

}  // namespace flowmesh::spec::n8n_internal
