#include "agent/calculator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace flowmesh::agent {
namespace {

double Eval(const std::string& text) {
  auto r = Evaluate(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
  return r.ok() ? *r : NAN;
}

TEST(CalculatorTest, PrecedenceAssociativityAndSigns) {
  EXPECT_EQ(Eval("1 + 2 * 3"), 7);
  EXPECT_EQ(Eval("(1 + 2) * 3"), 9);
  EXPECT_EQ(Eval("10 - 4 - 3"), 3);
  EXPECT_EQ(Eval("2 ^ 3 ^ 2"), 512);
  EXPECT_EQ(Eval("2 ** 10"), 1024);
  EXPECT_EQ(Eval("-2 ^ 2"), -4);
  EXPECT_EQ(Eval("--3"), 3);
  EXPECT_EQ(Eval("7 % 4"), 3);
  EXPECT_EQ(Eval("1.5e3 / 3"), 500);
  EXPECT_EQ(Eval("2*-3"), -6);
}

TEST(CalculatorTest, FunctionsAndConstants) {
  EXPECT_DOUBLE_EQ(Eval("sqrt(16) + abs(-2)"), 6);
  EXPECT_DOUBLE_EQ(Eval("max(1, 9, 4) - min(3, 2)"), 7);
  EXPECT_DOUBLE_EQ(Eval("pow(2, 5)"), 32);
  EXPECT_NEAR(Eval("cos(pi)"), -1, 1e-12);
  EXPECT_NEAR(Eval("ln(e)"), 1, 1e-12);
  EXPECT_DOUBLE_EQ(Eval("floor(2.7) + ceil(2.1) + round(2.5)"), 8);
}

TEST(CalculatorTest, HostileOrBrokenInputIsAnErrorNotACrash) {
  for (const char* bad :
       {"", "1 +", "(1", "1)", "2 3", "foo", "foo(1)", "sqrt()", "pow(1)", "1/0", "5 % 0",
        "sqrt(-1)", "1e999", "system(\"ls\")", "__import__", "1..2", "max()"}) {
    auto r = Evaluate(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    }
  }
  EXPECT_FALSE(Evaluate(std::string(kMaxExpressionDepth + 10, '(') + "1" +
                        std::string(kMaxExpressionDepth + 10, ')'))
                   .ok());
  EXPECT_FALSE(Evaluate(std::string(5000, '-') + "1").ok());
  EXPECT_FALSE(Evaluate(std::string(kMaxExpressionChars + 1, '1')).ok());
}

TEST(CalculatorTest, ErrorsSayWhere) {
  auto r = Evaluate("1 + $");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("offset 4"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace flowmesh::agent
