// Blocking HTTP client. Each call runs Beast async operations on a private io_context on
// the calling thread, which gives real per-operation timeouts (Beast's sync calls have
// none) without any background thread.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/log.h"
#include "http/http.h"
#include "http/sse.h"

namespace flowmesh::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr size_t kHeaderLimit = 64 * 1024;
constexpr size_t kErrorBodyLimit = 1 << 20;

// Maps an HTTP error response to a Status; the message is the {"detail"} when present.
Status StatusFromHttp(int http_status, const std::string& body) {
  std::string detail = body;
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("detail") && j["detail"].is_string()) {
    detail = j["detail"].get<std::string>();
  }
  std::string message = fmt::format("HTTP {}: {}", http_status, detail);
  switch (http_status) {
    case 400:
    case 422: return InvalidArgument(message);
    case 401: return {StatusCode::kUnauthenticated, message};
    case 403: return {StatusCode::kPermissionDenied, message};
    case 404: return NotFound(message);
    case 409: return FailedPrecondition(message);
    case 413: return TooLarge(message);
    case 429: return {StatusCode::kResourceExhausted, message};
    case 499: return Cancelled(message);
    case 501: return Unimplemented(message);
    case 503: return Unavailable(message);
    case 504: return DeadlineExceeded(message);
    default: return Internal(message);
  }
}

bool IsStaleConnectionError(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == bhttp::error::partial_message;
}

}  // namespace

struct Client::Impl {
  std::string url_error;  // non-empty: base_url was not usable
  std::string host;
  std::string port;
  std::string prefix;  // path prefix from base_url, without a trailing '/'
  std::string base;    // "http://host:port" for messages
  std::chrono::milliseconds timeout;
  asio::io_context ioc{1};
  std::optional<beast::tcp_stream> conn;  // the kept-alive connection
  beast::flat_buffer buffer;

  // Runs the io_context until the operations just started have completed.
  void Run() {
    ioc.restart();
    ioc.run();
  }

  void Drop() {
    if (conn) {
      error_code ec;
      conn->socket().shutdown(tcp::socket::shutdown_both, ec);
      conn->close();
    }
    conn.reset();
    buffer.clear();
  }

  Status Connect(beast::tcp_stream& stream) {
    error_code ec;
    tcp::resolver resolver(ioc);
    // Synchronous: getaddrinfo is quick for the addresses we use, and Asio's async
    // resolver would start a thread per client.
    auto results = resolver.resolve(host, port, ec);
    if (ec) return Unavailable(fmt::format("cannot connect to {}: {}", base, ec.message()));
    stream.expires_after(timeout);
    stream.async_connect(results, [&](error_code e, const tcp::endpoint&) { ec = e; });
    Run();
    if (ec == beast::error::timeout) {
      return Unavailable(fmt::format("cannot connect to {}: timed out", base));
    }
    if (ec) return Unavailable(fmt::format("cannot connect to {}: {}", base, ec.message()));
    stream.socket().set_option(tcp::no_delay(true), ec);
    return Status::Ok();
  }

  bhttp::request<bhttp::string_body> MakeRequest(const std::string& method,
                                                 const std::string& path,
                                                 const Headers& headers) {
    bhttp::request<bhttp::string_body> req;
    req.method_string(method);
    req.target(prefix + (path.empty() || path.front() != '/' ? "/" + path : path));
    req.version(11);
    req.set(bhttp::field::host, host + ":" + port);
    req.set(bhttp::field::user_agent, "flowmesh-http");
    for (const auto& [name, value] : headers) req.set(name, value);
    return req;
  }

  Status Failure(const error_code& ec, const std::string& what) {
    if (ec == beast::error::timeout) {
      return DeadlineExceeded(fmt::format("{} on {}: timed out after {} ms", what, base,
                                          timeout.count()));
    }
    return Unavailable(fmt::format("{} on {}: {}", what, base, ec.message()));
  }
};

Client::Client(std::string base_url, std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)), impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  im.timeout = timeout;
  std::string_view url = base_url_;
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    im.url_error = "unsupported base URL (want http://host:port): " + base_url_;
    return;
  }
  url.remove_prefix(kScheme.size());
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) {
    im.prefix = std::string(url.substr(slash));
    while (!im.prefix.empty() && im.prefix.back() == '/') im.prefix.pop_back();
  }
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      im.url_error = "bad base URL: " + base_url_;
      return;
    }
    im.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    im.port = authority.size() > 1 && authority.front() == ':'
                  ? std::string(authority.substr(1))
                  : "80";
  } else {
    size_t colon = authority.rfind(':');
    im.host = std::string(authority.substr(0, colon));
    im.port = colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
  }
  if (im.host.empty() || im.port.empty()) {
    im.url_error = "bad base URL: " + base_url_;
    return;
  }
  im.base = std::string(kScheme) + std::string(url.substr(0, slash));
}

