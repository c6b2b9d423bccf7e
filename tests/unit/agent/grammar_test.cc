#include "agent/grammar.h"

#include <gtest/gtest.h>

#include "agent/builtin_tools.h"

namespace flowmesh::agent {
namespace {

using json = nlohmann::json;

TEST(ReplyParseTest, ToolCallsFinalAnswersAndJunk) {
  ParsedReply call = ParseReply(R"({"tool":"calculator","arguments":{"expression":"1+1"}})");
  ASSERT_TRUE(call.call.has_value());
  EXPECT_EQ(call.call->tool, "calculator");
  EXPECT_EQ(call.call->arguments, json({{"expression", "1+1"}}));

  ParsedReply final_answer = ParseReply("Sure! {\"final\":\"42\"} bye");  // remote models chatter
  ASSERT_TRUE(final_answer.final_answer.has_value());
  EXPECT_EQ(*final_answer.final_answer, "42");

  for (const char* junk : {"", "hello", "{", "{\"tool\":1}", "{\"other\":true}", "[1,2]"}) {
    ParsedReply r = ParseReply(junk);
    EXPECT_FALSE(r.call.has_value()) << junk;
    EXPECT_FALSE(r.final_answer.has_value()) << junk;
    EXPECT_FALSE(r.error.empty()) << junk;
  }
}

TEST(ReplyGrammarTest, NamesEveryToolAndOnlyTheAllowedReplyKinds) {
  ToolSet tools;
  ASSERT_TRUE(tools.Add(MakeCalculatorTool()).ok());
  ASSERT_TRUE(tools.Add(MakeHttpFetchTool({})).ok());
  std::string both = ReplyGrammar(tools.infos(), true, true);
  EXPECT_EQ(both.rfind("root ::= ", 0), 0u) << both;
  EXPECT_NE(both.find(R"(\"tool\":\"calculator\")"), std::string::npos) << both;
  EXPECT_NE(both.find(R"(\"tool\":\"http_fetch\")"), std::string::npos) << both;
  EXPECT_NE(both.find(R"(\"final\":)"), std::string::npos) << both;

  std::string tools_only = ReplyGrammar(tools.infos(), true, false);
  EXPECT_EQ(tools_only.find(R"(\"final\":)"), std::string::npos) << tools_only;
  std::string final_only = ReplyGrammar(tools.infos(), false, true);
  EXPECT_EQ(final_only.find(R"(\"tool\":)"), std::string::npos) << final_only;
  // No tools: a final answer is the only possible reply, whatever was asked.
  EXPECT_NE(ReplyGrammar({}, true, false).find(R"(\"final\":)"), std::string::npos);
}

TEST(ReplyGrammarTest, SchemasOfEveryShapeBecomeRules) {
  ToolInfo info{"lookup", "d", json::parse(R"({"type":"object","properties":{
                  "q":{"type":"string","maxLength":8},"n":{"type":"integer"},"x":{"type":"number"},
                  "b":{"type":"boolean"},"mode":{"enum":["a","b\"c"]},
                  "tags":{"type":"array","items":{"type":"string"}},
                  "opts":{"type":"object","properties":{"k":{"type":"string"}}}},
                  "required":["q","n","x","b","mode","tags","opts"]})")};
  std::string g = ReplyGrammar({info}, true, true);
  EXPECT_NE(g.find("{0,8}"), std::string::npos) << g;            // maxLength bounds the string
  EXPECT_NE(g.find(R"("\"b\\\"c\"")"), std::string::npos) << g;  // enum literal, escaped
  EXPECT_NE(g.find(R"("true" | "false")"), std::string::npos) << g;
  EXPECT_GT(MaxReplyChars({info}), MaxReplyChars({}));
}

TEST(ReplyInstructionsTest, DescribeProtocolAndTools) {
  std::string text = ToolInstructions({MakeCalculatorTool()->info()}, "Be brief.");
  EXPECT_EQ(text.rfind("Be brief.", 0), 0u);
  EXPECT_NE(text.find("calculator"), std::string::npos);
  EXPECT_NE(text.find("\"final\""), std::string::npos);
}

}  // namespace
}  // namespace flowmesh::agent
