// fm_http server + client against each other: a real server on port 0, the real Client,
// and raw sockets where the test needs to see or send exact bytes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "http/http.h"

namespace flowmesh::http {
namespace {

using namespace std::chrono_literals;

// Waits for a condition signalled by server-side callbacks.
class Signal {
 public:
  void Notify(const std::function<void()>& change = nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    if (change) change();
    cv_.notify_all();
  }
  bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, pred);
  }
  std::mutex& mu() { return mu_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

int RawConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads until `needle` shows up, the peer closes (*eof = true), or the timeout passes.
std::string ReadUntil(int fd, std::string_view needle, std::chrono::milliseconds timeout,
                      bool* eof = nullptr) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (eof) *eof = false;
  while (needle.empty() || got.find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (eof) *eof = true;
      break;
    }
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

size_t ThreadCount() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
    ++n;
  }
  return n;
}

std::string Detail(const ClientResponse& r) {
  return nlohmann::json::parse(r.body).at("detail").get<std::string>();
}

class HttpServerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) server_->Stop();
    for (auto& t : workers_) t.join();
  }

  void StartServer(ServerConfig config = {}) {
    config.port = 0;
    server_ = std::make_unique<Server>(config, router_);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->port(), 0);
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  std::shared_ptr<Router> router_ = std::make_shared<Router>();
  std::unique_ptr<Server> server_;
  std::vector<std::thread> workers_;  // threads started by handlers; joined in TearDown
  std::mutex workers_mu_;
};

