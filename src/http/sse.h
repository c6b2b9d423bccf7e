// Server-Sent Events wire format, shared by the server (framing) and the client (parsing).
// Internal to fm_http; exposed for tests.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "http/http.h"

namespace flowmesh::http {

// "id: …\nevent: …\ndata: …\n\n"; empty id/event are omitted; every line of `data`
// becomes its own "data:" line (at least one, so an empty payload is still an event).
std::string FormatSseEvent(std::string_view id, std::string_view event, std::string_view data);
// ": text\n\n", one comment line per line of `text`.
std::string FormatSseComment(std::string_view text);

// Incremental parser for an event stream (per the WHATWG rules we need: "field: value"
// lines, ':' comments, LF or CRLF line ends, blank line dispatches). Bytes may arrive in
// arbitrary pieces. Not thread-safe.
class SseParser {
 public:
  // Feeds bytes; calls `on_event` per complete event. Returns false as soon as
  // `on_event` returns false (the remaining bytes are dropped).
  bool Feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event);

 private:
  bool Line(std::string_view line, const std::function<bool(const SseEvent&)>& on_event);

  std::string pending_;  // an incomplete line
  std::string id_;       // last event id; persists across events as in the spec
  std::string event_;
  std::string data_;
  bool has_data_ = false;
};

}  // namespace flowmesh::http
