// Boost-free pieces of fm_http: header/query helpers, responses, percent coding, SSE format.
#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "http/http.h"
#include "http/sse.h"

namespace flowmesh::http {

bool CaseInsensitiveLess::operator()(const std::string& a, const std::string& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](unsigned char x, unsigned char y) {
                                        return std::tolower(x) < std::tolower(y);
                                      });
}

std::string Request::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

std::string Request::Query(const std::string& name, const std::string& fallback) const {
  auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

Response Response::Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response Response::Error(const Status& status) {
  return Error(HttpStatusFor(status.code()), status.message());
}

Response Response::Error(int http_status, const std::string& detail) {
  nlohmann::json j = {{"detail", detail}};
  // Replace invalid UTF-8 rather than throwing: the detail may echo client input.
  return Json(http_status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Calls fn(line) for each line of `text` (split on LF, a trailing CR dropped).
template <typename Fn>
void ForEachLine(std::string_view text, Fn fn) {
  size_t start = 0;
  while (true) {
    size_t nl = text.find('\n', start);
    std::string_view line = text.substr(start, nl == std::string_view::npos ? nl : nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
}

}  // namespace

std::string PercentDecode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::string PercentEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  if (!query.empty() && query.front() == '?') query.remove_prefix(1);
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string_view pair =
        query.substr(start, amp == std::string_view::npos ? amp : amp - start);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string key = PercentDecode(pair.substr(0, eq), true);
      std::string value =
          eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1), true);
      out.insert_or_assign(std::move(key), std::move(value));
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return out;
}

std::string FormatSseEvent(std::string_view id, std::string_view event, std::string_view data) {
  std::string out;
  out.reserve(data.size() + id.size() + event.size() + 32);
  // Newlines inside id/event would break the framing; keep only the first line.
  if (!id.empty()) out.append("id: ").append(id.substr(0, id.find_first_of("\r\n"))).append("\n");
  if (!event.empty()) {
    out.append("event: ").append(event.substr(0, event.find_first_of("\r\n"))).append("\n");
  }
  ForEachLine(data, [&](std::string_view line) { out.append("data: ").append(line).append("\n"); });
  out.append("\n");
  return out;
}

std::string FormatSseComment(std::string_view text) {
  std::string out;
  ForEachLine(text, [&](std::string_view line) { out.append(": ").append(line).append("\n"); });
  out.append("\n");
  return out;
}

bool SseParser::Feed(std::string_view bytes,
                     const std::function<bool(const SseEvent&)>& on_event) {
  pending_.append(bytes);
  size_t start = 0;
  bool keep_going = true;
  while (keep_going) {
    size_t nl = pending_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(pending_.data() + start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    keep_going = Line(line, on_event);
    start = nl + 1;
  }
  if (!keep_going) {
    pending_.clear();
    return false;
  }
  pending_.erase(0, start);
  return true;
}

bool SseParser::Line(std::string_view line,
                     const std::function<bool(const SseEvent&)>& on_event) {
  if (line.empty()) {
    if (!has_data_) {
      event_.clear();
      return true;
    }
    SseEvent ev;
    ev.id = id_;
    ev.event = event_.empty() ? "message" : event_;
    ev.data = std::move(data_);
    data_.clear();
    event_.clear();
    has_data_ = false;
    return on_event(ev);
  }
  if (line.front() == ':') return true;  // comment (keep-alive)
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_ = std::string(value);
  } else if (field == "id") {
    id_ = std::string(value);
  }
  return true;  // "retry" and unknown fields are ignored
}

}  // namespace flowmesh::http
