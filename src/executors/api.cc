#include "executors/api.h"

#include <optional>
#include <thread>

#include "executors/api_client.h"
#include "executors/api_http.h"
#include "executors/api_request.h"

namespace flowmesh::executors {
namespace {

using nlohmann::json;
using api::ApiOptions;

// Forwards streamed text to the task log a line at a time (and what is left at the end).
class LogLines {
 public:
  LogLines(TaskContext& ctx, std::string prefix) : ctx_(ctx), prefix_(std::move(prefix)) {}
  void Add(const std::string& delta) {
    buffer_ += delta;
    for (size_t nl = buffer_.find('\n'); nl != std::string::npos; nl = buffer_.find('\n')) {
      Emit(buffer_.substr(0, nl));
      buffer_.erase(0, nl + 1);
    }
    if (buffer_.size() >= 200) Flush();
  }
  void Flush() {
    if (!buffer_.empty()) Emit(buffer_);
    buffer_.clear();
  }

 private:
  void Emit(const std::string& text) {
    if (ctx_.log) ctx_.log(prefix_ + text);
  }
  TaskContext& ctx_;
  std::string prefix_;
  std::string buffer_;
};

struct Call {
  const ApiOptions& options;
  std::string url;          // as written (placeholders unresolved): what results show
  std::string default_authorization;
  const CredentialGrant& grant;
  TaskContext& ctx;
};

Result<HttpExchange> BuildExchange(const Call& call, const std::optional<json>& item) {
  return api::ResolveExchange(call.options, api::PrepareRequest(call.options, call.url, item),
                              call.grant, call.default_authorization);
}

// One item: request with retries, then the item record of the result.
Result<json> RunItem(const Call& call, size_t index, const std::optional<json>& item) {
  const ApiOptions& o = call.options;
  FM_ASSIGN_OR_RETURN(HttpExchange x, BuildExchange(call, item));
  std::string where = "item " + std::to_string(index) + ": " + o.method + " " + call.url;
  api::SseAccumulator sse;
  std::optional<LogLines> lines;
  api::RetryHooks hooks;
  hooks.before_attempt = [&](HttpExchange& exchange) {
    lines.emplace(call.ctx, "[" + std::to_string(index) + "] ");
    sse = api::SseAccumulator();
    if (o.stream) exchange.on_chunk = [&](std::string_view chunk) { lines->Add(sse.Feed(chunk)); };
  };
  hooks.after_attempt = [&] { lines->Flush(); };
  hooks.log = [&](const std::string& line) {
    if (call.ctx.log) call.ctx.log(line);
  };
  Result<HttpReply> reply = api::SendWithRetries(o, x, where, call.ctx.cancelled, hooks);
  if (!reply.ok() && reply.status().code() == StatusCode::kCancelled) return Cancelled("api: cancelled");
  if (!reply.ok()) return reply.status();

  json out = {{"index", index},
              {"url", call.url},
              {"status_code", reply->status},
              {"truncated", reply->truncated}};
  if (item) out["prompt"] = api::PromptText(*item);
  if (o.response.include_headers) out["headers"] = reply->headers;
  if (o.response.raise_for_status && reply->status >= 400) {
    std::string msg = where + " answered HTTP " + std::to_string(reply->status) + ": " +
                      reply->body.substr(0, 200);
    // 4xx other than 408/429 will not change on retry; the rest may.
    return api::IsRetryableStatus(reply->status) ? Unavailable(msg) : FailedPrecondition(msg);
  }
  if (o.stream) {
    out["text"] = sse.text();
    out["usage"] = sse.usage();
    if (!sse.last().is_null()) out["response_json"] = sse.last();
    return out;
  }
  if (o.response.parse_json) {
    json body = json::parse(reply->body, nullptr, false);
    if (body.is_discarded()) {
      if (!o.response.return_body) return FailedPrecondition(where + ": the reply is not JSON");
      out["text"] = reply->body;
      return out;
    }
    out["response_json"] = body;
    api::ReplyContent content = api::ReadOpenAiReply(body);
    out["usage"] = content.usage;
    if (content.has_text) {
      out["text"] = content.text;
    } else if (o.response.return_body) {
      out["text"] = reply->body;
    }
  } else if (o.response.return_body) {
    out["text"] = reply->body;
  }
  return out;
}

// Resolves the endpoint and the credentials the spec names.
Status Prepare(TaskContext& ctx, const ApiOptions& options, std::string* url,
               CredentialGrant* grant, std::string* default_authorization) {
  bool need_default = options.url.empty();
  FM_ASSIGN_OR_RETURN(*grant, api::FetchGrant(ctx, ctx.spec.value("api", json::object()),
                                              need_default, "spec.api"));
  if (need_default) {
    std::string base = grant->default_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    *url = base + "/v1/chat/completions";
    *default_authorization = grant->default_authorization;
  }
  return Status::Ok();
}

}  // namespace

Result<json> ApiExecutor::Run(TaskContext& ctx) {
  FM_ASSIGN_OR_RETURN(ApiOptions options, api::ParseApiOptions(ctx.spec));
  std::string url = options.url;
  CredentialGrant grant;
  std::string default_authorization;
  FM_RETURN_IF_ERROR(Prepare(ctx, options, &url, &grant, &default_authorization));
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return InvalidArgument("spec.api.url must start with http:// or https://");
  }

  std::vector<std::optional<json>> items;
  const json& data = ctx.spec.value("data", json::object());
  if (data.is_object() && data.contains("items") && data["items"].is_array()) {
    for (const auto& item : data["items"]) items.emplace_back(item);
    if (items.empty()) return InvalidArgument("spec.data produced no items");
  } else {
    items.emplace_back(std::nullopt);
  }

  Call call{options, url, default_authorization, grant, ctx};
  std::vector<Result<json>> results(items.size(), Result<json>(Internal("not run")));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    for (size_t i = next++; i < items.size() && !failed.load() && !ctx.cancelled.load();
         i = next++) {
      results[i] = RunItem(call, i, items[i]);
      if (!results[i].ok()) failed = true;
    }
  };
  size_t threads = std::min<size_t>(items.size(), static_cast<size_t>(options.concurrency));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (ctx.cancelled.load()) return Cancelled("api: cancelled");

  json out_items = json::array();
  json usage = json::object();
  for (auto& r : results) {
    if (!r.ok() && r.status().message() != "not run") return r.status();
  }
  for (auto& r : results) {
    api::AddUsage(usage, r->value("usage", json()));
    out_items.push_back(std::move(*r));
  }
  bool truncated = false;
  for (const auto& i : out_items) truncated = truncated || i.value("truncated", false);
  return json{{"ok", true},
              {"executor", "api"},
              {"method", options.method},
              {"url", url},
              {"status_code", out_items[0].value("status_code", 0)},
              {"truncated", truncated},
              {"usage", usage},
              {"items", std::move(out_items)}};
}

}  // namespace flowmesh::executors
