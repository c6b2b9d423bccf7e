#include "executors/api_request.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>
#include <regex>

#include "http/http.h"

namespace flowmesh::executors::api {
namespace {

using nlohmann::json;

const std::regex& CredentialPattern() {
  static const std::regex kPattern(R"(\{\{\s*credential:([^{}]*?)\s*\}\})");
  return kPattern;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

Status Bad(const std::string& key, const std::string& what) {
  return InvalidArgument("spec.api." + key + " " + what);
}

Result<bool> BoolAt(const json& obj, const char* key, bool fallback, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) return Bad(where + key, "must be true or false");
  return it->get<bool>();
}

Result<double> NumberAt(const json& obj, const char* key, double fallback, double min) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_number() || it->get<double>() < min) {
    return Bad(key, "must be a number >= " + std::to_string(min));
  }
  return it->get<double>();
}

std::string ScalarText(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

Status ParseResponse(const json& api, ResponseOptions* r) {
  auto it = api.find("response");
  if (it == api.end() || it->is_null()) return Status::Ok();
  if (!it->is_object()) return Bad("response", "must be a mapping");
  FM_ASSIGN_OR_RETURN(r->parse_json, BoolAt(*it, "parse_json", r->parse_json, "response."));
  FM_ASSIGN_OR_RETURN(r->return_body, BoolAt(*it, "return_body", r->return_body, "response."));
  FM_ASSIGN_OR_RETURN(r->raise_for_status,
                      BoolAt(*it, "raise_for_status", r->raise_for_status, "response."));
  FM_ASSIGN_OR_RETURN(r->include_headers,
                      BoolAt(*it, "include_headers", r->include_headers, "response."));
  if (auto m = it->find("max_body_bytes"); m != it->end()) {
    if (!m->is_number_integer() || m->get<int64_t>() < 1) {
      return Bad("response.max_body_bytes", "must be a positive integer");
    }
    r->max_body_bytes = m->get<size_t>();
  }
  return Status::Ok();
}

Status ParseBody(const json& api, ApiOptions* o) {
  int given = 0;
  for (const char* key : {"json", "body", "data"}) {
    auto it = api.find(key);
    if (it == api.end() || it->is_null()) continue;
    if (++given > 1) return InvalidArgument("spec.api: json, body and data are exclusive");
    o->body = *it;
    o->body_is_text = std::string(key) != "json" && it->is_string();
  }
  return Status::Ok();
}

}  // namespace

Result<ApiOptions> ParseApiOptions(const json& spec) {
  ApiOptions o;
  json api = spec.is_object() ? spec.value("api", json::object()) : json::object();
  if (api.is_null()) api = json::object();
  if (!api.is_object()) return InvalidArgument("spec.api must be a mapping");
  if (auto it = api.find("url"); it != api.end() && !it->is_null()) {
    if (!it->is_string()) return Bad("url", "must be a string");
    o.url = it->get<std::string>();
  }
  if (auto it = api.find("method"); it != api.end() && !it->is_null()) {
    if (!it->is_string()) return Bad("method", "must be a string");
    o.method = it->get<std::string>();
    std::transform(o.method.begin(), o.method.end(), o.method.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    static const std::set<std::string> kMethods = {"GET",    "POST", "PUT",    "PATCH",
                                                   "DELETE", "HEAD", "OPTIONS"};
    if (kMethods.count(o.method) == 0) return Bad("method", "must be an HTTP method");
  }
  if (auto it = api.find("headers"); it != api.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("headers", "must be a mapping");
    for (const auto& [k, v] : it->items()) o.headers[k] = ScalarText(v);
  }
  if (auto it = api.find("params"); it != api.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("params", "must be a mapping");
    o.params = *it;
  }
  FM_RETURN_IF_ERROR(ParseBody(api, &o));
  // timeout_sec is the published name; timeout is ours (both seconds).
  FM_ASSIGN_OR_RETURN(double timeout, NumberAt(api, "timeout", o.timeout_s, 0.001));
  FM_ASSIGN_OR_RETURN(o.timeout_s, NumberAt(api, "timeout_sec", timeout, 0.001));
  if (auto it = api.find("retries"); it != api.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 20) {
      return Bad("retries", "must be an integer from 0 to 20");
    }
    o.retries = it->get<int>();
  }
  FM_ASSIGN_OR_RETURN(o.backoff_s, NumberAt(api, "backoff_sec", o.backoff_s, 0));
  FM_ASSIGN_OR_RETURN(o.max_backoff_s, NumberAt(api, "max_backoff_sec", o.max_backoff_s, 0));
  if (auto it = api.find("concurrency"); it != api.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1) {
      return Bad("concurrency", "must be an integer >= 1");
    }
    o.concurrency = static_cast<int>(std::min<int64_t>(it->get<int64_t>(), kMaxConcurrency));
  }
  FM_ASSIGN_OR_RETURN(o.verify_tls, BoolAt(api, "verify_tls", true, ""));
  FM_ASSIGN_OR_RETURN(o.follow_redirects, BoolAt(api, "follow_redirects", true, ""));
  bool body_stream = o.body.is_object() && o.body.value("stream", false) == true;
  FM_ASSIGN_OR_RETURN(o.stream, BoolAt(api, "stream", body_stream, ""));
  if (o.stream && o.body.is_object()) o.body["stream"] = true;
  FM_RETURN_IF_ERROR(ParseResponse(api, &o.response));
  return o;
}

