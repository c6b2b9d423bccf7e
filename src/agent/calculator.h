// A safe arithmetic evaluator for the agent's calculator tool: numbers, + - * / % ^ (and
// **), parentheses, unary signs, the constants pi and e, and a fixed set of functions.
// No names are looked up anywhere else, nothing is executed; input length and nesting
// depth are bounded, so hostile input ends in an InvalidArgument error, never a crash.
// Pure function, safe from any thread.
#pragma once

#include <string_view>

#include "common/status.h"

namespace flowmesh::agent {

constexpr size_t kMaxExpressionChars = 1024;
constexpr int kMaxExpressionDepth = 64;

// The value of `expression`, or InvalidArgument naming what is wrong and where (also for
// results that are not finite: division by zero, overflow, sqrt(-1)).
Result<double> Evaluate(std::string_view expression);

}  // namespace flowmesh::agent
