#include <gtest/gtest.h>

#include <cmath>

#include "rag/collection.h"
#include "rag/collection_executor.h"
#include "rag/qdrant.h"
#include "rag/rag_executor.h"
#include "vector/chunker.h"

namespace flowmesh::rag {
namespace {

using json = nlohmann::json;

TEST(TokenStarts, PiecesThatSpellTheTextStartWhereTheyAre) {
  EXPECT_EQ(vector::TokenStarts("the cat", {"the", " c", "at"}), (std::vector<size_t>{0, 3, 5}));
}

TEST(TokenStarts, SentencePieceLeadingSpacesAreNotInTheText) {
  // "▁the▁cat" pieces come back as " the", " cat": the first space is the tokenizer's.
  EXPECT_EQ(vector::TokenStarts("the cat", {" the", " cat"}), (std::vector<size_t>{0, 3}));
  EXPECT_EQ(vector::TokenStarts("a\nb", {" a", "\n", "b"}), (std::vector<size_t>{0, 1, 2}));
}

TEST(TokenStarts, NoCutInsideAUtf8Character) {
  // "é" is two bytes; byte-fallback tokens split it: the second byte's token joins the first.
  std::string text = "caf\xC3\xA9 ok";
  auto starts = vector::TokenStarts(text, {"caf", "\xC3", "\xA9", " ok"});
  EXPECT_EQ(starts, (std::vector<size_t>{0, 3, 5}));
  auto chunks = vector::ChunkByTokens(text, starts, 1, 0);
  ASSERT_TRUE(chunks.ok());
  ASSERT_EQ(chunks->size(), 3u);
  EXPECT_EQ((*chunks)[1].text, "\xC3\xA9");
}

TEST(TokenStarts, PiecesTheTokenizerNormalisedAreFoundFurtherOn) {
  // A piece the text does not hold at the cursor is looked for a little further.
  auto starts = vector::TokenStarts("x  yy zz", {"x", "yy", " zz"});
  EXPECT_EQ(starts, (std::vector<size_t>{0, 3, 5}));
}

CollectionOptions Options(size_t max_tokens = 4, size_t overlap = 1) {
  CollectionOptions o;
  o.name = "docs";
  o.max_tokens = max_tokens;
  o.overlap = overlap;
  return o;
}

Tokenizer Words() {
  return [](const std::string& text) -> Result<std::vector<size_t>> {
    return vector::WordStarts(text);
  };
}

TEST(Rows, ObjectsAndStringsBecomeDocuments) {
  CollectionOptions o = Options();
  o.id_field = "id";
  json items = json::array({{{"id", "a"}, {"text", "one two"}, {"lang", "en"}, {"n", 3}},
                            {{"id", 7}, {"text", "three"}}});
  auto docs = DocumentsFromItems(items, o);
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[0].id, "a");
  EXPECT_EQ((*docs)[0].metadata, (json{{"lang", "en"}, {"n", 3}}));
  EXPECT_EQ((*docs)[1].id, "7");

  o.id_field.clear();
  o.metadata_fields = std::vector<std::string>{"lang"};
  docs = DocumentsFromItems(
      json::array(
          {"plain", {{"text", "x"}, {"lang", "fr"}, {"n", 1}}, {{"text", "y"}, {"id", "named"}}}),
      o);
  ASSERT_TRUE(docs.ok());
  EXPECT_EQ((*docs)[0].id, "0");
  EXPECT_EQ((*docs)[0].text, "plain");
  EXPECT_EQ((*docs)[1].id, "1");
  EXPECT_EQ((*docs)[1].metadata, (json{{"lang", "fr"}}));
  EXPECT_EQ((*docs)[2].id, "named");  // a row's own "id" without id_field
  EXPECT_TRUE((*docs)[2].metadata.empty());
}

TEST(Rows, ARowWithoutTextOrARepeatedIdIsRefused) {
  CollectionOptions o = Options();
  auto missing = DocumentsFromItems(json::array({{{"body", "x"}}}), o);
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("data.items[0] has no string field 'text'"),
            std::string::npos);
  o.id_field = "id";
  auto twice = DocumentsFromItems(
      json::array({{{"id", 1}, {"text", "a"}}, {{"id", "1"}, {"text", "b"}}}), o);
  EXPECT_NE(twice.status().message().find("data.items[1]: document id '1'"), std::string::npos);
  EXPECT_FALSE(DocumentsFromItems(json::array(), o).ok());
  EXPECT_FALSE(DocumentsFromItems(json::array({3}), o).ok());
}

