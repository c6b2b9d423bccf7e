// Boost-free parts of fm_http: router, percent coding, query parsing, SSE framing/parsing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "http/http.h"
#include "http/sse.h"

namespace flowmesh::http {
namespace {

Request MakeRequest(const std::string& method, const std::string& target) {
  Request r;
  r.method = method;
  r.target = target;
  r.path = PercentDecode(target.substr(0, target.find('?')), false);
  return r;
}

TEST(RouterTest, MatchesLiteralsCapturesAndRest) {
  Router router;
  router.Add("GET", "/api/v1/workflows", [](Request&) { return Response(); });
  router.Add("GET", "/api/v1/workflows/{id}", [](Request&) { return Response(); });
  router.Add("POST", "/api/v1/workflows/{id}/cancel", [](Request&) { return Response(); });
  router.Add("GET", "/blobs/{digest}/files/{path...}", [](Request&) { return Response(); });

  bool mismatch = true;
  Request a = MakeRequest("GET", "/api/v1/workflows");
  const Router::Route* r = router.Match(a, &mismatch);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r, router.routes()[0].get());
  EXPECT_FALSE(mismatch);

  Request b = MakeRequest("GET", "/api/v1/workflows/wf-1?x=1");
  r = router.Match(b, &mismatch);
  ASSERT_EQ(r, router.routes()[1].get());
  EXPECT_EQ(b.params["id"], "wf-1");

  Request c = MakeRequest("GET", "/blobs/sha256:ab/files/dir/sub/file%20name.txt");
  r = router.Match(c, &mismatch);
  ASSERT_EQ(r, router.routes()[3].get());
  EXPECT_EQ(c.params["digest"], "sha256:ab");
  EXPECT_EQ(c.params["path"], "dir/sub/file name.txt");

  // The rest capture needs at least one segment.
  Request d = MakeRequest("GET", "/blobs/x/files");
  EXPECT_EQ(router.Match(d, &mismatch), nullptr);
  EXPECT_FALSE(mismatch);
}

TEST(RouterTest, EncodedSlashStaysInsideOneSegment) {
  Router router;
  router.Add("GET", "/items/{name}", [](Request&) { return Response(); });
  Request r = MakeRequest("GET", "/items/a%2Fb");
  ASSERT_NE(router.Match(r, nullptr), nullptr);
  EXPECT_EQ(r.params["name"], "a/b");
}

TEST(RouterTest, MethodMismatchIsReported) {
  Router router;
  router.Add("POST", "/things/{id}", [](Request&) { return Response(); });
  bool mismatch = false;
  Request r = MakeRequest("GET", "/things/7");
  EXPECT_EQ(router.Match(r, &mismatch), nullptr);
  EXPECT_TRUE(mismatch);
  Request other = MakeRequest("GET", "/nothing");
  EXPECT_EQ(router.Match(other, &mismatch), nullptr);
  EXPECT_FALSE(mismatch);
}

TEST(RouterTest, LiteralBeatsCaptureRegardlessOfOrder) {
  Router router;
  router.Add("GET", "/workflows/{id}", [](Request&) { return Response(); });
  router.Add("GET", "/workflows/search", [](Request&) { return Response(); });
  Request r = MakeRequest("GET", "/workflows/search");
  EXPECT_EQ(router.Match(r, nullptr), router.routes()[1].get());
  Request s = MakeRequest("GET", "/workflows/other");
  EXPECT_EQ(router.Match(s, nullptr), router.routes()[0].get());
}

TEST(PercentTest, RoundTripsAndToleratesBadEscapes) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc", false), "a b/c");
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("100%", false), "100%");
  EXPECT_EQ(PercentDecode("%zz%4", false), "%zz%4");
  EXPECT_EQ(PercentEncode("a b/c~-_.ü"), "a%20b%2Fc~-_.%C3%BC");
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(PercentDecode(PercentEncode(all), false), all);
}

TEST(QueryTest, ParsesPairs) {
  auto q = ParseQuery("status=DONE&limit=10&name=a%20b+c&flag&=x&&empty=");
  EXPECT_EQ(q["status"], "DONE");
  EXPECT_EQ(q["limit"], "10");
  EXPECT_EQ(q["name"], "a b c");
  EXPECT_EQ(q.count("flag"), 1u);
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["empty"], "");
  EXPECT_TRUE(ParseQuery("").empty());
}

TEST(RequestTest, HeadersAreCaseInsensitive) {
  Request r;
  r.headers["Last-Event-ID"] = "42";
  r.query["cursor"] = "7";
  EXPECT_EQ(r.Header("last-event-id"), "42");
  EXPECT_EQ(r.Header("LAST-EVENT-ID"), "42");
  EXPECT_EQ(r.Header("missing"), "");
  EXPECT_EQ(r.Query("cursor"), "7");
  EXPECT_EQ(r.Query("nope", "dflt"), "dflt");
}

TEST(ResponseTest, ErrorBodyIsValidJson) {
  Response r = Response::Error(400, "bad \"quote\" \\ and \n newline \xff");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.content_type, "application/json");
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["detail"].get<std::string>().substr(0, 11), "bad \"quote\"");

  Response nf = Response::Error(NotFound("no such workflow"));
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nlohmann::json::parse(nf.body)["detail"], "no such workflow");
  EXPECT_EQ(Response::Error(TooLarge("x")).status, 413);
  EXPECT_EQ(Response::Json(201, "{}").status, 201);
}

TEST(SseFormatTest, FramesEvents) {
  EXPECT_EQ(FormatSseEvent("7", "log", "hello"), "id: 7\nevent: log\ndata: hello\n\n");
  EXPECT_EQ(FormatSseEvent("", "", "a\nb"), "data: a\ndata: b\n\n");
  EXPECT_EQ(FormatSseEvent("", "", ""), "data: \n\n");
  EXPECT_EQ(FormatSseComment("keep-alive"), ": keep-alive\n\n");
}

TEST(SseParserTest, ParsesAcrossArbitrarySplits) {
  const std::string wire =
      ": keep-alive\n\n"
      "id: 1\nevent: log\ndata: {\"a\":1}\n\n"
      "data: line one\r\ndata: line two\r\n\r\n"
      "id: 3\ndata:no-space\nretry: 10\nunknown: x\n\n"
      "event: eos\ndata: \n\n";
  for (size_t step : {1u, 2u, 3u, 7u, 1000u}) {
    SseParser parser;
    std::vector<SseEvent> events;
    for (size_t i = 0; i < wire.size(); i += step) {
      ASSERT_TRUE(parser.Feed(std::string_view(wire).substr(i, step), [&](const SseEvent& e) {
        events.push_back(e);
        return true;
      }));
    }
    ASSERT_EQ(events.size(), 4u) << "step " << step;
    EXPECT_EQ(events[0].id, "1");
    EXPECT_EQ(events[0].event, "log");
    EXPECT_EQ(events[0].data, "{\"a\":1}");
    EXPECT_EQ(events[1].event, "message");
    EXPECT_EQ(events[1].data, "line one\nline two");
    EXPECT_EQ(events[1].id, "1");  // the last event id persists
    EXPECT_EQ(events[2].id, "3");
    EXPECT_EQ(events[2].data, "no-space");
    EXPECT_EQ(events[3].event, "eos");
    EXPECT_EQ(events[3].data, "");
  }
}

TEST(SseParserTest, StopsWhenCallbackReturnsFalse) {
  SseParser parser;
  int seen = 0;
  EXPECT_FALSE(parser.Feed("data: 1\n\ndata: 2\n\n", [&](const SseEvent&) {
    ++seen;
    return false;
  }));
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace flowmesh::http
