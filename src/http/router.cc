// Router: method + segment patterns. The most specific match wins (literal segments over
// "{name}" over "{name...}", compared left to right); ties go to the route added first.
#include <string_view>

#include "http/http.h"

namespace flowmesh::http {
namespace {

std::vector<std::string> SplitSegments(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    std::string_view seg =
        path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (!seg.empty()) out.emplace_back(seg);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

bool IsCapture(const std::string& seg) {
  return seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
}

bool IsRest(const std::string& seg) {
  return IsCapture(seg) && seg.size() > 5 && seg.compare(seg.size() - 4, 4, "...}") == 0;
}

// Fills per-segment ranks (0 literal, 1 capture, 2 rest) and captures; false: no match.
bool MatchRoute(const Router::Route& route, const std::vector<std::string>& raw,
                std::vector<int>* ranks, std::map<std::string, std::string>* params) {
  const auto& pat = route.segments;
  for (size_t i = 0; i < pat.size(); ++i) {
    const std::string& p = pat[i];
    if (IsRest(p)) {
      if (i != pat.size() - 1 || i >= raw.size()) return false;
      std::string rest;
      for (size_t j = i; j < raw.size(); ++j) {
        if (j > i) rest.push_back('/');
        rest += raw[j];
      }
      (*params)[p.substr(1, p.size() - 5)] = PercentDecode(rest, false);
      ranks->push_back(2);
      return true;
    }
    if (i >= raw.size()) return false;
    if (IsCapture(p)) {
      (*params)[p.substr(1, p.size() - 2)] = PercentDecode(raw[i], false);
      ranks->push_back(1);
    } else {
      if (PercentDecode(raw[i], false) != p) return false;
      ranks->push_back(0);
    }
  }
  return raw.size() == pat.size();
}

std::unique_ptr<Router::Route> MakeRoute(Router::Route::Kind kind, const std::string& method,
                                         const std::string& pattern) {
  auto r = std::make_unique<Router::Route>();
  r->kind = kind;
  r->method = method;
  r->segments = SplitSegments(pattern);
  return r;
}

}  // namespace

void Router::Add(const std::string& method, const std::string& pattern, SyncHandler handler) {
  auto r = MakeRoute(Route::Kind::kSync, method, pattern);
  r->sync = std::move(handler);
  routes_.push_back(std::move(r));
}

void Router::AddAsync(const std::string& method, const std::string& pattern,
                      AsyncHandler handler) {
  auto r = MakeRoute(Route::Kind::kAsync, method, pattern);
  r->async = std::move(handler);
  routes_.push_back(std::move(r));
}

void Router::AddSse(const std::string& pattern, SseHandler handler, SsePrecheck precheck) {
  auto r = MakeRoute(Route::Kind::kSse, "GET", pattern);
  r->sse = std::move(handler);
  r->precheck = std::move(precheck);
  routes_.push_back(std::move(r));
}

void Router::AddAsyncOrSse(const std::string& method, const std::string& pattern,
                           AsyncHandler handler, SseHandler sse,
                           std::function<bool(const Request&)> wants_stream, SsePrecheck precheck) {
  auto r = MakeRoute(Route::Kind::kAsync, method, pattern);
  r->async = std::move(handler);
  r->sse = std::move(sse);
  r->wants_stream = std::move(wants_stream);
  r->precheck = std::move(precheck);
  routes_.push_back(std::move(r));
}

const Router::Route* Router::Match(Request& request, bool* method_mismatch) const {
  if (method_mismatch) *method_mismatch = false;
  // Split the raw (still encoded) path so "%2F" inside a segment does not split it.
  std::string_view raw_path = request.target;
  if (raw_path.empty()) {
    raw_path = request.path;
  } else {
    raw_path = raw_path.substr(0, raw_path.find('?'));
  }
  std::vector<std::string> raw = SplitSegments(raw_path);

  const Route* best = nullptr;
  std::vector<int> best_ranks;
  std::map<std::string, std::string> best_params;
  for (const auto& route : routes_) {
    std::vector<int> ranks;
    std::map<std::string, std::string> params;
    if (!MatchRoute(*route, raw, &ranks, &params)) continue;
    if (route->method != request.method) {
      if (method_mismatch) *method_mismatch = true;
      continue;
    }
    if (best == nullptr || ranks < best_ranks) {
      best = route.get();
      best_ranks = std::move(ranks);
      best_params = std::move(params);
    }
  }
  if (best != nullptr) {
    if (method_mismatch) *method_mismatch = false;
    for (auto& [k, v] : best_params) request.params[k] = std::move(v);
  }
  return best;
}

}  // namespace flowmesh::http
