#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/process.h"
#include "http/http.h"
#include "inference/engine.h"
#include "integration/inference/test_model.h"
#include "rag/collection.h"
#include "rag/collection_executor.h"
#include "rag/rag_executor.h"
#include "support/build_paths.h"
#include "support/temp_dir.h"
#include "vector/chunker.h"

namespace flowmesh::rag {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using inference::testing::TinyModel;

const std::vector<std::pair<std::string, std::string>> kRows = {
    {"the cat sat on the warm mat", "en"},
    {"le chat dort sur le tapis", "fr"},
    {"rivers carry water to the sea", "en"},
    {"la mer est calme ce matin", "fr"},
    {"compilers turn source into machine code", "en"}};

json Rows() {
  json items = json::array();
  for (size_t i = 0; i < kRows.size(); ++i) {
    items.push_back(
        {{"id", "doc-" + std::to_string(i)}, {"text", kRows[i].first}, {"lang", kRows[i].second}});
  }
  // A long row, cut into several chunks.
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "word" + std::to_string(i) + " ";
  items.push_back({{"id", "long"}, {"text", long_text}, {"lang", "en"}});
  return items;
}

std::shared_ptr<inference::ModelCache> Models() {
  static auto models = std::make_shared<inference::ModelCache>(inference::ModelCacheConfig{});
  return models;
}

json Model() { return {{"source", {{"type", "local"}, {"identifier", TinyModel()}}}}; }

struct Attempt {
  std::atomic<bool> cancelled{false};
  std::vector<std::string> logs;
  executors::TaskContext ctx;
  explicit Attempt(json spec, std::string type)
      : ctx{"tsk-test",
            "wfl-test",
            1,
            std::move(type),
            std::move(spec),
            [this](std::string line) { logs.push_back(std::move(line)); },
            [](json) {},
            cancelled} {}
};

class RagEngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    CollectionExecutor build(Models(), {dir_->path(), /*keep_files=*/true});
    Attempt run({{"taskType", "collection"},
                 {"model", Model()},
                 {"collection",
                  {{"name", "docs"},
                   {"id_field", "id"},
                   {"chunking", {{"max_tokens", 16}, {"overlap", 4}}},
                   {"batch_size", 4}}},
                 {"data", {{"type", "list"}, {"items", Rows()}}}},
                "collection");
    auto result = build.Run(run.ctx);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    result_ = new json(*result);
  }
  static void TearDownTestSuite() {
    delete result_;
    delete dir_;
  }

  static std::shared_ptr<const Collection> Load() {
    std::string local = (*result_)["local_dir"];
    CollectionInfo info;
    info.name = "docs";
    info.version = 1;
    info.model = (*result_)["collection"]["model"];
    info.index_digest = (*result_)["files"][0]["sha256"];
    auto c = Collection::Load(info, local + "/index.fmvi", local + "/entries.jsonl");
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }

  static json Rag(json rag, json extra = json::object()) {
    RagExecutor executor(Models());
    json spec = {{"taskType", "rag"}, {"model", Model()}, {"rag", std::move(rag)}};
    spec.update(extra);
    Attempt run(spec, "rag");
    auto collection = Load();
    run.ctx.fetch_collection = [collection](const std::string& name,
                                            int64_t) -> Result<std::shared_ptr<const Collection>> {
      if (name != "docs") return NotFound("no collection " + name);
      return collection;
    };
    auto result = executor.Run(run.ctx);
    EXPECT_TRUE(result.ok()) << result.status().ToString();
    return result.ok() ? *result : json();
  }

  static testing::TempDir* dir_;
  static json* result_;
};
testing::TempDir* RagEngineTest::dir_ = nullptr;
json* RagEngineTest::result_ = nullptr;