TEST_F(HttpServerTest, RoutesWithParamsQueryAndRestCaptures) {
  router_->Add("GET", "/items/{id}", [](Request& r) {
    nlohmann::json j = {{"id", r.params["id"]}, {"q", r.Query("q")}, {"path", r.path}};
    return Response::Json(200, j.dump());
  });
  router_->Add("GET", "/files/{bucket}/{path...}", [](Request& r) {
    return Response::Json(200, nlohmann::json{{"bucket", r.params["bucket"]},
                                               {"path", r.params["path"]}}
                                   .dump());
  });
  router_->Add("POST", "/echo", [](Request& r) {
    Response resp;
    resp.content_type = "text/plain";
    resp.headers["X-Echo-Header"] = r.Header("x-test");
    resp.body = r.body;
    return resp;
  });
  StartServer();
  Client client(Url());

  auto r = client.Get("/items/it%20em-7?q=a+b%26c");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  auto j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["id"], "it em-7");
  EXPECT_EQ(j["q"], "a b&c");
  EXPECT_EQ(j["path"], "/items/it em-7");
  EXPECT_EQ(r->headers["content-type"], "application/json");

  r = client.Get("/files/b1/dir/sub/x.txt");
  ASSERT_TRUE(r.ok());
  j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["bucket"], "b1");
  EXPECT_EQ(j["path"], "dir/sub/x.txt");

  r = client.Request("POST", "/echo", "payload", {{"X-Test", "hdr"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "payload");
  EXPECT_EQ(r->headers["x-echo-header"], "hdr");
  EXPECT_EQ(r->headers["Content-Type"], "text/plain");
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  router_->Add("POST", "/only-post", [](Request&) { return Response::Json(200, "{}"); });
  StartServer();
  Client client(Url());
  auto r = client.Get("/nope");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(Detail(*r), "not found: GET /nope");
  r = client.Get("/only-post");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
  EXPECT_NE(Detail(*r).find("GET /only-post"), std::string::npos);
  r = client.PostJson("/only-post", "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, BodyOverLimitIs413AndServerKeepsServing) {
  std::atomic<int> calls{0};
  router_->Add("POST", "/upload", [&](Request& r) {
    ++calls;
    return Response::Json(200, std::to_string(r.body.size()));
  });
  ServerConfig config;
  config.body_limit = 1024;
  StartServer(config);
  Client client(Url());

  auto r = client.Request("POST", "/upload", std::string(1024, 'x'));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "1024");

  r = client.Request("POST", "/upload", std::string(64 * 1024, 'x'));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(Detail(*r), "request body exceeds 1024 bytes");
  EXPECT_EQ(calls.load(), 1);

  // Chunked bodies are limited too (no Content-Length to check up front).
  int fd = RawConnect(server_->port());
  ASSERT_GE(fd, 0);
  std::string chunked =
      "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "800\r\n" + std::string(0x800, 'y') + "\r\n0\r\n\r\n";
  ASSERT_TRUE(WriteAll(fd, chunked));
  std::string got = ReadUntil(fd, "", 10s);
  ::close(fd);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 413");

  r = client.Request("POST", "/upload", "small");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(HttpServerTest, MalformedRequestGets400AndClose) {
  router_->Add("GET", "/ok", [](Request&) { return Response::Json(200, "{}"); });
  StartServer();
  int fd = RawConnect(server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "THIS IS NOT HTTP\r\n\r\n"));
  bool eof = false;
  std::string got = ReadUntil(fd, "", 10s, &eof);
  ::close(fd);
  EXPECT_TRUE(eof);
  EXPECT_EQ(got.substr(0, 12), "HTTP/1.1 400") << got;
  EXPECT_NE(got.find("\"detail\""), std::string::npos);

  Client client(Url());
  auto r = client.Get("/ok");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(HttpServerTest, ThrowingHandlerGives500AndServerSurvives) {
  router_->Add("GET", "/boom", [](Request&) -> Response { throw std::runtime_error("kaboom"); });
  router_->AddAsync("GET", "/async-boom", [](Request&, std::shared_ptr<Responder>) {
    throw std::logic_error("async kaboom");
  });
  router_->Add("GET", "/ok", [](Request&) { return Response::Json(200, "{\"ok\":true}"); });
  StartServer();
  Client client(Url());
  for (int i = 0; i < 3; ++i) {
    auto r = client.Get("/boom");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(Detail(*r), "internal error: kaboom");
    r = client.Get("/async-boom");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(Detail(*r), "internal error: async kaboom");
    r = client.Get("/ok");
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200);
  }
}

TEST_F(HttpServerTest, AsyncResponderAnswersFromAnotherThread) {
  router_->AddAsync("GET", "/slow/{n}", [this](Request& r, std::shared_ptr<Responder> out) {
    std::string n = r.params["n"];
    std::lock_guard<std::mutex> lock(workers_mu_);
    workers_.emplace_back([out, n] {
      out->Send(Response::Json(202, "{\"n\":" + n + "}"));
      out->Send(Response::Json(500, "second send is ignored"));
    });
  });
  // A responder dropped without Send still answers (500) instead of hanging the client.
  router_->AddAsync("GET", "/dropped", [](Request&, std::shared_ptr<Responder>) {});
  StartServer();
  Client client(Url());
  for (int i = 0; i < 5; ++i) {
    auto r = client.Get("/slow/" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, 202);
    EXPECT_EQ(r->body, "{\"n\":" + std::to_string(i) + "}");
  }
  auto r = client.Get("/dropped");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
}

TEST_F(HttpServerTest, KeepAliveReusesOneConnection) {
  router_->Add("GET", "/who", [](Request& r) { return Response::Json(200, r.remote_address); });
  StartServer();
  Client client(Url());
  std::string first;
  for (int i = 0; i < 200; ++i) {
    auto r = client.Get("/who");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (i == 0) first = r->body;
    EXPECT_EQ(r->body, first);
  }
  EXPECT_NE(first.find("127.0.0.1:"), std::string::npos);
  EXPECT_EQ(server_->open_connections(), 1u);
}

TEST_F(HttpServerTest, ClientReconnectsWhenServerClosedTheConnection) {
  router_->Add("GET", "/ping", [](Request&) { return Response::Json(200, "\"pong\""); });
  StartServer();
  int port = server_->port();
  Client client(Url());
  ASSERT_TRUE(client.Get("/ping").ok());
  server_->Stop();  // closes the kept-alive connection under the client
  ServerConfig config;
  config.port = port;
  server_ = std::make_unique<Server>(config, router_);
  ASSERT_TRUE(server_->Start().ok());
  auto r = client.Get("/ping");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "\"pong\"");
}

