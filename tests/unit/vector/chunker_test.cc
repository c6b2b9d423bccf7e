#include "vector/chunker.h"

#include <gtest/gtest.h>

#include "vector/metadata_filter.h"

namespace flowmesh::vector {
namespace {

using json = nlohmann::json;

TEST(ChunkerTest, ChunksOverlapByTokensAndCoverTheText) {
  std::string text = "one two three four five six seven";
  auto starts = WordStarts(text);
  ASSERT_EQ(starts.size(), 7u);
  auto chunks = ChunkByTokens(text, starts, 3, 1);
  ASSERT_TRUE(chunks.ok());
  std::vector<std::string> texts;
  for (const auto& c : *chunks) texts.push_back(c.text);
  EXPECT_EQ(texts, (std::vector<std::string>{"one two three ", "three four five ", "five six seven"}));
  EXPECT_EQ((*chunks)[1].tokens, 3u);
  EXPECT_EQ((*chunks)[1].begin, starts[2]);
  // No overlap, and a text shorter than one chunk.
  auto plain = ChunkByTokens(text, starts, 4, 0);
  ASSERT_EQ(plain->size(), 2u);
  EXPECT_EQ((*plain)[1].text, "five six seven");
  EXPECT_EQ(ChunkByTokens("short", WordStarts("short"), 100, 10)->size(), 1u);
  EXPECT_TRUE(ChunkByTokens("", {}, 4, 1)->empty());
}

TEST(ChunkerTest, BadSizesAndOffsetsAreRefused) {
  EXPECT_FALSE(ChunkByTokens("a b", {0, 2}, 0, 0).ok());
  auto overlap = ChunkByTokens("a b", {0, 2}, 2, 2);
  ASSERT_FALSE(overlap.ok());
  EXPECT_NE(overlap.status().message().find("overlap"), std::string::npos);
  EXPECT_FALSE(ChunkByTokens("a b", {2, 0}, 2, 0).ok());
  EXPECT_FALSE(ChunkByTokens("a b", {0, 9}, 2, 0).ok());
}

TEST(MetadataFilterTest, OurFormAndQdrantsMeanTheSame) {
  json doc = {{"lang", "en"}, {"year", 2022}, {"tag", "b"}, {"ok", true}};
  auto ours = MetadataFilter::Parse(json::parse(
      R"({"lang": "en", "year": {"$gte": 2020, "$lt": 2024}, "tag": {"$in": ["a", "b"]}})"));
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  EXPECT_TRUE(ours->Matches(doc));
  auto qdrant = MetadataFilter::Parse(json::parse(
      R"({"must": [{"key": "lang", "match": {"value": "en"}},
                   {"key": "year", "range": {"gte": 2020, "lt": 2024}},
                   {"key": "tag", "match": {"any": ["a", "b"]}}]})"));
  ASSERT_TRUE(qdrant.ok()) << qdrant.status().ToString();
  EXPECT_TRUE(qdrant->Matches(doc));
  doc["year"] = 2024;
  EXPECT_FALSE(ours->Matches(doc));
  EXPECT_FALSE(qdrant->Matches(doc));
  EXPECT_FALSE(ours->Matches(json{{"lang", "en"}}));  // absent fields fail
  EXPECT_TRUE(MetadataFilter::Parse(json::parse(R"({"ok": true, "tag": {"$ne": "c"}})"))
                  ->Matches(json{{"ok", true}, {"tag", "b"}}));
  EXPECT_TRUE(MetadataFilter::Parse(json())->empty());
}

TEST(MetadataFilterTest, MalformedFiltersNameTheField) {
  auto op = MetadataFilter::Parse(json::parse(R"({"year": {"$between": [1, 2]}})"));
  ASSERT_FALSE(op.ok());
  EXPECT_NE(op.status().message().find("filter.year.$between"), std::string::npos);
  auto range = MetadataFilter::Parse(json::parse(R"({"year": {"$gt": "x"}})"));
  ASSERT_FALSE(range.ok());
  EXPECT_NE(range.status().message().find("a number"), std::string::npos);
  EXPECT_FALSE(MetadataFilter::Parse(json::parse(R"({"must": [{"match": {"value": 1}}]})")).ok());
  EXPECT_FALSE(MetadataFilter::Parse(json::parse(R"([1])")).ok());
}

}  // namespace
}  // namespace flowmesh::vector