TEST_F(RagEngineTest, TheBuildWritesBothFilesAndTheContractsResult) {
  const json& c = (*result_)["collection"];
  EXPECT_EQ(c["name"], "docs");
  EXPECT_EQ(c["model"], "local:" + TinyModel());
  EXPECT_EQ(c["dim"], 64);
  EXPECT_EQ(c["documents"], kRows.size() + 1);
  EXPECT_GT(c["count"].get<size_t>(), kRows.size() + 1);  // the long row has several chunks
  EXPECT_EQ(c["metric"], "cosine");
  EXPECT_EQ(c["chunking"], (json{{"max_tokens", 16}, {"overlap", 4}}));
  ASSERT_EQ((*result_)["files"].size(), 2u);
  EXPECT_EQ((*result_)["files"][0]["name"], "index.fmvi");
  EXPECT_EQ((*result_)["files"][1]["name"], "entries.jsonl");
  EXPECT_EQ((*result_)["files"][0]["stored"], false);  // no server here
  EXPECT_EQ((*result_)["files"][0]["sha256"].get<std::string>().size(), 64u);

  // Every chunk is at most max_tokens tokens of the model and starts at a token boundary.
  auto engine = Models()->Acquire({{"model", Model()}});
  ASSERT_TRUE(engine.ok());
  auto collection = Load();
  std::string long_text = Rows().back()["text"];
  auto pieces = (*engine)->TokenPieces(long_text);
  ASSERT_TRUE(pieces.ok());
  std::vector<size_t> starts = vector::TokenStarts(long_text, *pieces);
  size_t chunks = 0;
  for (const auto& e : collection->entries()) {
    if (e.doc != "long") continue;
    ++chunks;
    size_t at = long_text.find(e.text);
    ASSERT_NE(at, std::string::npos);
    EXPECT_TRUE(at == 0 || std::find(starts.begin(), starts.end(), at) != starts.end()) << e.text;
    EXPECT_LE((*engine)->TokenPieces(e.text)->size(), 16u + 1) << e.text;
    EXPECT_EQ(e.id, "long#" + std::to_string(e.chunk));
  }
  EXPECT_GE(chunks, 2u);

  // The same input builds the same bytes (the operator de-duplication relies on it).
  CollectionExecutor again(Models(), {dir_->path(), true});
  Attempt run({{"taskType", "collection"},
               {"model", Model()},
               {"collection",
                {{"name", "docs"},
                 {"id_field", "id"},
                 {"chunking", {{"max_tokens", 16}, {"overlap", 4}}},
                 {"batch_size", 3}}},
               {"data", {{"type", "list"}, {"items", Rows()}}}},
              "collection");
  auto second = again.Run(run.ctx);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)["files"], (*result_)["files"]);
}

TEST_F(RagEngineTest, ARowFindsItselfFirstAndFiltersHold) {
  json r = Rag({{"collection", "docs"}, {"search", {{"top_k", 3}}}},
               {{"data", {{"items", {kRows[2].first}}}}});
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["collection"]["name"], "docs");
  EXPECT_EQ(r["qdrant"]["collection"], "docs");
  EXPECT_TRUE(r["qdrant"]["url"].is_null());
  EXPECT_EQ(r["search"]["top_k"], 3);
  EXPECT_EQ(r["usage"]["num_queries"], 1);
  EXPECT_EQ(r["usage"]["total_results"], 3);
  const json& hits = r["queries"][0]["items"];
  ASSERT_EQ(hits.size(), 3u);
  EXPECT_EQ(hits[0]["id"], "doc-2#0");
  EXPECT_EQ(hits[0]["payload"]["text"], kRows[2].first);
  EXPECT_EQ(hits[0]["payload"]["doc"], "doc-2");
  EXPECT_NEAR(hits[0]["score"].get<double>(), 1.0, 1e-3);

  for (json filter :
       {json{{"lang", "fr"}}, json{{"must", {{{"key", "lang"}, {"match", {{"value", "fr"}}}}}}}}) {
    json fr = Rag({{"collection", "docs"}, {"search", {{"top_k", 5}, {"filter", filter}}}},
                  {{"data", {{"items", {kRows[2].first}}}}});
    const json& items = fr["queries"][0]["items"];
    ASSERT_EQ(items.size(), 2u) << fr.dump();
    for (const auto& h : items) EXPECT_EQ(h["payload"]["metadata"]["lang"], "fr");
  }
}

TEST_F(RagEngineTest, GenerateAnswersFromThePassages) {
  json r = Rag({{"collection", "docs"},
                {"query", kRows[0].first},
                {"search", {{"top_k", 2}}},
                {"generate",
                 {{"prompt_template", "Context:\n{context}\nQuestion: {query}\nAnswer:"},
                  {"max_tokens", 6},
                  {"temperature", 0}}}});
  const json& q = r["queries"][0];
  EXPECT_TRUE(q["answer"].is_string());
  EXPECT_GT(r["usage"]["completion_tokens"].get<int>(), 0);
  EXPECT_GT(r["usage"]["prompt_tokens"].get<int>(), 0);
}

