// The OpenAI wire format of serve endpoints: what request bodies are accepted (and refused
// with a message naming the field), and the shapes of responses and stream chunks the
// official clients parse.
#include "inference/serve_openai.h"
#include "spec/executor_options.h"
#include "spec/options.h"

#include <gtest/gtest.h>

namespace flowmesh::inference::openai {
namespace {

using json = nlohmann::json;

TEST(ServeOpenAiTest, ChatRequestReadsMessagesSamplingAndStreamFlags) {
  auto r = ParseChatRequest(json::parse(R"({
    "model": "m", "messages": [{"role": "developer", "content": "be brief"},
                               {"role": "user", "content": [{"type": "text", "text": "hi "},
                                                            {"type": "text", "text": "there"}]}],
    "temperature": 0, "top_p": 0.5, "max_completion_tokens": 7, "seed": 3, "stop": ["\n", ""],
    "stream": true, "stream_options": {"include_usage": true}, "top_k": -1})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->endpoint, Endpoint::kChat);
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[0].first, "system");
  EXPECT_EQ(r->messages[1].second, "hi there");
  EXPECT_EQ(r->params.temperature, 0.0f);
  EXPECT_EQ(r->params.top_p, 0.5f);
  EXPECT_EQ(r->params.max_tokens, 7);
  EXPECT_EQ(r->params.seed, 3u);
  EXPECT_EQ(r->params.stop, std::vector<std::string>{"\n"});
  EXPECT_EQ(r->params.top_k, 0);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
}

TEST(ServeOpenAiTest, DefaultsApplyWhereTheRequestSaysNothing) {
  auto r = ParseCompletionRequest(json::parse(R"({"prompt": ["once"]})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->prompt, "once");
  EXPECT_EQ(r->params.max_tokens, kDefaultMaxTokens);
  EXPECT_EQ(r->params.temperature, 1.0f);
  EXPECT_FALSE(r->stream);
  EXPECT_FALSE(r->echo);
}

TEST(ServeOpenAiTest, BadBodiesAreRefusedNamingTheField) {
  struct Case {
    const char* body;
    const char* field;
  };
  for (const Case& c : {Case{R"([])", "JSON object"},
                        Case{R"({"messages": []})", "'messages'"},
                        Case{R"({"messages": [{"content": "x"}]})", "'messages[0]'"},
                        Case{R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
                             "'messages[0].content'"},
                        Case{R"({"messages": [{"role": "user", "content": "x"}], "temperature": 3})",
                             "'temperature'"},
                        Case{R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0})",
                             "'max_tokens'"},
                        Case{R"({"messages": [{"role": "user", "content": "x"}], "n": 2})", "'n'"},
                        Case{R"({"messages": [{"role": "user", "content": "x"}], "stop": 5})", "'stop'"},
                        Case{R"({"messages": [{"role": "user", "content": "x"}], "stream": "yes"})",
                             "'stream'"}}) {
    auto r = ParseChatRequest(json::parse(c.body));
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.field), std::string::npos) << r.status().message();
  }
  EXPECT_FALSE(ParseCompletionRequest(json::parse(R"({"prompt": [1, 2]})")).ok());
  EXPECT_FALSE(ParseCompletionRequest(json::parse(R"({})")).ok());
}

// A served request's sampling bounds are the inference section's declaration (one rule
// site): what an inference task may ask, a client of a served model may ask, and no more.
TEST(ServeOpenAiTest, SamplingBoundsAreTheInferenceDeclarations) {
  for (const char* name : {"temperature", "max_tokens", "top_k", "repetition_penalty"}) {
    const spec::Option* declared = spec::FindInferenceOption(name);
    ASSERT_NE(declared, nullptr) << name;
    ASSERT_TRUE(declared->max.has_value()) << name;
    json at_max = {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {name, *declared->max}};
    if (declared->type == spec::OptionType::kInt) at_max[name] = static_cast<int64_t>(*declared->max);
    EXPECT_TRUE(ParseChatRequest(at_max).ok()) << name << ": " << ParseChatRequest(at_max).status().ToString();
    json above = at_max;
    above[name] = *declared->max + 1;
    if (declared->type == spec::OptionType::kInt) above[name] = static_cast<int64_t>(*declared->max) + 1;
    auto refused = ParseChatRequest(above);
    ASSERT_FALSE(refused.ok()) << name;
    EXPECT_NE(refused.status().message().find(std::string("'") + name + "'"), std::string::npos)
        << refused.status().message();
  }
}

TEST(ServeOpenAiTest, EmbeddingInputIsAStringOrAListOfStrings) {
  EXPECT_EQ(*ParseEmbeddingInput(json::parse(R"({"input": "a"})")), std::vector<std::string>{"a"});
  EXPECT_EQ(ParseEmbeddingInput(json::parse(R"({"input": ["a", "b"]})"))->size(), 2u);
  EXPECT_FALSE(ParseEmbeddingInput(json::parse(R"({"input": [[1, 2]]})")).ok());
  EXPECT_FALSE(ParseEmbeddingInput(json::parse(R"({"input": []})")).ok());
  EXPECT_FALSE(ParseEmbeddingInput(json::parse(R"({})")).ok());
}

TEST(ServeOpenAiTest, ResponsesHaveTheShapeClientsParse) {
  Completion c;
  c.text = "hello";
  c.finish_reason = "length";
  c.prompt_tokens = 4;
  c.completion_tokens = 2;
  ResponseMeta meta{"chatcmpl-1", 1700000000, "tiny"};
  json chat = ChatResponse(meta, c);
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(chat["choices"][0]["message"]["content"], "hello");
  EXPECT_EQ(chat["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(chat["usage"]["total_tokens"], 6);
  json text = CompletionResponse({"cmpl-1", 1, "tiny"}, c, "say ");
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], "say hello");

  json first = ChatChunk(meta, "he", true, "");
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "he");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  json last = ChatChunk(meta, "", false, "stop");
  EXPECT_FALSE(last["choices"][0]["delta"].contains("role"));
  EXPECT_FALSE(last["choices"][0]["delta"].contains("content"));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  json usage = UsageChunk(meta, Endpoint::kChat, c);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 2);
  EXPECT_EQ(CompletionChunk(meta, "x", "")["choices"][0]["text"], "x");

  json emb = EmbeddingResponse("tiny", {{1.0f, 0.0f}, {0.0f, 1.0f}}, 3);
  EXPECT_EQ(emb["data"].size(), 2u);
  EXPECT_EQ(emb["data"][1]["index"], 1);
  EXPECT_EQ(ModelsResponse("tiny", 5)["data"][0]["id"], "tiny");
  json err = ErrorBody("nope", "invalid_request_error");
  EXPECT_EQ(err["error"]["message"], "nope");
  EXPECT_TRUE(err["error"]["code"].is_null());
  EXPECT_EQ(FinishReason("cancelled"), "stop");
}

}  // namespace
}  // namespace flowmesh::inference::openai
