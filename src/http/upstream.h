// What the blocking Client and the server's SSE relay (SseStream::Relay) share: reading a
// base URL and turning an upstream's error response into a Status. Internal to fm_http;
// exposed for tests.
#pragma once

#include <string>

#include "common/status.h"

namespace flowmesh::http {

struct BaseUrl {
  std::string host;    // without the brackets of an IPv6 literal
  std::string port;    // "80" when the URL names none
  std::string prefix;  // path prefix, without a trailing '/'
  std::string base;    // "http://host:port" for messages
};

// "http://host[:port][/prefix]"; InvalidArgument naming the URL otherwise.
Result<BaseUrl> ParseBaseUrl(const std::string& url);

// An HTTP error response as a Status: the code mapped from the HTTP status, the message
// "HTTP <status>: <detail>" with the body's {"detail"} when it has one, else the body.
Status StatusFromHttp(int http_status, const std::string& body);

}  // namespace flowmesh::http
