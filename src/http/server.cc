// HTTP server on Boost.Beast. Every connection is a Session whose handlers all run on its
// own strand; the io_context is run by config.threads threads and nothing else.
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <unordered_map>

#include "common/log.h"
#include "common/thread_annotations.h"
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
// Bytes queued for one SSE client before it counts as stuck and is dropped.
constexpr size_t kSseQueueLimit = 16 << 20;
// How long a connection closed after an error response keeps draining the request, so the
// client reads the response instead of a reset.
constexpr auto kLingerTimeout = std::chrono::seconds(5);
constexpr auto kStopTimeout = std::chrono::seconds(5);

class Session;

// State shared by the server and its sessions; sessions (and responders holding them)
// may outlive Server::Impl's io threads, so they keep this alive rather than the server.
struct ServerState {
  ServerConfig config;
  std::shared_ptr<const Router> router;
  std::atomic<size_t> open{0};

  Mutex mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions FM_GUARDED_BY(mu);

  // Posting into the io_context from outside it happens under a shared lock; Stop() sets
  // `stopped` under the exclusive lock, so nothing is posted once the server winds down.
  std::shared_mutex post_mu;
  std::atomic<bool> stopped{false};  // written under post_mu (exclusive)
};

bool IsHttpParseError(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
}

// The SSE side of a Session, handed to the handler. Thread-safe; frames are posted to the
// session's strand. Holds the session weakly: a gone session makes Send return false.
class SseStreamImpl : public SseStream {
 public:
  SseStreamImpl(std::weak_ptr<Session> session, std::shared_ptr<ServerState> state)
      : session_(std::move(session)), state_(std::move(state)) {}

  bool Send(std::string_view id, std::string_view event, std::string_view data) override {
    return Post(FormatSseEvent(id, event, data));
  }
  bool Comment(std::string_view text) override { return Post(FormatSseComment(text)); }
  void Close() override;
  bool closed() const override { return closing_.load() || ended_.load(); }
  void OnClose(std::function<void()> callback) override;

  // Called once by the session (on its strand) when the connection has ended.
  void MarkEnded();

 private:
  bool Post(std::string frame);

  std::weak_ptr<Session> session_;
  std::shared_ptr<ServerState> state_;
  std::atomic<bool> closing_{false};  // Close() was called
  std::atomic<bool> ended_{false};    // the connection is gone; set under mu_

  Mutex mu_;
  std::function<void()> on_close_ FM_GUARDED_BY(mu_);  // cleared when it runs
};

