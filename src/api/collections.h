// Collections on the server (docs/internals/collections.md): named, versioned vector
// indexes per organisation. A create submits a one-task `collection` workflow in the
// caller's organisation and records a `building` version; the version becomes `ready` (or
// `failed`) from its build task's outcome the next time anyone looks at it. Queries run a
// retrieval-only `rag` task and wait for its result. Workers resolve names and fetch the
// blobs with the fleet's token.
//
// The pure parts (documents built from requests, outcomes read from results) are free
// functions below so they are tested without a server.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <string>

#include "auth/authenticator.h"
#include "cas/content_store.h"
#include "common/status.h"
#include "http/http.h"
#include "scheduler/event_hub.h"
#include "scheduler/submission.h"
#include "spec/workflow.h"
#include "state/store.h"

namespace flowmesh::api {

// ---- Pure parts ------------------------------------------------------------------------

// Names: 1–64 of [A-Za-z0-9._-], not starting with '.'.
Status CheckCollectionName(const std::string& name);

// The workflow (native JSON) that builds `name` from a create request's body
// {items, model, text_field?, id_field?, metadata_fields?, chunking?, metric?,
// batch_size?}. InvalidArgument naming the field when the body cannot make one; the
// options themselves are checked by the workflow validator when it is parsed.
Result<nlohmann::json> CollectionBuildDocument(const std::string& name, const nlohmann::json& body);

// The workflow that queries a ready version: a retrieval-only rag task over `queries`
// with the build's model. `search` carries top_k / filter / score_threshold.
nlohmann::json CollectionQueryDocument(const state::CollectionRecord& c,
                                       const std::vector<std::string>& queries,
                                       const nlohmann::json& search);

// What a finished build task says: fills `c` (ready, with model, sizes and digests) from
// the result JSON, or returns why the result is not a collection (c is then failed).
Status ApplyBuildResult(const nlohmann::json& result, state::CollectionRecord& c);

// Whether a task spec names collection `name` (a "collection" key holding the name, or
// an object whose "name" is it, anywhere in the spec).
bool SpecNamesCollection(const nlohmann::json& spec, const std::string& name);

// The public JSON of a version (no build_json; digests included).
nlohmann::json CollectionJson(const state::CollectionRecord& c);

// ---- The routes ------------------------------------------------------------------------

struct CollectionDeps {
  state::Store* store = nullptr;
  cas::ContentStore* blobs = nullptr;
  scheduler::EventHub* hub = nullptr;
  auth::Authenticator* auth = nullptr;  // null: authentication off
  // Checks the caller's quotas and submits a workflow for them (ApiService's submission
  // path); `done` runs on the scheduler's thread, `refused` (a quota refusal) at once.
  using SubmitDone = std::function<void(Result<scheduler::SubmitReply>)>;
  using Refused = std::function<void(http::Response)>;
  std::function<void(http::Request&, spec::WorkflowDef, std::string text, SubmitDone, Refused)>
      submit;
};

class CollectionService {
 public:
  explicit CollectionService(CollectionDeps deps);
  ~CollectionService();
  CollectionService(const CollectionService&) = delete;
  CollectionService& operator=(const CollectionService&) = delete;

  void AddRoutes(http::Router& r);

 private:
  struct Waits;  // queries waiting for their rag task (own event loop)

  void Create(http::Request& req, std::shared_ptr<http::Responder> resp);
  http::Response List(http::Request& req);
  http::Response Info(http::Request& req);
  http::Response Delete(http::Request& req);
  void Query(http::Request& req, std::shared_ptr<http::Responder> resp);
  http::Response Resolve(http::Request& req);
  http::Response Blob(http::Request& req);

  // The caller's versions of `name` ("" = all), each building one brought up to date
  // with its build task (and the change written).
  Result<std::vector<state::CollectionRecord>> Versions(const std::string& org,
                                                        const std::string& name);
  void Refresh(state::CollectionRecord& c);
  // The ready version `version` (0: the newest ready one) of org's `name`; NotFound
  // worded for the caller otherwise.
  Result<state::CollectionRecord> ReadyVersion(const std::string& org, const std::string& name,
                                               int version);
  bool IsFleet(const http::Request& req) const;

  CollectionDeps deps_;
  std::unique_ptr<Waits> waits_;
};

}  // namespace flowmesh::api