TEST(Chunking, ChunksOverlapAndCutAtTokens) {
  std::vector<Document> docs = {{"d", "a b c d e f g", {{"lang", "en"}}}, {"empty", "", {}}};
  auto entries = ChunkDocuments(docs, Options(4, 1), Words());
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);  // tokens 0-3, 3-6 (one shared): the empty document has none
  EXPECT_EQ((*entries)[0].text, "a b c d ");
  EXPECT_EQ((*entries)[1].text, "d e f g");
  EXPECT_EQ((*entries)[1].id, "d#1");
  EXPECT_EQ((*entries)[1].chunk, 1);
  EXPECT_EQ((*entries)[1].metadata["lang"], "en");
}

TEST(Options, DefaultsAndErrorsNameTheKey) {
  auto o = CollectionOptionsFromSpec({{"collection", {{"name", "docs"}}}});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->text_field, "text");
  EXPECT_EQ(o->max_tokens, 256u);
  EXPECT_EQ(o->overlap, 32u);
  EXPECT_EQ(o->batch_size, 32u);
  EXPECT_EQ(o->metric, vector::Metric::kCosine);
  auto bad = CollectionOptionsFromSpec(
      {{"collection", {{"name", "d"}, {"chunking", {{"max_tokens", 4}, {"overlap", 4}}}}}});
  EXPECT_NE(bad.status().message().find("spec.collection.chunking.overlap"), std::string::npos);
  EXPECT_FALSE(CollectionOptionsFromSpec({{"collection", {{"name", "d"}, {"metric", "x"}}}}).ok());
  EXPECT_FALSE(CollectionOptionsFromSpec(json::object()).ok());
}

TEST(Entries, LinesRoundTripWithStableBytes) {
  CollectionEntry e{"d#0", "d", 0, "caf\xC3\xA9", {{"lang", "fr"}, {"a", 1}}};
  std::string line = EntryLine(e);
  EXPECT_EQ(line,
            R"({"chunk":0,"doc":"d","id":"d#0","metadata":{"a":1,"lang":"fr"},"text":"café"})");
  auto back = ParseEntryLine(line, 1);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->id, "d#0");
  EXPECT_EQ(back->metadata["lang"], "fr");
  EXPECT_EQ(
      EntryPayload(*back),
      (json{
          {"text", "café"}, {"doc", "d"}, {"chunk", 0}, {"metadata", {{"a", 1}, {"lang", "fr"}}}}));
  EXPECT_FALSE(ParseEntryLine("{\"id\": 1}", 2).ok());
}

// Four entries on the unit circle; the query is closest to entry 0, then 1, 3, 2.
std::unique_ptr<Collection> Circle() {
  std::vector<float> v;
  std::vector<CollectionEntry> entries;
  const char* langs[] = {"en", "fr", "en", "fr"};
  for (int i = 0; i < 4; ++i) {
    double a = i * 0.5;
    v.push_back(static_cast<float>(std::cos(a)));
    v.push_back(static_cast<float>(std::sin(a)));
    entries.push_back({"d" + std::to_string(i) + "#0",
                       "d" + std::to_string(i),
                       0,
                       "text " + std::to_string(i),
                       {{"lang", langs[i]}, {"year", 2020 + i}}});
  }
  auto index = vector::VectorIndex::Build(2, v);
  EXPECT_TRUE(index.ok());
  CollectionInfo info;
  info.name = "circle";
  info.dim = 2;
  auto c = Collection::FromParts(info, std::move(index).value(), std::move(entries));
  EXPECT_TRUE(c.ok());
  return std::move(c).value();
}

std::vector<std::string> Docs(const std::vector<CollectionHit>& hits) {
  std::vector<std::string> out;
  for (const auto& h : hits) out.push_back(h.entry->doc);
  return out;
}

TEST(Search, FiltersInOurFormAndQdrantsAgree) {
  auto c = Circle();
  std::vector<float> q = {1, 0};
  auto all = c->Search(q, 3, {}, std::nullopt);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Docs(*all), (std::vector<std::string>{"d0", "d1", "d2"}));
  EXPECT_NEAR((*all)[0].score, 1.0, 1e-5);

  auto ours = vector::MetadataFilter::Parse({{"lang", "fr"}});
  auto qdrant =
      vector::MetadataFilter::Parse({{"must", {{{"key", "lang"}, {"match", {{"value", "fr"}}}}}}});
  ASSERT_TRUE(ours.ok() && qdrant.ok());
  for (const auto* f : {&*ours, &*qdrant}) {
    auto fr = c->Search(q, 5, *f, std::nullopt);
    ASSERT_TRUE(fr.ok());
    EXPECT_EQ(Docs(*fr), (std::vector<std::string>{"d1", "d3"}));
  }
  auto range = vector::MetadataFilter::Parse({{"year", {{"$gte", 2022}}}});
  EXPECT_EQ(Docs(*c->Search(q, 5, *range, std::nullopt)), (std::vector<std::string>{"d2", "d3"}));
  // A threshold drops the far ones.
  auto near = c->Search(q, 5, {}, 0.8f);
  EXPECT_EQ(Docs(*near), (std::vector<std::string>{"d0", "d1"}));
}

