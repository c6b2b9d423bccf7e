#include "training/bridge_protocol.h"

#include <gtest/gtest.h>

namespace flowmesh::training {
namespace {

using nlohmann::json;

TEST(BridgeProtocolTest, ParsesEachMessageType) {
  auto hello = ParseBridgeLine(R"({"type":"hello","protocol":1,"pid":7})");
  ASSERT_TRUE(hello.ok()) << hello.status().ToString();
  EXPECT_EQ(hello->type, BridgeMessageType::kHello);
  EXPECT_TRUE(CheckHello(hello->body).ok());
  EXPECT_EQ(ParseBridgeLine(R"({"type":"log","level":"info","message":"hi"})")->type,
            BridgeMessageType::kLog);
  EXPECT_EQ(ParseBridgeLine(R"({"type":"progress","step":3,"loss":1.5})")->type,
            BridgeMessageType::kProgress);
  EXPECT_EQ(ParseBridgeLine(R"({"type":"checkpoint","step":3,"path":"checkpoints/c-3"})")->type,
            BridgeMessageType::kCheckpoint);
  EXPECT_EQ(ParseBridgeLine(R"({"type":"result","result":{"ok":true}})")->type,
            BridgeMessageType::kResult);
  EXPECT_EQ(ParseBridgeLine(R"({"type":"error","code":"internal","message":"x"})")->type,
            BridgeMessageType::kError);
}

TEST(BridgeProtocolTest, RefusesMalformedLines) {
  for (const char* line :
       {"", "not json", "[1,2]", R"({"no":"type"})", R"({"type":7})", R"({"type":"launch"})",
        R"({"type":"hello"})", R"({"type":"hello","protocol":"1"})", R"({"type":"log"})",
        R"({"type":"progress","step":-1})", R"({"type":"progress","step":1.5})",
        R"({"type":"checkpoint"})", R"({"type":"result","result":[1]})",
        R"({"type":"error","message":"no code"})"}) {
    auto parsed = ParseBridgeLine(line);
    ASSERT_FALSE(parsed.ok()) << line;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << line;
  }
  EXPECT_NE(ParseBridgeLine(R"({"type":"launch"})")
                .status()
                .message()
                .find("unknown message type 'launch'"),
            std::string::npos);
}

TEST(BridgeProtocolTest, OtherProtocolVersionIsAPrecondition) {
  Status old = CheckHello(json{{"type", "hello"}, {"protocol", 0}});
  EXPECT_EQ(old.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(old.message().find("protocol 0"), std::string::npos) << old.message();
  EXPECT_EQ(CheckHello(json{{"type", "hello"}}).code(), StatusCode::kFailedPrecondition);
}

TEST(BridgeProtocolTest, StartLineCarriesTheAttempt) {
  StartMessage start{"tsk-1", 2, "lora_sft", json{{"training", {{"learning_rate", 0.1}}}},
                     "/tmp/o"};
  std::string line = StartLine(start);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  json body = json::parse(line);
  EXPECT_EQ(body["type"], "start");
  EXPECT_EQ(body["protocol"], kBridgeProtocolVersion);
  EXPECT_EQ(body["task_id"], "tsk-1");
  EXPECT_EQ(body["attempt"], 2);
  EXPECT_EQ(body["task_type"], "lora_sft");
  EXPECT_EQ(body["spec"]["training"]["learning_rate"], 0.1);
  EXPECT_EQ(body["output_dir"], "/tmp/o");
  EXPECT_EQ(json::parse(StopLine())["type"], "stop");
}

TEST(BridgeProtocolTest, ErrorCodesDecideRetries) {
  EXPECT_EQ(ErrorStatus(json{{"code", "invalid_argument"}, {"message", "m"}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorStatus(json{{"code", "failed_precondition"}, {"message", "m"}}).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorStatus(json{{"code", "internal"}, {"message", "m"}}).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(ErrorStatus(json{{"code", "resource_exhausted"}, {"message", "m"}}).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(ErrorStatus(json{{"code", "internal"}, {"message", "boom"}}).message(), "boom");
}

TEST(BridgeProtocolTest, ProgressUpdateKeepsKnownNumbers) {
  json update = ProgressUpdate(json{{"type", "progress"},
                                    {"step", 4},
                                    {"max_steps", 30},
                                    {"loss", 1.25},
                                    {"tokens_per_second", 512.0},
                                    {"eta_seconds", 3.5},
                                    {"junk", 1},
                                    {"epoch", "two"}});
  EXPECT_EQ(update, (json{{"progress",
                           {{"step", 4},
                            {"max_steps", 30},
                            {"loss", 1.25},
                            {"tokens_per_second", 512.0},
                            {"eta_seconds", 3.5}}}}));
}

}  // namespace
}  // namespace flowmesh::training
