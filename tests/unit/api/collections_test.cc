#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/collections.h"
#include "spec/workflow.h"

namespace flowmesh::api {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

const std::string kDigestA(64, 'a');
const std::string kDigestB(64, 'b');

json Rows() { return json::array({{{"text", "alpha"}, {"lang", "en"}}, "beta"}); }
json Model() { return {{"source", {{"type", "local"}, {"identifier", "/m/embed.gguf"}}}}; }

TEST(CollectionNameTest, AcceptsPlainNamesAndRefusesOthers) {
  EXPECT_TRUE(CheckCollectionName("docs-2024_v1.0").ok());
  for (const std::string& bad :
       std::vector<std::string>{"", ".hidden", "a/b", "sp ace", std::string(65, 'x'), "ünï"}) {
    EXPECT_FALSE(CheckCollectionName(bad).ok()) << bad;
  }
}

TEST(CollectionBuildDocumentTest, MakesOneCollectionTaskTheValidatorAccepts) {
  json body = {{"name", "docs"}, {"items", Rows()}, {"model", Model()}, {"text_field", "text"},
               {"chunking", {{"max_tokens", 32}, {"overlap", 4}}}, {"metric", "cosine"}};
  auto doc = CollectionBuildDocument("docs", body);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const json& spec = (*doc)["spec"];
  EXPECT_EQ(spec["taskType"], "collection");
  EXPECT_EQ(spec["model"], Model());
  EXPECT_EQ(spec["data"]["items"], Rows());
  EXPECT_EQ(spec["collection"]["name"], "docs");
  EXPECT_EQ(spec["collection"]["chunking"]["max_tokens"], 32);
  EXPECT_FALSE(spec["collection"].contains("items"));
  std::vector<spec::SpecError> errors;
  auto def = spec::ParseWorkflow(doc->dump(), spec::Format::kNative, &errors);
  ASSERT_TRUE(def.ok()) << (errors.empty() ? def.status().ToString() : errors[0].ToString());
  ASSERT_EQ(def->tasks.size(), 1u);
  EXPECT_EQ(def->tasks[0].task_type, "collection");
}

TEST(CollectionBuildDocumentTest, NamesWhatIsMissingOrUnknown) {
  auto no_items = CollectionBuildDocument("docs", {{"model", Model()}});
  EXPECT_THAT(no_items.status().message(), HasSubstr("'items'"));
  auto empty = CollectionBuildDocument("docs", {{"items", json::array()}, {"model", Model()}});
  EXPECT_THAT(empty.status().message(), HasSubstr("non-empty"));
  auto no_model = CollectionBuildDocument("docs", {{"items", Rows()}});
  EXPECT_THAT(no_model.status().message(), HasSubstr("'model'"));
  auto unknown = CollectionBuildDocument("docs", {{"items", Rows()}, {"model", Model()}, {"chunk", 3}});
  EXPECT_THAT(unknown.status().message(), HasSubstr("unknown field 'chunk'"));
  auto bad_name = CollectionBuildDocument("a b", {{"items", Rows()}, {"model", Model()}});
  EXPECT_THAT(bad_name.status().message(), HasSubstr("collection name"));
}

json BuildResult(const std::string& name, bool stored = true) {
  return {{"collection",
           {{"name", name}, {"model", "local:/m/embed.gguf"}, {"dim", 64}, {"count", 12},
            {"documents", 5}, {"metric", "cosine"}}},
          {"files",
           json::array({{{"name", "index.fmvi"}, {"size", 1000}, {"sha256", kDigestA}, {"stored", stored}},
                        {{"name", "entries.jsonl"}, {"size", 200}, {"sha256", kDigestB},
                         {"stored", true}}})}};
}

TEST(ApplyBuildResultTest, ReadyWithSizesAndDigests) {
  state::CollectionRecord c;
  c.name = "docs";
  c.status = "building";
  ASSERT_TRUE(ApplyBuildResult(BuildResult("docs"), c).ok());
  EXPECT_EQ(c.status, "ready");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.count, 12);
  EXPECT_EQ(c.documents, 5);
  EXPECT_EQ(c.model_key, "local:/m/embed.gguf");
  EXPECT_EQ(c.index_digest, kDigestA);
  EXPECT_EQ(c.entries_digest, kDigestB);
  EXPECT_EQ(c.bytes(), 1200);
  json j = CollectionJson(c);
  EXPECT_EQ(j["files"]["index"]["digest"], kDigestA);
  EXPECT_EQ(j["bytes"], 1200);
}

TEST(ApplyBuildResultTest, FailsWithTheReasonWhenTheResultIsNotACollection) {
  state::CollectionRecord c;
  c.name = "docs";
  EXPECT_FALSE(ApplyBuildResult(json::object(), c).ok());
  EXPECT_EQ(c.status, "failed");
  EXPECT_THAT(c.error, HasSubstr("no 'collection'"));
  EXPECT_FALSE(ApplyBuildResult(BuildResult("other"), c).ok());
  EXPECT_THAT(c.error, HasSubstr("'other'"));
  json unstored = BuildResult("docs", false);
  unstored["files"][0]["why_not"] = "over the upload limit";
  EXPECT_FALSE(ApplyBuildResult(unstored, c).ok());
  EXPECT_THAT(c.error, HasSubstr("over the upload limit"));
  json missing = BuildResult("docs");
  missing["files"].erase(1);
  EXPECT_FALSE(ApplyBuildResult(missing, c).ok());
  EXPECT_THAT(c.error, HasSubstr("entries.jsonl"));
  EXPECT_EQ(CollectionJson(c)["error"], c.error);
}

TEST(CollectionQueryDocumentTest, PinsTheVersionAndUsesTheBuildModel) {
  state::CollectionRecord c;
  c.name = "docs";
  c.version = 3;
  c.build_json = json{{"model", Model()}}.dump();
  json doc = CollectionQueryDocument(c, {"what is alpha?"}, {{"top_k", 2}});
  EXPECT_EQ(doc["spec"]["taskType"], "rag");
  EXPECT_EQ(doc["spec"]["model"], Model());
  EXPECT_EQ(doc["spec"]["rag"]["collection"], "docs");
  EXPECT_EQ(doc["spec"]["rag"]["version"], 3);
  EXPECT_EQ(doc["spec"]["rag"]["search"]["top_k"], 2);
  EXPECT_EQ(doc["spec"]["data"]["items"], json::array({"what is alpha?"}));
}

TEST(SpecNamesCollectionTest, FindsTheNameAnywhereAndNothingElse) {
  EXPECT_TRUE(SpecNamesCollection({{"rag", {{"collection", "docs"}}}}, "docs"));
  EXPECT_TRUE(SpecNamesCollection({{"qdrant", {{"collection", "docs"}}}}, "docs"));
  EXPECT_TRUE(SpecNamesCollection({{"agent", {{"tools", json::array({{{"collection", {{"name", "docs"}}}}})}}}}, "docs"));
  EXPECT_FALSE(SpecNamesCollection({{"rag", {{"collection", "docs2"}}}}, "docs"));
  EXPECT_FALSE(SpecNamesCollection({{"prompt", "collection docs"}}, "docs"));
}

}  // namespace
}  // namespace flowmesh::api
