// One table (spec/executor_options.cc) drives the submit-time validator and the worker: for values in,
// at and beyond each option's bounds, of the wrong type and in the published quoted
// spellings, a value accepted at submit is accepted by SamplingFromSpec and a refused one is
// refused by both with the same message.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "inference/inference_executor.h"
#include "spec/executor_options.h"
#include "spec/task_schema.h"

namespace flowmesh::inference {
namespace {

using json = nlohmann::json;
using spec::Option;
using spec::OptionType;

std::vector<json> Probes(const Option& o) {
  std::vector<json> out = {json::object(), "x", true, json::array({"a"})};
  auto around = [&](double d, bool integer) {
    for (double step : {-1.0, -0.5, 0.0, 0.5, 1.0}) {
      double v = d + step;
      if (integer && v == static_cast<double>(static_cast<int64_t>(v))) {
        out.push_back(static_cast<int64_t>(v));
        out.push_back(std::to_string(static_cast<int64_t>(v)));  // quoted
      } else if (!integer) {
        out.push_back(v);
      }
    }
  };
  bool integer = o.type == OptionType::kInt || o.type == OptionType::kIntList ||
                 o.type == OptionType::kBoolOrInt;
  if (o.min) around(*o.min, integer);
  if (o.max) around(*o.max, integer);
  out.push_back(0);
  out.push_back(1);
  out.push_back(0.5);
  out.push_back("0.5");
  out.push_back("no");
  out.push_back(json::array({"a", "b"}));
  out.push_back(json::array({3, 4}));
  out.push_back(json::array({-1}));
  out.push_back(json::array({"x"}));
  return out;
}

// The validator's verdict: the message of the first error about the inference section.
std::string AtSubmit(const json& inference) {
  json spec = {{"taskType", "inference"}, {"inference", inference}};
  std::vector<spec::SchemaIssue> issues;
  spec::ValidateTaskFields(&spec, &issues);
  for (const auto& issue : issues) {
    if (!issue.warning && issue.rel.rfind(".inference", 0) == 0) return issue.message;
  }
  return "";
}

std::string OnWorker(const json& inference) {
  auto params = SamplingFromSpec(json{{"inference", inference}});
  return params.ok() ? "" : params.status().message();
}

TEST(SamplingOptions, SubmitAndWorkerAgreeOnEveryProbe) {
  int refused = 0, accepted = 0;
  for (const Option& option : spec::InferenceOptions()) {
    for (const json& value : Probes(option)) {
      json inference = {{option.name, value}};
      std::string submit = AtSubmit(inference);
      EXPECT_EQ(submit, OnWorker(inference)) << option.name << ": " << value.dump();
      (submit.empty() ? accepted : refused)++;
    }
  }
  EXPECT_GT(refused, 100);  // the probes do reach the bounds
  EXPECT_GT(accepted, 100);
}

TEST(SamplingOptions, RulesAcrossOptionsAgree) {
  for (const json& inference :
       {json{{"min_tokens", 9}, {"max_tokens", 3}}, json{{"min_tokens", 300}},
        json{{"min_tokens", 8}, {"max_new_tokens", 9}},
        json{{"min_tokens", 10}, {"max_new_tokens", 9}},
        json{{"min_tokens", 10}, {"max_tokens", 12}, {"max_new_tokens", 9}}}) {
    EXPECT_EQ(AtSubmit(inference), OnWorker(inference)) << inference.dump();
  }
  EXPECT_EQ(OnWorker({{"min_tokens", 300}}),
            "inference.min_tokens must be at most max_tokens (256), got 300");
}

TEST(SamplingOptions, ValuesReachTheSamplerAsDeclared) {
  auto p = SamplingFromSpec(json{{"inference",
                                  {{"temperature", "0.5"},
                                   {"max_new_tokens", 7},
                                   {"top_k", -1},
                                   {"seed", 4294967295LL},
                                   {"stop", "END"},
                                   {"logprobs", 2}}}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->temperature, 0.5f);
  EXPECT_EQ(p->max_tokens, 7);
  EXPECT_EQ(p->top_k, 0);
  EXPECT_EQ(p->seed, 4294967295u);
  EXPECT_EQ(p->stop, std::vector<std::string>{"END"});
  EXPECT_TRUE(p->logprobs);
  // Absent options take the table's defaults.
  auto d = SamplingFromSpec(json::object());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->max_tokens, spec::DefaultOf(*spec::FindInferenceOption("max_tokens")));
  EXPECT_EQ(d->temperature, 1.0f);
  EXPECT_EQ(d->seed, 0xFFFFFFFFu);  // random
}

TEST(SamplingOptions, TemperatureAndMaxTokensBoundsLiveInTheTable) {
  EXPECT_EQ(OnWorker({{"temperature", 2.5}}),
            "inference.temperature must be a number from 0 to 2, got '2.5'");
  EXPECT_EQ(AtSubmit({{"temperature", 2.5}}), OnWorker({{"temperature", 2.5}}));
  EXPECT_EQ(OnWorker({{"max_tokens", 0}}),
            "inference.max_tokens must be an integer from 1 to 1048576, got '0'");
}

}  // namespace
}  // namespace flowmesh::inference