TEST_F(HttpServerTest, UnreachableServerIsUnavailableNamingTheUrl) {
  StartServer();
  std::string url = Url();
  server_->Stop();
  server_.reset();
  Client client(url, 2000ms);
  auto r = client.Get("/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("cannot connect to " + url), std::string::npos)
      << r.status().message();
  Status s = client.StreamSse("/x", {}, [](const SseEvent&) { return true; });
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find(url), std::string::npos);

  Client bad("ftp://nowhere");
  EXPECT_EQ(bad.Get("/").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(HttpServerTest, SseEventsArriveInOrderWithFields) {
  router_->AddSse("/events", [this](Request& r, std::shared_ptr<SseStream> s) {
    std::lock_guard<std::mutex> lock(workers_mu_);
    workers_.emplace_back([s] {
      for (int i = 1; i <= 50; ++i) {
        s->Send(std::to_string(i), i % 2 ? "log" : "", "payload " + std::to_string(i));
      }
      s->Send("51", "multi", "line one\nline two\nline three");
      s->Close();
    });
  });
  StartServer();
  Client client(Url());
  std::vector<SseEvent> events;
  Status st = client.StreamSse("/events", {}, [&](const SseEvent& e) {
    events.push_back(e);
    return true;
  });
  ASSERT_TRUE(st.ok()) << st.ToString();  // the server's Close ends the stream cleanly
  ASSERT_EQ(events.size(), 51u);
  for (int i = 1; i <= 50; ++i) {
    EXPECT_EQ(events[i - 1].id, std::to_string(i));
    EXPECT_EQ(events[i - 1].event, i % 2 ? "log" : "message");
    EXPECT_EQ(events[i - 1].data, "payload " + std::to_string(i));
  }
  EXPECT_EQ(events[50].event, "multi");
  EXPECT_EQ(events[50].data, "line one\nline two\nline three");
}

TEST_F(HttpServerTest, SseSeesLastEventIdAndPrecheck) {
  router_->AddSse(
      "/logs/{id}",
      [](Request& r, std::shared_ptr<SseStream> s) {
        s->Send("", "resume", r.Header("last-event-id") + "|" + r.Query("cursor"));
      },
      [](Request& r) -> std::optional<Response> {
        if (r.params["id"] == "missing") return Response::Error(NotFound("no such workflow"));
        return std::nullopt;
      });
  StartServer();
  Client client(Url());
  std::string data;
  Status st = client.StreamSse("/logs/wf?cursor=5", {{"Last-Event-ID", "42"}},
                               [&](const SseEvent& e) {
                                 data = e.data;
                                 return false;
                               });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(data, "42|5");

  st = client.StreamSse("/logs/missing", {}, [](const SseEvent&) { return true; });
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("no such workflow"), std::string::npos);
}

TEST_F(HttpServerTest, ClientDisconnectFiresOnCloseAndDropsConnection) {
  Signal signal;
  int closes = 0;
  std::shared_ptr<SseStream> stream;
  router_->AddSse("/events", [&](Request&, std::shared_ptr<SseStream> s) {
    s->OnClose([&] { signal.Notify([&] { ++closes; }); });
    s->Send("1", "hello", "world");
    signal.Notify([&] { stream = s; });
  });
  StartServer();
  Client client(Url());
  int received = 0;
  Status st = client.StreamSse("/events", {}, [&](const SseEvent& e) {
    ++received;
    return false;  // hang up after the first event
  });
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(received, 1);
  ASSERT_TRUE(signal.WaitFor([&] { return closes == 1; }));
  EXPECT_EQ(server_->open_connections(), 0u);
  std::lock_guard<std::mutex> lock(signal.mu());
  EXPECT_TRUE(stream->closed());
  EXPECT_FALSE(stream->Send("2", "", "nobody listens"));
  // OnClose set after the end runs at once, and only once.
  int late = 0;
  stream->OnClose([&] { ++late; });
  EXPECT_EQ(late, 1);
  EXPECT_EQ(closes, 1);
}

TEST_F(HttpServerTest, SseKeepAliveCommentsAndHeadersOnTheWire) {
  router_->AddSse("/events", [](Request&, std::shared_ptr<SseStream> s) {
    s->Send("1", "log", "first");
  });
  ServerConfig config;
  config.sse_keepalive = 1s;
  config.idle_timeout = 1s;  // must not apply to SSE streams
  StartServer(config);
  int fd = RawConnect(server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string got = ReadUntil(fd, ": keep-alive\n\n", 10s);
  // A second keep-alive proves the timer re-arms.
  size_t first = got.find(": keep-alive\n\n");
  ASSERT_NE(first, std::string::npos) << got;
  got += ReadUntil(fd, ": keep-alive\n\n", 10s);
  ::close(fd);
  EXPECT_NE(got.find(": keep-alive\n\n", first + 1), std::string::npos) << got;
  EXPECT_EQ(got.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_NE(got.find("Content-Type: text/event-stream\r\n"), std::string::npos);
  EXPECT_NE(got.find("Cache-Control: no-cache\r\n"), std::string::npos);
  EXPECT_NE(got.find("X-Accel-Buffering: no\r\n"), std::string::npos);
  EXPECT_NE(got.find("id: 1\nevent: log\ndata: first\n\n"), std::string::npos);
  EXPECT_LT(got.find("data: first"), first);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionIsClosed) {
  router_->Add("GET", "/ok", [](Request&) { return Response::Json(200, "{}"); });
  ServerConfig config;
  config.idle_timeout = 1s;
  StartServer(config);
  int fd = RawConnect(server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
  bool eof = false;
  std::string got = ReadUntil(fd, "no such text", 10s, &eof);
  ::close(fd);
  EXPECT_EQ(got.substr(0, 15), "HTTP/1.1 200 OK");
  EXPECT_TRUE(eof);  // the server hung up on the idle keep-alive connection
}

TEST_F(HttpServerTest, StopClosesSseStreamsAndFiresOnClose) {
  Signal signal;
  int opened = 0;
  int closes = 0;
  router_->AddSse("/events", [&](Request&, std::shared_ptr<SseStream> s) {
    s->OnClose([&] { signal.Notify([&] { ++closes; }); });
    signal.Notify([&] { ++opened; });
  });
  StartServer();
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) {
    int fd = RawConnect(server_->port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(WriteAll(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    fds.push_back(fd);
  }
  ASSERT_TRUE(signal.WaitFor([&] { return opened == 3; }));
  server_->Stop();
  {
    std::lock_guard<std::mutex> lock(signal.mu());
    EXPECT_EQ(closes, 3);
  }
  EXPECT_EQ(server_->open_connections(), 0u);
  for (int fd : fds) {
    bool eof = false;
    ReadUntil(fd, "no such text", 10s, &eof);
    EXPECT_TRUE(eof);
    ::close(fd);
  }
}

TEST_F(HttpServerTest, HoldsAThousandConcurrentSseStreams) {
  constexpr int kStreams = 1000;
  Signal signal;
  std::vector<std::shared_ptr<SseStream>> streams;
  int closes = 0;
  router_->AddSse("/events", [&](Request&, std::shared_ptr<SseStream> s) {
    s->OnClose([&] { signal.Notify([&] { ++closes; }); });
    signal.Notify([&] { streams.push_back(s); });
  });
  ServerConfig config;
  config.threads = 2;
  StartServer(config);
  const size_t threads_before = ThreadCount();

  std::vector<int> fds;
  for (int i = 0; i < kStreams; ++i) {
    int fd = RawConnect(server_->port());
    ASSERT_GE(fd, 0) << "connection " << i;
    ASSERT_TRUE(WriteAll(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    fds.push_back(fd);
  }
  ASSERT_TRUE(signal.WaitFor([&] { return streams.size() == kStreams; }, 60s));
  EXPECT_EQ(server_->open_connections(), static_cast<size_t>(kStreams));
  EXPECT_EQ(ThreadCount(), threads_before);

  {
    std::lock_guard<std::mutex> lock(signal.mu());
    for (size_t i = 0; i < streams.size(); ++i) {
      EXPECT_TRUE(streams[i]->Send(std::to_string(i), "hello", "to everyone"));
    }
  }
  // Every socket must see its event; poll them all from this one thread.
  std::vector<std::string> got(kStreams);
  std::vector<bool> done(kStreams, false);
  int remaining = kStreams;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (remaining > 0 && std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> pfds;
    std::vector<int> index;
    for (int i = 0; i < kStreams; ++i) {
      if (done[i]) continue;
      pfds.push_back({fds[i], POLLIN, 0});
      index.push_back(i);
    }
    if (::poll(pfds.data(), pfds.size(), 1000) <= 0) continue;
    for (size_t k = 0; k < pfds.size(); ++k) {
      if (!(pfds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int i = index[k];
      char buf[4096];
      ssize_t n = ::recv(fds[i], buf, sizeof buf, 0);
      if (n <= 0) {
        done[i] = true;  // counted as a failure below
        --remaining;
        continue;
      }
      got[i].append(buf, static_cast<size_t>(n));
      if (got[i].find("event: hello\ndata: to everyone\n\n") != std::string::npos) {
        done[i] = true;
        --remaining;
      }
    }
  }
  int with_event = 0;
  for (const auto& g : got) {
    with_event += g.find("data: to everyone") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(with_event, kStreams);
  EXPECT_EQ(ThreadCount(), threads_before);

  for (int fd : fds) ::close(fd);
  ASSERT_TRUE(signal.WaitFor([&] { return closes == kStreams; }, 60s)) << closes;
  EXPECT_EQ(server_->open_connections(), 0u);
  std::lock_guard<std::mutex> lock(signal.mu());
  for (const auto& s : streams) EXPECT_TRUE(s->closed());
}

}  // namespace
}  // namespace flowmesh::http
