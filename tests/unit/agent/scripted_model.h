// A ChatModel fake for the agent tests: replies from a script, records every request.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "agent/chat_model.h"

namespace flowmesh::agent::testing {

class ScriptedModel : public ChatModel {
 public:
  struct Seen {
    size_t messages;
    bool allow_tools;
    bool allow_final;
    int max_tokens;
    std::string last_message;
  };
  explicit ScriptedModel(std::deque<std::string> replies, int tokens_per_reply = 10)
      : replies_(std::move(replies)), tokens_(tokens_per_reply) {}

  Result<TurnReply> Next(const TurnRequest& request, const std::atomic<bool>& cancelled) override {
    seen.push_back({request.messages->size(), request.allow_tools, request.allow_final,
                    request.max_tokens, request.messages->back().content});
    if (cancelled.load()) return Cancelled("cancelled");
    if (on_turn) on_turn();
    if (late || std::chrono::steady_clock::now() >= request.deadline)
      return DeadlineExceeded("late");
    if (replies_.empty()) return Internal("script exhausted");
    std::string text = replies_.front();
    replies_.pop_front();
    return TurnReply{text, "stop", 5, tokens_};
  }
  std::string name() const override { return "scripted"; }

  std::vector<Seen> seen;
  std::function<void()> on_turn;  // runs inside each turn (to cancel)
  bool late = false;              // every turn ends past its deadline (a slow model)

 private:
  std::deque<std::string> replies_;
  int tokens_;
};

}  // namespace flowmesh::agent::testing