std::set<std::string> CredentialNames(const json& value) {
  std::set<std::string> names;
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    for (std::sregex_iterator it(s.begin(), s.end(), CredentialPattern()), end; it != end; ++it) {
      names.insert((*it)[1].str());
    }
  } else if (value.is_structured()) {
    for (const auto& [k, v] : value.items()) {
      auto inner = CredentialNames(v);
      names.insert(inner.begin(), inner.end());
      if (value.is_object()) {
        auto in_key = CredentialNames(json(k));
        names.insert(in_key.begin(), in_key.end());
      }
    }
  }
  return names;
}

Result<std::string> ResolveCredentials(const std::string& text,
                                       const std::map<std::string, std::string>& values) {
  std::string out;
  auto last = text.cbegin();
  for (std::sregex_iterator it(text.begin(), text.end(), CredentialPattern()), end; it != end;
       ++it) {
    auto found = values.find((*it)[1].str());
    if (found == values.end()) {
      return NotFound("no credential named '" + (*it)[1].str() + "' was granted");
    }
    out.append(last, (*it)[0].first);
    out += found->second;
    last = (*it)[0].second;
  }
  out.append(last, text.cend());
  return out;
}

std::string PromptText(const json& item) {
  if (item.is_string()) return item.get<std::string>();
  if (item.is_object() && item.contains("prompt") && item["prompt"].is_string()) {
    return item["prompt"].get<std::string>();
  }
  return item.dump();
}

json SubstitutePrompt(const json& value, const json& item) {
  static const std::string kPlaceholder = "{{prompt}}";
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    if (s == kPlaceholder) return item.is_string() ? item : json(item);
    std::string out = s, text;
    bool text_ready = false;
    for (size_t pos = out.find(kPlaceholder); pos != std::string::npos;
         pos = out.find(kPlaceholder, pos)) {
      if (!text_ready) text = PromptText(item), text_ready = true;
      out.replace(pos, kPlaceholder.size(), text);
      pos += text.size();
    }
    return out;
  }
  if (value.is_object()) {
    json out = json::object();
    for (const auto& [k, v] : value.items()) out[k] = SubstitutePrompt(v, item);
    return out;
  }
  if (value.is_array()) {
    json out = json::array();
    for (const auto& v : value) out.push_back(SubstitutePrompt(v, item));
    return out;
  }
  return value;
}

PreparedRequest PrepareRequest(const ApiOptions& o, const std::string& url,
                               const std::optional<json>& item) {
  PreparedRequest r;
  r.url = url;
  json params = item ? SubstitutePrompt(o.params, *item) : o.params;
  std::string query;
  for (const auto& [k, v] : params.items()) {
    query += (query.empty() ? "" : "&") + http::PercentEncode(k) + "=" +
             http::PercentEncode(ScalarText(v));
  }
  if (!query.empty()) r.url += (r.url.find('?') == std::string::npos ? "?" : "&") + query;
  for (const auto& [k, v] : o.headers) {
    r.headers[k] = item ? SubstitutePrompt(json(v), *item).get<std::string>() : v;
  }
  if (!o.body.is_null()) {
    json body = item ? SubstitutePrompt(o.body, *item) : o.body;
    if (o.body_is_text && body.is_string()) {
      r.body = body.get<std::string>();
    } else {
      r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
      bool has_type = std::any_of(r.headers.begin(), r.headers.end(), [](const auto& h) {
        return Lower(h.first) == "content-type";
      });
      if (!has_type) r.headers["Content-Type"] = "application/json";
    }
  }
  return r;
}