TEST_F(RagEngineTest, AMissingCollectionFailsForGood) {
  RagExecutor executor(Models());
  Attempt run(
      {{"taskType", "rag"}, {"model", Model()}, {"rag", {{"collection", "nope"}, {"query", "x"}}}},
      "rag");
  run.ctx.fetch_collection = [](const std::string& name,
                                int64_t) -> Result<std::shared_ptr<const Collection>> {
    return NotFound("no collection " + name);
  };
  auto r = executor.Run(run.ctx);
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("not found"), std::string::npos);
}

// A Qdrant REST stub on port 0 (tests/support/qdrant_stub.py).
class QdrantStub {
 public:
  explicit QdrantStub(const testing::TempDir& dir, bool legacy) {
    std::string port_file = dir / (legacy ? "legacy.port" : "qdrant.port");
    SpawnOptions options;
    options.argv = {"/usr/bin/env",
                    "python3",
                    std::string(FLOWMESH_SOURCE_DIR) + "/tests/support/qdrant_stub.py",
                    "--port-file",
                    port_file,
                    "--api-key",
                    "k3y"};
    if (legacy) options.argv.push_back("--legacy");
    options.log_file = dir / "qdrant.log";
    auto pid = Spawn(options);
    EXPECT_TRUE(pid.ok());
    pid_ = pid.ok() ? *pid : 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::exists(port_file) && std::chrono::steady_clock::now() < deadline &&
           ProcessAlive(pid_)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling the condition
    }
    std::ifstream(port_file) >> port_;
    EXPECT_GT(port_, 0);
  }
  ~QdrantStub() {
    if (pid_ > 0) TerminateProcess(pid_, std::chrono::milliseconds(2000));
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = 0;
  int port_ = 0;
};

TEST_F(RagEngineTest, QdrantOverRestWithBothRoutes) {
  auto engine = Models()->Acquire({{"model", Model()}});
  ASSERT_TRUE(engine.ok());
  for (bool legacy : {false, true}) {
    QdrantStub stub(*dir_, legacy);
    http::Client client(stub.url());
    http::Headers key = {{"api-key", "k3y"}};
    auto made =
        client.Request("PUT", "/collections/kb",
                       json{{"vectors", {{"size", 64}, {"distance", "Cosine"}}}}.dump(), key);
    ASSERT_TRUE(made.ok() && made->status == 200);
    json points = json::array();
    for (size_t i = 0; i < kRows.size(); ++i) {
      auto v = (*engine)->Embed({kRows[i].first});
      ASSERT_TRUE(v.ok());
      points.push_back({{"id", i + 1},
                        {"vector", (*v)[0]},
                        {"payload", {{"text", kRows[i].first}, {"lang", kRows[i].second}}}});
    }
    auto put =
        client.Request("PUT", "/collections/kb/points", json{{"points", points}}.dump(), key);
    ASSERT_TRUE(put.ok() && put->status == 200) << (put.ok() ? put->body : put.status().ToString());

    RagExecutor executor(Models());
    Attempt run({{"taskType", "rag"},
                 {"model", Model()},
                 {"rag",
                  {{"qdrant", {{"url", stub.url()}, {"collection", "kb"}, {"api_key", "k3y"}}},
                   {"search", {{"top_k", 2}, {"filter", {{"lang", {{"$in", {"fr", "xx"}}}}}}}}}},
                 {"data", {{"items", {kRows[3].first}}}}},
                "rag");
    auto r = executor.Run(run.ctx);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ((*r)["qdrant"]["url"], stub.url());
    EXPECT_FALSE(r->contains("collection"));
    const json& items = (*r)["queries"][0]["items"];
    ASSERT_EQ(items.size(), 2u) << r->dump();
    EXPECT_EQ(items[0]["id"], 4);
    EXPECT_EQ(items[0]["payload"]["text"], kRows[3].first);
    EXPECT_NEAR(items[0]["score"].get<double>(), 1.0, 1e-3);
    EXPECT_EQ(items[1]["payload"]["lang"], "fr");

    // A collection Qdrant does not have is a permanent failure naming it.
    Attempt missing(
        {{"taskType", "rag"},
         {"model", Model()},
         {"rag",
          {{"qdrant", {{"url", stub.url()}, {"collection", "nope"}, {"api_key", "k3y"}}},
           {"query", "x"}}}},
        "rag");
    auto m = executor.Run(missing.ctx);
    EXPECT_EQ(m.status().code(), StatusCode::kFailedPrecondition) << m.status().ToString();
    EXPECT_NE(m.status().message().find("nope"), std::string::npos);
  }
}

}  // namespace
}  // namespace flowmesh::rag