// One connection: request/response cycles with keep-alive, or one SSE stream.
// Lives as long as an operation or a pending async response refers to it; every member
// function runs on the strand (the socket's executor).
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ServerState> state)
      : stream_(std::move(socket)),
        state_(std::move(state)),
        keepalive_timer_(stream_.get_executor()) {
    error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    stream_.socket().set_option(tcp::no_delay(true), ec);
    state_->open++;
  }
  ~Session() { Finish(); }

  tcp::socket::executor_type executor() { return stream_.get_executor(); }

  void Start() {
    asio::dispatch(executor(), [self = shared_from_this()] { self->ReadHeader(); });
  }

  // Ends the connection now; idempotent. Fires the SSE OnClose callback.
  void Finish() {
    if (finished_) return;
    finished_ = true;
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
    keepalive_timer_.cancel();
    state_->open--;
    {
      MutexLock lock(state_->mu);
      state_->sessions.erase(this);
    }
    // Dropping the self-reference may destroy *this: keep it until the end of the call.
    std::shared_ptr<Session> hold = std::move(self_hold_);
    if (sse_) sse_->MarkEnded();
  }

  void DeliverAsyncResponse(Response response) {
    std::shared_ptr<Session> hold = std::move(self_hold_);
    if (finished_) return;
    WriteResponse(std::move(response));
  }

  void QueueSseFrame(std::string frame) {
    if (finished_ || sse_closing_) return;
    if (chunked_) frame = Chunk(frame);
    QueueRaw(std::move(frame));
  }

  void CloseSse() {
    if (finished_ || sse_closing_) return;
    sse_closing_ = true;
    if (chunked_) QueueRaw("0\r\n\r\n");
    if (!writing_) Finish();
  }

 private:
  static std::string Chunk(const std::string& payload) {
    char size[24];
    int n = std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
    std::string out;
    out.reserve(payload.size() + n + 2);
    out.append(size, n).append(payload).append("\r\n");
    return out;
  }

  void ReadHeader() {
    if (finished_) return;
    version_ = 11;
    keep_alive_ = true;
    parser_.emplace();
    parser_->body_limit(state_->config.body_limit);
    parser_->header_limit(kHeaderLimit);
    stream_.expires_after(state_->config.idle_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = shared_from_this()](error_code ec, size_t) {
                               self->OnHeader(ec);
                             });
  }

  void OnHeader(error_code ec) {
    if (ec) return OnReadError(ec);
    auto& msg = parser_->get();
    version_ = msg.version();
    auto expect = msg[bhttp::field::expect];
    if (beast::iequals(expect, "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream_, asio::buffer(kContinue),
                        [self = shared_from_this()](error_code ec, size_t) {
                          if (ec) return self->Finish();
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return Dispatch();
    stream_.expires_after(state_->config.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](error_code ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->Dispatch();
                      });
  }

  void OnReadError(error_code ec) {
    if (ec == bhttp::error::body_limit) {
      return WriteResponse(
          Response::Error(413, fmt::format("request body exceeds {} bytes",
                                           state_->config.body_limit)),
          /*force_close=*/true);
    }
    if (ec == bhttp::error::header_limit) {
      return WriteResponse(Response::Error(431, "request header fields too large"), true);
    }
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        !IsHttpParseError(ec)) {
      return Finish();  // client went away, idle timeout, or server stop
    }
    WriteResponse(Response::Error(400, "bad request: " + ec.message()), true);
  }

  Request BuildRequest(bhttp::request<bhttp::string_body>& msg) {
    Request r;
    r.method = std::string(msg.method_string());
    r.target = std::string(msg.target());
    std::string_view target = r.target;
    size_t q = target.find('?');
    r.path = PercentDecode(target.substr(0, q), false);
    if (q != std::string_view::npos) r.query = ParseQuery(target.substr(q + 1));
    for (const auto& field : msg) {
      std::string name(field.name_string());
      auto [it, inserted] = r.headers.emplace(name, std::string(field.value()));
      if (!inserted) it->second.append(", ").append(std::string(field.value()));
    }
    r.body = std::move(msg.body());
    r.remote_address = remote_;
    return r;
  }

  void Dispatch() {
    auto msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive();
    Request request = BuildRequest(msg);
    bool method_mismatch = false;
    const Router::Route* route =
        state_->router ? state_->router->Match(request, &method_mismatch) : nullptr;
    if (route == nullptr) {
      if (method_mismatch) {
        return WriteResponse(Response::Error(
            405, "method not allowed: " + request.method + " " + request.path));
      }
      return WriteResponse(
          Response::Error(404, "not found: " + request.method + " " + request.path));
    }
    switch (route->kind) {
      case Router::Route::Kind::kSync:
        return WriteResponse(Guarded(request, [&] { return route->sync(request); }));
      case Router::Route::Kind::kAsync:
        if (route->wants_stream && route->wants_stream(request)) return CheckAndStartSse(*route, request);
        return RunAsync(*route, request);
      case Router::Route::Kind::kSse:
        return CheckAndStartSse(*route, request);
    }
  }

  void CheckAndStartSse(const Router::Route& route, Request& request) {
    if (route.precheck) {
      std::optional<Response> early;
      Response failure = Guarded(request, [&] {
        early = route.precheck(request);
        return Response();
      });
      if (failure.status != 200) return WriteResponse(std::move(failure));  // it threw
      if (early) return WriteResponse(std::move(*early));
    }
    return StartSse(route, request);
  }

  // Runs fn, turning exceptions into 500 responses.
  template <typename Fn>
  Response Guarded(const Request& request, Fn&& fn) {
    try {
      return fn();
    } catch (const std::exception& e) {
      FM_LOG_ERROR("http: handler for {} {} threw: {}", request.method, request.path, e.what());
      return Response::Error(500, std::string("internal error: ") + e.what());
    } catch (...) {
      FM_LOG_ERROR("http: handler for {} {} threw a non-exception", request.method,
                   request.path);
      return Response::Error(500, "internal error: unknown exception");
    }
  }

  void RunAsync(const Router::Route& route, Request& request);
  void StartSse(const Router::Route& route, Request& request);

  void WriteResponse(Response r, bool force_close = false) {
    if (finished_) return;
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(version_ == 10 ? 10 : 11);
    res->result(r.status >= 100 && r.status <= 999 ? static_cast<unsigned>(r.status) : 500u);
    if (!r.content_type.empty()) res->set(bhttp::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res->set(name, value);
    // These statuses carry no body; Beast refuses to frame one.
    if (r.status < 200 || r.status == 204 || r.status == 304) r.body.clear();
    res->body() = std::move(r.body);
    bool close = force_close || !keep_alive_ || state_->stopped.load();
    res->keep_alive(!close);
    res->prepare_payload();
    stream_.expires_after(state_->config.idle_timeout);
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res, close](error_code ec, size_t) {
                         if (ec) return self->Finish();
                         if (close) return self->Linger();
                         self->ReadHeader();
                       });
  }

  // Half-closes and discards input until the peer closes (or a timeout), so the peer
  // sees our final response rather than a connection reset.
  void Linger() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(kLingerTimeout);
    Drain();
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec) return self->Finish();
                              self->Drain();
                            });
  }

  // SSE: any read completion means the client sent junk or went away; only the latter
  // matters, but both end the wait the same way when it is an error.
  void SseRead() {
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](error_code ec, size_t) {
                              if (ec) return self->Finish();
                              self->SseRead();
                            });
  }

  void ArmKeepalive() {
    keepalive_timer_.expires_after(state_->config.sse_keepalive);
    keepalive_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->finished_ || self->sse_closing_) return;
      self->QueueSseFrame(FormatSseComment("keep-alive"));
      self->ArmKeepalive();
    });
  }

  void QueueRaw(std::string bytes) {
    queued_bytes_ += bytes.size();
    if (queued_bytes_ > kSseQueueLimit) {
      FM_LOG_WARN("http: dropping SSE client {}: {} bytes unsent", remote_, queued_bytes_);
      return Finish();
    }
    write_queue_.push_back(std::move(bytes));
    if (!writing_) WriteNext();
  }

  void WriteNext() {
    writing_ = true;
    asio::async_write(stream_, asio::buffer(write_queue_.front()),
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->OnSseWrite(ec);
                      });
  }

  void OnSseWrite(error_code ec) {
    writing_ = false;
    if (ec || finished_) return Finish();
    queued_bytes_ -= write_queue_.front().size();
    write_queue_.pop_front();
    if (!write_queue_.empty()) return WriteNext();
    if (sse_closing_) Finish();
  }

  beast::tcp_stream stream_;
  std::shared_ptr<ServerState> state_;
  asio::steady_timer keepalive_timer_;
  std::string remote_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool finished_ = false;
  // Set while an async handler owes a response: keeps the session alive without an
  // outstanding operation. Cleared by the response or by Finish().
  std::shared_ptr<Session> self_hold_;
  std::array<char, 4096> scratch_;

  // SSE mode.
  std::shared_ptr<SseStreamImpl> sse_;
  bool chunked_ = false;
  bool sse_closing_ = false;
  bool writing_ = false;
  size_t queued_bytes_ = 0;
  std::deque<std::string> write_queue_;
};