bool IsCredentialHeader(const std::string& name) {
  std::string n = Lower(name);
  return n == "authorization" || n == "proxy-authorization" || n == "x-api-key" ||
         n == "api-key" || n == "x-auth-token" || n.find("token") != std::string::npos ||
         n.find("secret") != std::string::npos;
}

bool IsRetryableStatus(int status) { return status == 408 || status == 429 || status >= 500; }

std::chrono::milliseconds RetryDelay(const ApiOptions& o, int retry, const std::string& retry_after,
                                     double unit_random, double now_epoch_s) {
  double cap = o.max_backoff_s;
  if (!retry_after.empty()) {
    char* end = nullptr;
    double seconds = std::strtod(retry_after.c_str(), &end);
    if (end == retry_after.c_str() || *end != '\0') {
      struct tm tm {};
      // IMF-fixdate, the form servers send: "Wed, 21 Oct 2015 07:28:00 GMT".
      if (strptime(retry_after.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr) {
        seconds = static_cast<double>(timegm(&tm)) - now_epoch_s;
      } else {
        seconds = -1;
      }
    }
    if (seconds >= 0) {
      return std::chrono::milliseconds(static_cast<int64_t>(std::min(seconds, cap) * 1000));
    }
  }
  double base = std::min(cap, o.backoff_s * std::pow(2.0, std::max(0, retry - 1)));
  double jittered = base * (0.5 + 0.5 * std::clamp(unit_random, 0.0, 1.0));
  return std::chrono::milliseconds(static_cast<int64_t>(jittered * 1000));
}

ReplyContent ReadOpenAiReply(const json& reply) {
  ReplyContent c;
  if (!reply.is_object()) return c;
  if (auto u = reply.find("usage"); u != reply.end() && u->is_object()) c.usage = *u;
  auto choices = reply.find("choices");
  if (choices == reply.end() || !choices->is_array() || choices->empty()) return c;
  const json& first = (*choices)[0];
  if (!first.is_object()) return c;
  if (auto m = first.find("message"); m != first.end() && m->is_object()) {
    if (auto t = m->find("content"); t != m->end() && t->is_string()) {
      c.text = t->get<std::string>();
      c.has_text = true;
    }
  } else if (auto t = first.find("text"); t != first.end() && t->is_string()) {
    c.text = t->get<std::string>();
    c.has_text = true;
  }
  return c;
}

std::string SseAccumulator::Feed(std::string_view chunk) {
  pending_.append(chunk);
  std::string delta;
  for (size_t nl = pending_.find('\n'); nl != std::string::npos; nl = pending_.find('\n')) {
    std::string line = pending_.substr(0, nl);
    pending_.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data:", 0) == 0) delta += DataLine(line.substr(5));
  }
  return delta;
}

std::string SseAccumulator::DataLine(const std::string& raw) {
  std::string data = raw;
  if (!data.empty() && data.front() == ' ') data.erase(0, 1);
  if (data == "[DONE]") {
    done_ = true;
    return "";
  }
  json j = json::parse(data, nullptr, false);
  if (!j.is_object()) return "";
  last_ = j;
  if (auto u = j.find("usage"); u != j.end() && u->is_object()) usage_ = *u;
  auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty()) return "";
  const json& first = (*choices)[0];
  std::string delta;
  if (auto d = first.find("delta"); d != first.end() && d->is_object()) {
    if (auto c = d->find("content"); c != d->end() && c->is_string()) delta = c->get<std::string>();
  } else if (auto t = first.find("text"); t != first.end() && t->is_string()) {
    delta = t->get<std::string>();
  }
  text_ += delta;
  return delta;
}

void AddUsage(json& total, const json& usage) {
  if (!usage.is_object()) return;
  if (!total.is_object()) total = json::object();
  for (const auto& [k, v] : usage.items()) {
    if (v.is_number_integer()) {
      total[k] = total.value(k, int64_t{0}) + v.get<int64_t>();
    } else if (v.is_number()) {
      total[k] = total.value(k, 0.0) + v.get<double>();
    }
  }
}

}  // namespace flowmesh::executors::api
