#include "agent/engine_chat_model.h"

#include <chrono>

#include "agent/grammar.h"

namespace flowmesh::agent {

constexpr auto kPoll = std::chrono::milliseconds(50);

Result<TurnReply> EngineChatModel::Next(const TurnRequest& request,
                                        const std::atomic<bool>& cancelled) {
  std::vector<std::pair<std::string, std::string>> chat;
  for (const auto& m : *request.messages) {
    // Chat templates know system/user/assistant; a tool result goes back as a user turn.
    if (m.role == "tool") {
      chat.emplace_back("user", "Tool result: " + m.content);
    } else {
      chat.emplace_back(m.role, m.content);
    }
  }
  FM_ASSIGN_OR_RETURN(std::string prompt, engine_->ApplyChatTemplate(chat));
  inference::SamplingParams params = sampling_;
  params.max_tokens = request.max_tokens;
  params.min_tokens = 0;
  params.stop.clear();
  params.grammar = ReplyGrammar(*request.tools, request.allow_tools, request.allow_final);
  FM_ASSIGN_OR_RETURN(std::shared_ptr<inference::Generation> gen, engine_->Submit(prompt, params));
  while (!gen->WaitFor(kPoll)) {
    bool late = std::chrono::steady_clock::now() >= request.deadline;
    if (cancelled.load() || late) {
      engine_->Cancel(gen);
      gen->WaitFor(std::chrono::seconds(10));
      if (late) return DeadlineExceeded("the model's reply did not come before the deadline");
      return Cancelled("agent: cancelled");
    }
  }
  inference::Completion c = gen->completion();
  if (c.finish_reason == "error") return Internal("agent model: " + c.error);
  if (c.finish_reason == "cancelled") return Cancelled("agent: cancelled");
  return TurnReply{c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens};
}

}  // namespace flowmesh::agent
