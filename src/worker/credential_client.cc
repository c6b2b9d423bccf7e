#include "worker/credential_client.h"

#include <map>
#include <memory>
#include <thread>

#include "http/http.h"

namespace flowmesh::worker {

Result<executors::CredentialGrant> FetchCredentials(const ServerLink& link,
                                                    const std::string& task_id, int attempt,
                                                    const std::vector<std::string>& names,
                                                    bool default_endpoint) {
  if (link.root_url.empty()) return FailedPrecondition("credentials: no server to ask");
  thread_local std::map<std::string, std::unique_ptr<http::Client>> clients;
  auto& client = clients[link.root_url];
  if (!client) client = std::make_unique<http::Client>(link.root_url, link.timeout);
  nlohmann::json body = {{"task_id", task_id},
                         {"attempt", attempt},
                         {"worker_id", link.worker_id},
                         {"names", names},
                         {"default_endpoint", default_endpoint}};
  http::Headers headers;
  if (!link.api_token.empty()) headers["Authorization"] = "Bearer " + link.api_token;
  // 409: the server has not recorded this attempt yet (its dispatch overtook the store's
  // commit); asked again until it has, within the deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  auto backoff = std::chrono::milliseconds(20);
  Result<http::ClientResponse> reply = Unavailable("not asked");
  for (;;) {
    reply = client->PostJson("/api/v1/secrets/resolve", body.dump(), headers);
    if (!reply.ok()) return reply.status();
    if (reply->status != 409 || std::chrono::steady_clock::now() + backoff > deadline) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
  auto json = nlohmann::json::parse(reply->body, nullptr, false);
  std::string error = json.is_object() ? json.value("detail", json.value("error", "")) : "";
  if (reply->status == 404 || reply->status == 403) {
    // The server's answer names what is missing, never a value.
    return FailedPrecondition("credentials refused by the server: " + error);
  }
  if (reply->status != 200 || !json.is_object()) {
    return Unavailable("credentials: the server answered " + std::to_string(reply->status));
  }
  executors::CredentialGrant grant;
  if (auto it = json.find("values"); it != json.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      if (v.is_string()) grant.values[k] = v.get<std::string>();
    }
  }
  if (auto it = json.find("default_endpoint"); it != json.end() && it->is_object()) {
    grant.default_url = it->value("url", "");
    grant.default_authorization = it->value("authorization", "");
  }
  return grant;
}

}  // namespace flowmesh::worker
