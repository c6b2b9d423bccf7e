// A ChatModel over the worker's embedded llama.cpp engine: the conversation goes through
// the model's chat template, the reply is sampled under the ReplyGrammar of the turn, so
// it is always a parseable tool call or final answer (unless cut at max_tokens).
// Sequences join the engine's shared decode loop like any inference task's.
#pragma once

#include <memory>
#include <string>

#include "agent/chat_model.h"
#include "inference/engine.h"

namespace flowmesh::agent {

class EngineChatModel : public ChatModel {
 public:
  // `sampling` comes from the task's inference section (temperature, seed, ...);
  // max_tokens and grammar are set per turn.
  EngineChatModel(std::shared_ptr<inference::Engine> engine, inference::SamplingParams sampling,
                  std::string name)
      : engine_(std::move(engine)), sampling_(std::move(sampling)), name_(std::move(name)) {}
  Result<TurnReply> Next(const TurnRequest& request, const std::atomic<bool>& cancelled) override;
  std::string name() const override { return name_; }

 private:
  std::shared_ptr<inference::Engine> engine_;
  inference::SamplingParams sampling_;
  std::string name_;
};

}  // namespace flowmesh::agent