TEST(Search, EntriesMustMatchTheIndex) {
  auto index = vector::VectorIndex::Build(2, {1, 0, 0, 1});
  ASSERT_TRUE(index.ok());
  CollectionInfo info;
  info.name = "x";
  auto c = Collection::FromParts(info, std::move(index).value(), {{"a#0", "a", 0, "a", {}}});
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
}

TEST(QdrantFilter, OursIsTranslatedAndQdrantsKept) {
  auto f = QdrantFilter({{"lang", "en"},
                         {"year", {{"$gte", 2020}, {"$lt", 2024}}},
                         {"tag", {{"$in", {"a", "b"}}}},
                         {"kind", {{"$ne", "draft"}}}});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  json must = json::array({{{"key", "kind"}, {"match", {{"value", "draft"}}}}});
  EXPECT_EQ((*f)["must_not"], must);
  EXPECT_EQ((*f)["must"].size(), 3u);
  EXPECT_EQ((*f)["must"][0], (json{{"key", "lang"}, {"match", {{"value", "en"}}}}));
  EXPECT_EQ((*f)["must"][1], (json{{"key", "tag"}, {"match", {{"any", {"a", "b"}}}}}));
  EXPECT_EQ((*f)["must"][2], (json{{"key", "year"}, {"range", {{"gte", 2020}, {"lt", 2024}}}}));
  json native = {{"should", {{{"key", "a"}, {"match", {{"value", 1}}}}}}};
  EXPECT_EQ(*QdrantFilter(native), native);
  EXPECT_TRUE(QdrantFilter(json()).value().is_null());
  EXPECT_FALSE(QdrantFilter({{"x", {{"$regex", "a"}}}}).ok());
}

TEST(RagOptions, EmbeddedQdrantAndGenerate) {
  auto o = RagOptionsFromSpec({{"rag",
                                {{"collection", "docs"},
                                 {"version", 2},
                                 {"search", {{"top_k", 3}, {"filter", {{"lang", "en"}}}}},
                                 {"generate", {{"max_tokens", 8}}}}}});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->collection, "docs");
  EXPECT_EQ(o->version, 2);
  EXPECT_TRUE(o->qdrant_url.empty());
  EXPECT_EQ(o->top_k, 3u);
  EXPECT_TRUE(o->generate);
  EXPECT_EQ(o->max_tokens, 8);
  EXPECT_EQ(o->temperature, 0.0f);
  EXPECT_NE(o->prompt_template.find("{context}"), std::string::npos);

  auto q = RagOptionsFromSpec(
      {{"rag", {{"qdrant", {{"host", "db"}, {"port", 7000}, {"collection", "c"}}}}}});
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->qdrant_url, "http://db:7000");
  EXPECT_EQ(q->collection, "c");
  EXPECT_FALSE(q->generate);
  // qdrant.collection without a url is an embedded collection of that name.
  auto e = RagOptionsFromSpec({{"rag", {{"qdrant", {{"collection", "c"}}}}}});
  EXPECT_TRUE(e.ok() && e->qdrant_url.empty() && e->collection == "c");
  EXPECT_FALSE(RagOptionsFromSpec({{"rag", json::object()}}).ok());
  EXPECT_FALSE(
      RagOptionsFromSpec({{"rag", {{"collection", "d"}, {"search", {{"top_k", 0}}}}}}).ok());
}

TEST(RagOptions, QueriesFromQueryOrItems) {
  EXPECT_EQ(QueriesFromSpec({{"rag", {{"query", "q"}}}}).value(), std::vector<std::string>{"q"});
  json items = {{"data", {{"items", {"a", {{"query", "b"}}, {{"text", "c"}}}}}}};
  EXPECT_EQ(QueriesFromSpec(items).value(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(QueriesFromSpec(json::object()).ok());
  EXPECT_EQ(FillPrompt("C: {context}\nQ: {query} {x}", {"one", "two"}, "why"),
            "C: one\ntwo\nQ: why {x}");
}

}  // namespace
}  // namespace flowmesh::rag