// Sends the async handler's response to the session's strand; exactly once. Dropping it
// unsent answers 500 so the client is not left hanging.
class ResponderImpl : public Responder {
 public:
  ResponderImpl(std::weak_ptr<Session> session, std::shared_ptr<ServerState> state,
                std::string what)
      : session_(std::move(session)), state_(std::move(state)), what_(std::move(what)) {}
  ~ResponderImpl() override {
    if (!sent_.exchange(true)) {
      FM_LOG_ERROR("http: async handler for {} dropped its responder", what_);
      Deliver(Response::Error(500, "internal error: handler did not respond"));
    }
  }
  void Send(Response response) override {
    if (sent_.exchange(true)) return;
    Deliver(std::move(response));
  }
  bool sent() const { return sent_.load(); }

 private:
  void Deliver(Response response) {
    std::shared_ptr<Session> session = session_.lock();
    if (!session) return;
    std::shared_lock<std::shared_mutex> lock(state_->post_mu);
    if (state_->stopped) return;
    asio::post(session->executor(), [session, r = std::move(response)]() mutable {
      session->DeliverAsyncResponse(std::move(r));
    });
  }

  std::weak_ptr<Session> session_;
  std::shared_ptr<ServerState> state_;
  std::string what_;
  std::atomic<bool> sent_{false};
};

