// The model an agent loop talks to. One turn: the conversation so far and the tools on
// offer go in, one reply (text in the grammar.h protocol) comes out.
//
// Implementations: EngineChatModel (engine_chat_model.h) over the worker's embedded
// llama.cpp engine, with grammar-constrained replies; OpenAiChatModel
// (openai_chat_model.h), a minimal plain-HTTP client of an OpenAI-compatible endpoint. The
// api executor's client (TLS, credentials, retries) plugs in as another ChatModel: return
// the tool call or content as `text`; CachedEngineModels in agent_executor.cc picks one.
//
// A ChatModel is used by one loop on one thread.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "agent/tool.h"
#include "common/status.h"

namespace flowmesh::agent {

struct ChatMessage {
  std::string role;  // system | user | assistant | tool
  std::string content;
};

struct TurnRequest {
  const std::vector<ChatMessage>* messages = nullptr;
  const std::vector<ToolInfo>* tools = nullptr;
  bool allow_tools = true;  // the reply may call a tool
  bool allow_final = true;  // the reply may be the final answer
  int max_tokens = 512;     // for this reply
  Deadline deadline;        // the reply is abandoned (DeadlineExceeded) past this
};

struct TurnReply {
  std::string text;
  std::string finish_reason;  // stop | length
  int prompt_tokens = 0;
  int completion_tokens = 0;
};

class ChatModel {
 public:
  virtual ~ChatModel() = default;
  // Errors: Cancelled when `cancelled` was set, DeadlineExceeded past the deadline,
  // InvalidArgument when the conversation does not fit the model.
  virtual Result<TurnReply> Next(const TurnRequest& request,
                                 const std::atomic<bool>& cancelled) = 0;
  // What goes into the result's `model` field.
  virtual std::string name() const = 0;
};

}  // namespace flowmesh::agent
