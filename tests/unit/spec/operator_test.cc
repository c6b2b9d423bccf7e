#include "spec/operator.h"

#include <gtest/gtest.h>

namespace flowmesh::spec {
namespace {

using json = nlohmann::json;

TEST(CanonicalJsonTest, KeyOrderWhitespaceAndNumberFormsDoNotMatter) {
  json a = json::parse(R"({"b": 1.0, "a": {"y": [1, 2.50], "x": -0.0}})");
  json b = json::parse("{\"a\":{\"x\":0,\"y\":[1,2.5]},\n \"b\":1}");
  EXPECT_EQ(CanonicalJson(a), CanonicalJson(b));
  EXPECT_EQ(CanonicalJson(a), R"({"a":{"x":0,"y":[1,2.5]},"b":1})");
}

TEST(CanonicalJsonTest, DifferentValuesDiffer) {
  EXPECT_NE(CanonicalJson(json::parse(R"({"t":0.7})")), CanonicalJson(json::parse(R"({"t":0.8})")));
  EXPECT_NE(CanonicalJson(json::parse(R"({"t":"1"})")), CanonicalJson(json::parse(R"({"t":1})")));
}

TEST(ModelKeyTest, NamesSourceIdentifierRevisionAndFile) {
  json spec = json::parse(R"({"model": {"source": {"type": "huggingface",
      "identifier": "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "revision": "abc", "file": "q4_k_m.gguf"},
      "llamacpp": {"n_ctx": 2048}}})");
  EXPECT_EQ(ModelKey(spec), "huggingface:Qwen/Qwen2.5-0.5B-Instruct-GGUF@abc#q4_k_m.gguf");
  EXPECT_EQ(ModelIdentity(spec)["revision"], "abc");
  EXPECT_EQ(ModelKey(json::object()), "");
  EXPECT_EQ(ModelKey(json::parse(R"({"model": {"source": {"type": "local", "identifier": "/m/x.gguf"}}})")),
            "local:/m/x.gguf");
}

TEST(BatchKeyTest, IgnoresDataAndSamplingButNotEngineOptions) {
  json a = json::parse(R"({"model": {"source": {"type": "local", "identifier": "/m.gguf"}},
      "data": {"type": "list", "items": ["a"]}, "inference": {"temperature": 0}})");
  json b = json::parse(R"({"model": {"source": {"type": "local", "identifier": "/m.gguf"}},
      "data": {"type": "list", "items": ["b", "c"]}, "inference": {"temperature": 0.9}})");
  EXPECT_EQ(BatchKey("inference", a), BatchKey("inference", b));
  EXPECT_NE(BatchKey("inference", a), BatchKey("embedding", a));
  json c = a;
  c["model"]["llamacpp"] = {{"n_ctx", 4096}};
  EXPECT_NE(BatchKey("inference", a), BatchKey("inference", c));
  json d = a;
  d["model"]["source"]["revision"] = "v2";
  EXPECT_NE(BatchKey("inference", a), BatchKey("inference", d));
}

TEST(DeterministicTest, SeededGenerationAndImageTrainingRepeat) {
  auto spec = [](const char* text) { return nlohmann::json::parse(text); };
  EXPECT_TRUE(Deterministic("diffusion", spec(R"({"inference": {"seed": 7}})")));
  EXPECT_FALSE(Deterministic("diffusion", spec(R"({"inference": {"height": 64}})")));
  EXPECT_TRUE(Deterministic("omni_text2image", spec(R"({"omni": {"seed": 1}})")));
  EXPECT_FALSE(Deterministic("omni_text2speech", spec(R"({"omni": {"seed": 1}})")));
  EXPECT_TRUE(Deterministic("image_classification", spec(R"({"training": {"seed": 3}})")));
  EXPECT_FALSE(Deterministic("image_classification_training", spec(R"({"training": {}})")));
  EXPECT_FALSE(Deterministic("diffusion", spec(R"({"inference": {"seed": 7}, "cache": "never"})")));
}

}  // namespace
}  // namespace flowmesh::spec
