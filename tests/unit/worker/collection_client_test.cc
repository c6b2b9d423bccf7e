// The worker's collection client against a real HTTP server on port 0 that answers the
// fleet's collection routes the way the API does (docs/internals/collections.md): resolve
// (409 first, as when the attempt is not recorded yet), blobs by digest. Also the blob
// cache on its own: digests checked, least recently used trimmed first.
#include "worker/collection_client.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/hash.h"
#include "http/http.h"
#include "rag/collection.h"
#include "support/temp_dir.h"
#include "vector/vector_index.h"

namespace flowmesh::worker {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A two-entry collection's files, as a build writes them.
struct Files {
  std::string index, entries;
};

Files MakeFiles(const std::string& dir) {
  auto index = vector::VectorIndex::Build(2, {1, 0, 0, 1});
  EXPECT_TRUE(index.ok());
  EXPECT_TRUE((*index)->Save(dir + "/index.fmvi").ok());
  std::string entries = rag::EntryLine({"a#0", "a", 0, "alpha", {{"lang", "en"}}}) + "\n" +
                        rag::EntryLine({"b#0", "b", 0, "beta", {{"lang", "fr"}}}) + "\n";
  return {ReadAll(dir + "/index.fmvi"), entries};
}

class CollectionsEndpoint {
 public:
  explicit CollectionsEndpoint(Files files) : files_(std::move(files)) {
    auto router = std::make_shared<http::Router>();
    router->Add("POST", "/api/v1/collections/resolve", [this](http::Request& req) {
      std::lock_guard lock(mu_);
      ++resolves_;
      EXPECT_EQ(req.Header("Authorization"), "Bearer svc-token");
      json body = json::parse(req.body);
      if (resolves_ == 1) return http::Response::Error(409, "attempt not recorded yet");
      if (body["name"] != "docs")
        return http::Response::Error(404, "no collection " + body["name"].get<std::string>());
      json files = {
          {"index", {{"digest", Sha256Hex(files_.index)}, {"size", files_.index.size()}}},
          {"entries", {{"digest", Sha256Hex(files_.entries)}, {"size", files_.entries.size()}}}};
      return http::Response::Json(200, json{{"name", "docs"},
                                            {"version", 3},
                                            {"model", "local:/m.gguf"},
                                            {"dim", 2},
                                            {"count", 2},
                                            {"metric", "cosine"},
                                            {"files", files}}
                                           .dump());
    });
    router->Add("GET", "/api/v1/collections/blobs/{digest}", [this](http::Request& req) {
      std::lock_guard lock(mu_);
      ++blobs_;
      std::string d = req.params["digest"];
      std::string bytes = d == Sha256Hex(files_.index) ? files_.index : files_.entries;
      if (corrupt_) bytes += "!";
      http::Response r;
      r.status = 200;
      r.content_type = "application/octet-stream";
      r.body = bytes;
      return r;
    });
    server_ = std::make_unique<http::Server>(http::ServerConfig{}, router);
    EXPECT_TRUE(server_->Start().ok());
  }
  ServerLink Link() const {
    return {"http://127.0.0.1:" + std::to_string(server_->port()), "svc-token",
            std::chrono::milliseconds(5000), "wkr-1"};
  }
  int blobs() {
    std::lock_guard lock(mu_);
    return blobs_;
  }
  void Corrupt() {
    std::lock_guard lock(mu_);
    corrupt_ = true;
  }

 private:
  Files files_;
  std::mutex mu_;
  int resolves_ = 0, blobs_ = 0;
  bool corrupt_ = false;
  std::unique_ptr<http::Server> server_;
};

TEST(CollectionClient, ResolvesFetchesVerifiesAndKeepsIt) {
  testing::TempDir tmp;
  CollectionsEndpoint server(MakeFiles(tmp.path()));
  CollectionCacheConfig config;
  config.dir = tmp / "cache";
  CollectionClient client(server.Link(), config);
  auto c = client.Fetch("tsk-1", 1, "docs", 0);  // after one 409
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->info().version, 3);
  EXPECT_EQ((*c)->entries().size(), 2u);
  EXPECT_EQ((*c)->entries()[1].metadata["lang"], "fr");
  EXPECT_EQ(client.downloads(), 2u);
  // The second task gets the loaded one: no download, the same object.
  auto again = client.Fetch("tsk-2", 1, "docs", 0);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), c->get());
  EXPECT_EQ(server.blobs(), 2);
  // Another process of the node finds the blobs in the shared directory.
  CollectionClient other(server.Link(), config);
  ASSERT_TRUE(other.Fetch("tsk-3", 1, "docs", 0).ok());
  EXPECT_EQ(other.downloads(), 0u);
  EXPECT_EQ(server.blobs(), 2);

  auto missing = client.Fetch("tsk-4", 1, "nope", 0);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no collection nope"), std::string::npos);
}

TEST(CollectionClient, ABlobThatDoesNotMatchItsDigestIsRefused) {
  testing::TempDir tmp;
  CollectionsEndpoint server(MakeFiles(tmp.path()));
  server.Corrupt();
  CollectionCacheConfig config;
  config.dir = tmp / "cache";
  CollectionClient client(server.Link(), config);
  auto c = client.Fetch("tsk-1", 1, "docs", 0);
  EXPECT_EQ(c.status().code(), StatusCode::kAborted);
  EXPECT_NE(c.status().message().find("refused"), std::string::npos);
  EXPECT_EQ(client.blobs().Bytes(), 0u);  // nothing kept
}

TEST(BlobCache, TrimsTheLeastRecentlyUsedFirst) {
  testing::TempDir tmp;
  BlobCache cache(tmp / "blobs", 25);
  std::string a(10, 'a'), b(10, 'b'), c(10, 'c');
  ASSERT_TRUE(cache.Put(Sha256Hex(a), a).ok());
  ASSERT_TRUE(cache.Put(Sha256Hex(b), b).ok());
  ASSERT_TRUE(cache.Put(Sha256Hex(c), c).ok());
  // Ages by modification time: a oldest, then c, then b (just used).
  auto past = fs::file_time_type::clock::now() - std::chrono::hours(1);
  fs::last_write_time(tmp / ("blobs/" + Sha256Hex(a)), past - std::chrono::minutes(2));
  fs::last_write_time(tmp / ("blobs/" + Sha256Hex(b)), past - std::chrono::minutes(1));
  fs::last_write_time(tmp / ("blobs/" + Sha256Hex(c)), past);
  ASSERT_TRUE(cache.Find(Sha256Hex(b)).has_value());  // b becomes the most recent
  EXPECT_EQ(cache.Trim({}), 1u);
  EXPECT_FALSE(cache.Find(Sha256Hex(a)).has_value());
  EXPECT_TRUE(cache.Find(Sha256Hex(b)).has_value());
  EXPECT_EQ(cache.Bytes(), 20u);
  // Blobs in use are kept even over the budget.
  BlobCache small(tmp / "blobs", 5);
  EXPECT_EQ(small.Trim({Sha256Hex(b), Sha256Hex(c)}), 0u);
  EXPECT_FALSE(cache.Find(Sha256Hex(b), 11).has_value());  // a size that does not match
  EXPECT_EQ(cache.Put(Sha256Hex(a), "tampered").status().code(), StatusCode::kAborted);
}

}  // namespace
}  // namespace flowmesh::worker
