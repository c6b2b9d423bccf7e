// Helpers shared by the /api/v1 route files: JSON responses, query parsing, ISO-8601
// timestamps, and the one list helper every list route uses (filters with the published
// semantics, `limit` keeping the newest records, `view` handled by the caller).
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "http/http.h"

namespace flowmesh::api {

inline constexpr const char* kPrefix = "/api/v1";

http::Response JsonResponse(int status, const nlohmann::json& body);
http::Response StatusResponse(const Status& s);
void SendResult(const std::shared_ptr<http::Responder>& r, const Result<nlohmann::json>& result,
                int ok_status = 200);

nlohmann::json ParseOr(const std::string& text, nlohmann::json fallback);
// The string at `key` of an object from a client; "" when absent or not a string.
std::string TextField(const nlohmann::json& object, const char* key);
int ParseInt(const std::string& s, int fallback);
// A non-negative integer cursor ("" is 0); `what` names the parameter in the error.
Result<int64_t> ParseCursor(const std::string& s, const char* what);

// Every value of a query parameter that may repeat (?include=a&include=b), in order.
std::vector<std::string> QueryValues(const http::Request& req, const std::string& key);

// Seconds since the epoch as ISO-8601 UTC with microseconds ("2026-01-02T03:04:05.678901+00:00"),
// the form the published server sends; null for 0 (not set).
nlohmann::json IsoTime(double epoch_seconds);

// The query of a list route. Any parameter naming a field of a record filters on it:
// repeated keys match any of their values, `a.b` reaches into objects, list fields match
// when any member equals a value, booleans accept true/false/1/0/yes/no, null matches
// "", "null" or "None". Parameters naming no field are ignored. `limit` keeps the newest
// `limit` matches (records are listed oldest first); `view` is the caller's.
class ListQuery {
 public:
  static Result<ListQuery> Parse(const http::Request& req);

  // The single value of `key` when it was given exactly once ("" otherwise).
  std::string Single(const std::string& key) const;
  // Single(key) when a stored column can be matched on it as text, i.e. unless it is one of
  // the spellings that match null ("", "null", "None"); "" otherwise.
  std::string Stored(const std::string& key) const;
  std::string view() const { return view_; }
  bool Matches(const nlohmann::json& record) const;
  // Filters `records` (oldest first) and applies `limit`.
  nlohmann::json Apply(std::vector<nlohmann::json> records) const;

 private:
  std::map<std::string, std::vector<std::string>> filters_;
  std::string view_;
  int limit_ = 0;
};

}  // namespace flowmesh::api