Client::~Client() = default;

Result<ClientResponse> Client::Request(const std::string& method, const std::string& path,
                                       const std::string& body, const Headers& headers) {
  Impl& im = *impl_;
  if (!im.url_error.empty()) return InvalidArgument(im.url_error);
  auto req = im.MakeRequest(method, path, headers);
  if (!body.empty() && req.find(bhttp::field::content_type) == req.end()) {
    req.set(bhttp::field::content_type, "application/json");
  }
  req.body() = body;
  req.keep_alive(true);
  req.prepare_payload();
  const std::string what = method + " " + path;

  // A kept-alive connection may have been closed by the server since the last call:
  // on a stale-connection error, reconnect and try once more.
  for (int attempt = 0;; ++attempt) {
    bool reused = im.conn.has_value();
    if (!reused) {
      im.conn.emplace(im.ioc);
      im.buffer.clear();
      Status st = im.Connect(*im.conn);
      if (!st.ok()) {
        im.Drop();
        return st;
      }
    }
    error_code ec;
    im.conn->expires_after(im.timeout);
    bhttp::async_write(*im.conn, req, [&](error_code e, size_t) { ec = e; });
    im.Run();
    if (!ec) {
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      parser.header_limit(kHeaderLimit);
      im.conn->expires_after(im.timeout);
      bhttp::async_read(*im.conn, im.buffer, parser, [&](error_code e, size_t) { ec = e; });
      im.Run();
      if (!ec) {
        auto res = parser.release();
        ClientResponse out;
        out.status = res.result_int();
        for (const auto& field : res) {
          auto [it, inserted] =
              out.headers.emplace(std::string(field.name_string()), std::string(field.value()));
          if (!inserted) it->second.append(", ").append(std::string(field.value()));
        }
        out.body = std::move(res.body());
        if (!res.keep_alive()) im.Drop();
        else im.conn->expires_never();
        return out;
      }
    }
    im.Drop();
    if (reused && attempt == 0 && IsStaleConnectionError(ec)) continue;
    return im.Failure(ec, what);
  }
}

Result<ClientResponse> Client::PostJson(const std::string& path, const std::string& json,
                                        const Headers& headers) {
  Headers h = headers;
  h.emplace("Content-Type", "application/json");
  return Request("POST", path, json, h);
}

Status Client::StreamSse(const std::string& method, const std::string& path,
                         const std::string& body, const Headers& headers,
                         const std::function<bool(const SseEvent&)>& on_event) {
  Impl& im = *impl_;
  if (!im.url_error.empty()) return InvalidArgument(im.url_error);
  const std::string what = method + " " + path;
  beast::tcp_stream stream(im.ioc);
  FM_RETURN_IF_ERROR(im.Connect(stream));
  auto req = im.MakeRequest(method, path, headers);
  if (!body.empty()) {
    if (req.find(bhttp::field::content_type) == req.end()) {
      req.set(bhttp::field::content_type, "application/json");
    }
    req.body() = body;
  }
  req.set(bhttp::field::accept, "text/event-stream");
  req.set(bhttp::field::cache_control, "no-cache");
  req.keep_alive(true);
  req.prepare_payload();

  error_code ec;
  stream.expires_after(im.timeout);
  bhttp::async_write(stream, req, [&](error_code e, size_t) { ec = e; });
  im.Run();
  if (ec) return im.Failure(ec, what);

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  parser.header_limit(kHeaderLimit);
  stream.expires_after(im.timeout);
  bhttp::async_read_header(stream, buffer, parser, [&](error_code e, size_t) { ec = e; });
  im.Run();
  if (ec) return im.Failure(ec, what);

  // Reads the next piece of the body into `chunk`; returns the byte count via *n.
  std::array<char, 16384> chunk;
  auto read_some = [&](size_t* n) -> error_code {
    auto& body = parser.get().body();
    body.data = chunk.data();
    body.size = chunk.size();
    error_code e;
    stream.expires_after(im.timeout);
    bhttp::async_read_some(stream, buffer, parser, [&](error_code x, size_t) { e = x; });
    im.Run();
    if (e == bhttp::error::need_buffer) e = {};
    *n = chunk.size() - parser.get().body().size;
    return e;
  };

  const int status = parser.get().result_int();
  if (status != 200) {
    std::string body;
    while (!parser.is_done() && body.size() < kErrorBodyLimit) {
      size_t n = 0;
      if (read_some(&n)) break;
      body.append(chunk.data(), n);
    }
    return StatusFromHttp(status, body);
  }

  SseParser sse;
  while (!parser.is_done()) {
    size_t n = 0;
    ec = read_some(&n);
    if (n > 0 && !sse.Feed(std::string_view(chunk.data(), n), on_event)) return Status::Ok();
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof) break;
    if (ec) return im.Failure(ec, what + " (event stream)");
  }
  return Status::Ok();
}

}  // namespace flowmesh::http