void Session::RunAsync(const Router::Route& route, Request& request) {
  self_hold_ = shared_from_this();
  auto responder =
      std::make_shared<ResponderImpl>(weak_from_this(), state_, request.method + " " + request.path);
  Response failure = Guarded(request, [&] {
    route.async(request, responder);
    return Response();
  });
  if (failure.status != 200) responder->Send(std::move(failure));
}

void Session::StartSse(const Router::Route& route, Request& request) {
  chunked_ = version_ >= 11;
  stream_.expires_never();
  std::string head = chunked_ ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.0 200 OK\r\n";
  head +=
      "Content-Type: text/event-stream\r\n"
      "Cache-Control: no-cache\r\n"
      "X-Accel-Buffering: no\r\n";
  head += chunked_ ? "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
                   : "Connection: close\r\n\r\n";
  sse_ = std::make_shared<SseStreamImpl>(weak_from_this(), state_);
  QueueRaw(std::move(head));
  SseRead();
  ArmKeepalive();
  Response failure = Guarded(request, [&] {
    route.sse(request, sse_);
    return Response();
  });
  if (failure.status != 200) CloseSse();
}

bool SseStreamImpl::Post(std::string frame) {
  if (closed()) return false;
  std::shared_ptr<Session> session = session_.lock();
  if (!session) return false;
  std::shared_lock<std::shared_mutex> lock(state_->post_mu);
  if (state_->stopped) return false;
  asio::post(session->executor(), [session, f = std::move(frame)]() mutable {
    session->QueueSseFrame(std::move(f));
  });
  return true;
}

void SseStreamImpl::Close() {
  if (closing_.exchange(true)) return;
  std::shared_ptr<Session> session = session_.lock();
  if (!session) return;
  std::shared_lock<std::shared_mutex> lock(state_->post_mu);
  if (state_->stopped) return;
  asio::post(session->executor(), [session] { session->CloseSse(); });
}

void SseStreamImpl::OnClose(std::function<void()> callback) {
  {
    MutexLock lock(mu_);
    if (!ended_) {
      on_close_ = std::move(callback);  // replaces an earlier, not yet fired callback
      return;
    }
  }
  if (callback) callback();  // the stream already ended: run it now
}

void SseStreamImpl::MarkEnded() {
  std::function<void()> callback;
  {
    MutexLock lock(mu_);
    if (ended_) return;
    ended_ = true;
    callback = std::move(on_close_);
    on_close_ = nullptr;
  }
  if (!callback) return;
  try {
    callback();
  } catch (const std::exception& e) {
    FM_LOG_ERROR("http: SSE OnClose callback threw: {}", e.what());
  } catch (...) {
    FM_LOG_ERROR("http: SSE OnClose callback threw a non-exception");
  }
}

void RaiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  rlim_t target = limit.rlim_max == RLIM_INFINITY ? rlim_t{1 << 20} : limit.rlim_max;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < target) {
    limit.rlim_cur = target;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

struct Server::Impl {
  Impl(ServerConfig config, std::shared_ptr<const Router> router)
      : state(std::make_shared<ServerState>()),
        ioc(std::max(1, config.threads)),
        acceptor(asio::make_strand(ioc)),
        accept_retry(acceptor.get_executor()) {
    state->config = std::move(config);
    state->router = std::move(router);
  }

  void Accept() {
    acceptor.async_accept(asio::make_strand(ioc), [this](error_code ec, tcp::socket socket) {
      if (state->stopped) return;
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
        // Typically EMFILE: back off instead of spinning.
        FM_LOG_WARN("http: accept failed: {}", ec.message());
        accept_retry.expires_after(std::chrono::milliseconds(100));
        accept_retry.async_wait([this](error_code ec) {
          if (!ec && !state->stopped) Accept();
        });
        return;
      }
      auto session = std::make_shared<Session>(std::move(socket), state);
      {
        MutexLock lock(state->mu);
        state->sessions[session.get()] = session;
      }
      session->Start();
      Accept();
    });
  }

  void RunLoop() {
    while (true) {
      try {
        ioc.run();
        return;
      } catch (const std::exception& e) {
        FM_LOG_ERROR("http: io thread caught: {}", e.what());
      } catch (...) {
        FM_LOG_ERROR("http: io thread caught a non-exception");
      }
    }
  }

  // Declaration order matters: pending handlers own sessions, which use `state`, so the
  // io_context goes before it; the acceptor and timer go before the io_context.
  std::shared_ptr<ServerState> state;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry;
  std::vector<std::thread> threads;
  int port = 0;
  bool started = false;
  bool stopped = false;
};

Server::Server(ServerConfig config, std::shared_ptr<const Router> router)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(router))) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  Impl& im = *impl_;
  if (im.started) return FailedPrecondition("http server already started");
  const ServerConfig& config = im.state->config;
  RaiseFileLimit();
  error_code ec;
  tcp::resolver resolver(im.ioc);
  auto results = resolver.resolve(config.address, std::to_string(config.port),
                                  tcp::resolver::passive, ec);
  if (ec || results.empty()) {
    return Unavailable(fmt::format("cannot resolve listen address {}: {}", config.address,
                                   ec ? ec.message() : "no results"));
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  im.acceptor.open(endpoint.protocol(), ec);
  if (!ec) im.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) im.acceptor.bind(endpoint, ec);
  if (!ec) im.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    im.acceptor.close(ignored);
    return Unavailable(
        fmt::format("cannot listen on {}:{}: {}", config.address, config.port, ec.message()));
  }
  im.port = im.acceptor.local_endpoint(ec).port();
  im.started = true;
  im.Accept();
  int threads = std::max(1, config.threads);
  for (int i = 0; i < threads; ++i) im.threads.emplace_back([&im] { im.RunLoop(); });
  return Status::Ok();
}

void Server::Stop() {
  Impl& im = *impl_;
  if (!im.started || im.stopped) return;
  // From an io thread this would wait on itself.
  FM_CHECK(!im.ioc.get_executor().running_in_this_thread());
  im.stopped = true;
  {
    std::unique_lock<std::shared_mutex> lock(im.state->post_mu);
    im.state->stopped = true;
  }
  // Close the listener on its strand; after this no new session appears.
  std::promise<void> listener_closed;
  asio::post(im.acceptor.get_executor(), [&im, &listener_closed] {
    error_code ec;
    im.acceptor.close(ec);
    im.accept_retry.cancel();
    listener_closed.set_value();
  });
  listener_closed.get_future().wait();

  std::vector<std::shared_ptr<Session>> sessions;
  {
    MutexLock lock(im.state->mu);
    for (auto& [ptr, weak] : im.state->sessions) {
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
    }
  }
  struct Countdown {
    Mutex mu;
    std::condition_variable cv;
    size_t left;
  };
  auto countdown = std::make_shared<Countdown>();
  countdown->left = sessions.size();
  for (auto& s : sessions) {
    asio::post(s->executor(), [s, countdown] {
      s->Finish();
      MutexLock lock(countdown->mu);
      if (--countdown->left == 0) countdown->cv.notify_all();
    });
  }
  sessions.clear();
  {
    MutexLock lock(countdown->mu);
    if (!lock.WaitFor(countdown->cv, kStopTimeout,
                      [&]() FM_REQUIRES(countdown->mu) { return countdown->left == 0; })) {
      FM_LOG_WARN("http: {} connections did not close in time", countdown->left);
    }
  }
  im.ioc.stop();
  for (auto& t : im.threads) t.join();
  im.threads.clear();
}

int Server::port() const { return impl_->port; }

size_t Server::open_connections() const { return impl_->state->open.load(); }

}  // namespace flowmesh::http
