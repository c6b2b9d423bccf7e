// HTTP/1.1 server and client on Boost.Beast + Asio. The server runs every connection on
// a small pool of io_context threads (no thread per connection), so it holds thousands
// of idle keep-alive and SSE connections. Handlers are plain functions; Boost types stay
// out of this header (pimpl).
#pragma once

#include <any>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace flowmesh::http {

// Case-insensitive header lookup.
struct CaseInsensitiveLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using Headers = std::map<std::string, std::string, CaseInsensitiveLess>;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string target;  // raw target, e.g. "/api/v1/workflows?status=DONE"
  std::string path;    // percent-decoded path without the query
  std::map<std::string, std::string> query;   // percent-decoded query parameters
  std::map<std::string, std::string> params;  // path parameters from the route pattern
  Headers headers;
  std::string body;
  std::string remote_address;
  // Set by middleware for the handler (the API puts the authenticated principal here).
  std::any context;

  std::string Header(const std::string& name) const;  // "" when absent
  std::string Query(const std::string& name, const std::string& fallback = "") const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  Headers headers;
  std::string body;

  static Response Json(int status, std::string body);
  // {"detail": message} with the status code mapped from `status`.
  static Response Error(const Status& status);
  static Response Error(int http_status, const std::string& detail);
};

// An open Server-Sent Events stream. Thread-safe: any thread may call Send/Close.
// Writes are queued and performed on the connection's strand.
class SseStream {
 public:
  virtual ~SseStream() = default;
  // Sends one event frame ("id: …\nevent: …\ndata: …\n\n"; multi-line data is split
  // into several data: lines). Returns false once the client has gone.
  virtual bool Send(std::string_view id, std::string_view event, std::string_view data) = 0;
  virtual bool Comment(std::string_view text) = 0;  // ": text\n\n"
  // Ends the response (after queued frames are flushed).
  virtual void Close() = 0;
  virtual bool closed() const = 0;
  // Runs once when the stream ends for any reason (client gone, Close, server stop),
  // on an io thread. Set it before returning from the SSE handler.
  virtual void OnClose(std::function<void()> callback) = 0;
};

// Delivers the response of an asynchronous handler; call Send exactly once, from any thread.
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void Send(Response response) = 0;
};

using SyncHandler = std::function<Response(Request&)>;
using AsyncHandler = std::function<void(Request&, std::shared_ptr<Responder>)>;
// Called after the SSE response headers (200, text/event-stream, Cache-Control: no-cache,
// X-Accel-Buffering: no) have been queued. Return a non-OK status *before* any headers
// instead by using `precheck`.
using SseHandler = std::function<void(Request&, std::shared_ptr<SseStream>)>;
// Optional check run before an SSE response starts; a non-empty response is sent instead.
using SsePrecheck = std::function<std::optional<Response>(Request&)>;

// Routes match method + path pattern; pattern segments "{name}" capture one segment,
// a final "{name...}" captures the rest of the path (may contain '/').
class Router {
 public:
  void Add(const std::string& method, const std::string& pattern, SyncHandler handler);
  void AddAsync(const std::string& method, const std::string& pattern, AsyncHandler handler);
  void AddSse(const std::string& pattern, SseHandler handler, SsePrecheck precheck = nullptr);
  // An async route that answers as an SSE stream instead (precheck first, as AddSse) when
  // `wants_stream(request)` says so: OpenAI-style POST bodies carrying "stream": true.
  void AddAsyncOrSse(const std::string& method, const std::string& pattern, AsyncHandler handler,
                     SseHandler sse, std::function<bool(const Request&)> wants_stream,
                     SsePrecheck precheck = nullptr);

  struct Route;
  // Finds the route for a request, filling request.params. nullptr: no route.
  // *method_mismatch is set when the path matched but not the method (405).
  const Route* Match(Request& request, bool* method_mismatch) const;

  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  std::vector<std::unique_ptr<Route>> routes_;
};

struct Router::Route {
  enum class Kind { kSync, kAsync, kSse };
  Kind kind;
  std::string method;
  std::vector<std::string> segments;
  SyncHandler sync;
  AsyncHandler async;
  SseHandler sse;
  SsePrecheck precheck;
  std::function<bool(const Request&)> wants_stream;  // kAsync routes that may stream
};

struct ServerConfig {
  std::string address = "127.0.0.1";
  int port = 0;                     // 0: pick a free port; see Server::port()
  int threads = 2;                  // io_context threads
  size_t body_limit = 16 << 20;     // 413 above this
  std::chrono::seconds sse_keepalive{15};
  std::chrono::seconds idle_timeout{120};  // non-SSE keep-alive connections
};

// The HTTP server. Handler exceptions become 500 {"detail"} responses and are logged;
// malformed requests get 400 and the connection is closed; nothing crashes the process.
class Server {
 public:
  Server(ServerConfig config, std::shared_ptr<const Router> router);
  ~Server();  // Stops.
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Status Start();  // Binds and starts the io threads.
  // Closes the listener and every connection (SSE streams see OnClose), joins. Must not
  // be called from a handler (an io thread).
  void Stop();
  int port() const;
  size_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- client ----

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

struct SseEvent {
  std::string id;
  std::string event;  // "message" when the frame named none
  std::string data;
};

// A blocking HTTP/1.1 client for one base URL ("http://host:port"); keeps the connection
// alive between requests and reconnects once when the server closed it. Not thread-safe:
// one per thread.
class Client {
 public:
  explicit Client(std::string base_url,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // `path` includes any query string. Unavailable status when the server cannot be reached
  // (message names the URL).
  Result<ClientResponse> Request(const std::string& method, const std::string& path,
                                 const std::string& body = "",
                                 const Headers& headers = {});
  Result<ClientResponse> Get(const std::string& path, const Headers& headers = {}) {
    return Request("GET", path, "", headers);
  }
  Result<ClientResponse> PostJson(const std::string& path, const std::string& json,
                                  const Headers& headers = {});

  // Opens an SSE stream and calls `on_event` for each event until it returns false, the
  // server ends the stream, or an error occurs. Comments (keep-alives) are skipped.
  // Uses its own connection. The timeout bounds each wait for bytes, so it must exceed the
  // server's keep-alive interval. Returns the final status (OK when ended normally or
  // stopped by `on_event`; the server's error status when it refused the stream).
  Status StreamSse(const std::string& path, const Headers& headers,
                   const std::function<bool(const SseEvent&)>& on_event) {
    return StreamSse("GET", path, "", headers, on_event);
  }
  // The same for a request with a method and body (a POST that answers with a stream).
  Status StreamSse(const std::string& method, const std::string& path, const std::string& body,
                   const Headers& headers, const std::function<bool(const SseEvent&)>& on_event);

  const std::string& base_url() const { return base_url_; }

 private:
  std::string base_url_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Percent-decoding and query parsing, shared by server and tests.
std::string PercentDecode(std::string_view s, bool plus_as_space);
std::string PercentEncode(std::string_view s);
std::map<std::string, std::string> ParseQuery(std::string_view query);

}  // namespace flowmesh::http
