#include "api/routes/common.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <ctime>

namespace flowmesh::api {

using nlohmann::json;

http::Response JsonResponse(int status, const json& body) {
  return http::Response::Json(status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

http::Response StatusResponse(const Status& s) { return http::Response::Error(s); }

void SendResult(const std::shared_ptr<http::Responder>& r, const Result<json>& result,
                int ok_status) {
  if (result.ok()) {
    r->Send(JsonResponse(ok_status, *result));
  } else {
    r->Send(StatusResponse(result.status()));
  }
}

json ParseOr(const std::string& text, json fallback) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? fallback : j;
}

std::string TextField(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

int ParseInt(const std::string& s, int fallback) {
  if (s.empty()) return fallback;
  try {
    return std::stoi(s);
  } catch (...) {
    return fallback;
  }
}

Result<int64_t> ParseCursor(const std::string& s, const char* what) {
  if (s.empty()) return int64_t{0};
  try {
    size_t pos = 0;
    long long v = std::stoll(s, &pos);
    if (pos != s.size() || v < 0) throw std::invalid_argument(s);
    return static_cast<int64_t>(v);
  } catch (...) {
    return InvalidArgument(std::string("query parameter '") + what +
                           "' must be a non-negative integer cursor, got '" + s + "'");
  }
}

json IsoTime(double epoch_seconds) {
  if (epoch_seconds <= 0) return nullptr;
  double whole = std::floor(epoch_seconds);
  auto t = static_cast<std::time_t>(whole);
  int micros = static_cast<int>(std::lround((epoch_seconds - whole) * 1e6));
  if (micros >= 1000000) {
    ++t;
    micros -= 1000000;
  }
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}+00:00", buf, micros);
}

namespace {

// Calls fn(key, value) for each parameter of the request's query, percent-decoded.
template <typename Fn>
void ForEachQueryPair(const http::Request& req, Fn fn) {
  std::string_view target = req.target;
  auto mark = target.find('?');
  std::string_view query =
      mark == std::string_view::npos ? std::string_view() : target.substr(mark + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    fn(http::PercentDecode(pair.substr(0, eq), true),
       eq == std::string_view::npos ? std::string()
                                    : http::PercentDecode(pair.substr(eq + 1), true));
  }
}

}  // namespace

std::vector<std::string> QueryValues(const http::Request& req, const std::string& key) {
  std::vector<std::string> out;
  ForEachQueryPair(req, [&](const std::string& k, std::string v) {
    if (k == key) out.push_back(std::move(v));
  });
  return out;
}

// ---------------------------------------------------------------- ListQuery

Result<ListQuery> ListQuery::Parse(const http::Request& req) {
  ListQuery q;
  Status bad;
  ForEachQueryPair(req, [&q, &bad](const std::string& key, std::string value) {
    if (key == "limit") {
      q.limit_ = ParseInt(value, -1);
      if (q.limit_ < 1) {
        bad = InvalidArgument("query parameter 'limit' must be a positive integer, got '" + value +
                              "'");
      }
    } else if (key == "view") {
      if (value != "status" && value != "full") {
        bad = InvalidArgument("query parameter 'view' must be 'status' or 'full', got '" + value +
                              "'");
      }
      q.view_ = value;
    } else if (key != "token") {  // ?token= authenticates EventSource clients
      q.filters_[key].push_back(std::move(value));
    }
  });
  if (!bad.ok()) return bad;
  return q;
}

std::string ListQuery::Single(const std::string& key) const {
  auto it = filters_.find(key);
  return it != filters_.end() && it->second.size() == 1 ? it->second.front() : "";
}

namespace {

bool ValueMatches(const json& v, const std::string& key, const std::vector<std::string>& wants) {
  auto any = [&wants](auto pred) {
    for (const auto& w : wants) {
      if (pred(w)) return true;
    }
    return false;
  };
  if (v.is_null())
    return any([](const std::string& w) { return w.empty() || w == "null" || w == "None"; });
  if (v.is_boolean()) {
    bool b = v.get<bool>();
    return any([b](const std::string& w) {
      std::string l;
      for (char c : w) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return b ? (l == "true" || l == "1" || l == "yes" || l == "on")
               : (l == "false" || l == "0" || l == "no" || l == "off");
    });
  }
  auto text = [](const json& e) { return e.is_string() ? e.get<std::string>() : e.dump(); };
  if (v.is_array()) {
    for (const auto& e : v) {
      std::string s = text(e);
      if (any([&s](const std::string& w) { return w == s; })) return true;
    }
    return false;
  }
  if (key == "tags" && v.is_string()) {
    std::string all = v.get<std::string>() + ",";
    size_t start = 0;
    for (size_t comma = all.find(','); comma != std::string::npos; comma = all.find(',', start)) {
      std::string tag = all.substr(start, comma - start);
      start = comma + 1;
      tag.erase(0, tag.find_first_not_of(" \t"));
      tag.erase(tag.find_last_not_of(" \t") + 1);
      if (!tag.empty() && any([&tag](const std::string& w) { return w == tag; })) return true;
    }
    return false;
  }
  std::string s = text(v);
  return any([&s](const std::string& w) { return w == s; });
}

}  // namespace

std::string ListQuery::Stored(const std::string& key) const {
  std::string v = Single(key);
  return v == "null" || v == "None" ? "" : v;
}

bool ListQuery::Matches(const json& record) const {
  for (const auto& [key, wants] : filters_) {
    const json* v = &record;
    size_t start = 0;
    bool found = true;
    for (;;) {
      size_t dot = key.find('.', start);
      std::string part =
          key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!v->is_object() || !v->contains(part)) {
        found = false;
        break;
      }
      v = &(*v)[part];
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (!found) continue;  // not a field of this record kind: not a filter
    if (!ValueMatches(*v, key, wants)) return false;
  }
  return true;
}

json ListQuery::Apply(std::vector<json> records) const {
  json out = json::array();
  for (auto& r : records) {
    if (Matches(r)) out.push_back(std::move(r));
  }
  if (limit_ > 0 && static_cast<int>(out.size()) > limit_) {
    out.erase(out.begin(), out.begin() + (static_cast<long>(out.size()) - limit_));
  }
  return out;
}

}  // namespace flowmesh::api
