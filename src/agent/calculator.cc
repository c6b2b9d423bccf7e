#include "agent/calculator.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

namespace flowmesh::agent {
namespace {

struct Function {
  const char* name;
  int arity;  // -1: one or more
  double (*apply)(const std::vector<double>&);
};

const Function kFunctions[] = {
    {"sqrt", 1, [](const std::vector<double>& a) { return std::sqrt(a[0]); }},
    {"abs", 1, [](const std::vector<double>& a) { return std::fabs(a[0]); }},
    {"exp", 1, [](const std::vector<double>& a) { return std::exp(a[0]); }},
    {"ln", 1, [](const std::vector<double>& a) { return std::log(a[0]); }},
    {"log", 1, [](const std::vector<double>& a) { return std::log(a[0]); }},
    {"log10", 1, [](const std::vector<double>& a) { return std::log10(a[0]); }},
    {"log2", 1, [](const std::vector<double>& a) { return std::log2(a[0]); }},
    {"sin", 1, [](const std::vector<double>& a) { return std::sin(a[0]); }},
    {"cos", 1, [](const std::vector<double>& a) { return std::cos(a[0]); }},
    {"tan", 1, [](const std::vector<double>& a) { return std::tan(a[0]); }},
    {"floor", 1, [](const std::vector<double>& a) { return std::floor(a[0]); }},
    {"ceil", 1, [](const std::vector<double>& a) { return std::ceil(a[0]); }},
    {"round", 1, [](const std::vector<double>& a) { return std::round(a[0]); }},
    {"pow", 2, [](const std::vector<double>& a) { return std::pow(a[0], a[1]); }},
    {"min", -1,
     [](const std::vector<double>& a) {
       double m = a[0];
       for (double v : a) m = std::fmin(m, v);
       return m;
     }},
    {"max", -1,
     [](const std::vector<double>& a) {
       double m = a[0];
       for (double v : a) m = std::fmax(m, v);
       return m;
     }},
};

// Recursive descent over
//   sum     := product (('+' | '-') product)*
//   product := unary (('*' | '/' | '%') unary)*
//   unary   := ('+' | '-') unary | power
//   power   := atom (('^' | '**') unary)?      (right-associative, binds tighter than sign
//                                               on its left: -2^2 = -4)
//   atom    := number | name | name '(' sum (',' sum)* ')' | '(' sum ')'
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<double> Parse() {
    FM_ASSIGN_OR_RETURN(double value, Sum());
    Skip();
    if (pos_ != text_.size()) return Error("unexpected '" + std::string(1, text_[pos_]) + "'");
    return value;
  }

 private:
  Status Error(const std::string& what) const {
    return InvalidArgument(what + " at offset " + std::to_string(pos_));
  }
  void Skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Eat(std::string_view token) {
    Skip();
    if (text_.substr(pos_, token.size()) != token) return false;
    pos_ += token.size();
    return true;
  }
  Status Enter() {
    if (++depth_ > kMaxExpressionDepth) return Error("expression nested too deeply");
    return Status::Ok();
  }

  Result<double> Sum() {
    FM_RETURN_IF_ERROR(Enter());
    FM_ASSIGN_OR_RETURN(double value, Product());
    while (true) {
      if (Eat("+")) {
        FM_ASSIGN_OR_RETURN(double rhs, Product());
        value += rhs;
      } else if (Eat("-")) {
        FM_ASSIGN_OR_RETURN(double rhs, Product());
        value -= rhs;
      } else {
        break;
      }
    }
    --depth_;
    return value;
  }

  Result<double> Product() {
    FM_ASSIGN_OR_RETURN(double value, Unary());
    while (true) {
      Skip();
      if (text_.substr(pos_, 2) == "**") break;  // a power, handled below the sign
      char op = pos_ < text_.size() ? text_[pos_] : '\0';
      if (op != '*' && op != '/' && op != '%') break;
      ++pos_;
      FM_ASSIGN_OR_RETURN(double rhs, Unary());
      if ((op == '/' || op == '%') && rhs == 0) return Error("division by zero");
      value = op == '*' ? value * rhs : op == '/' ? value / rhs : std::fmod(value, rhs);
    }
    return value;
  }

  Result<double> Unary() {
    FM_RETURN_IF_ERROR(Enter());
    double value = 0;
    if (Eat("-")) {
      FM_ASSIGN_OR_RETURN(double v, Unary());
      value = -v;
    } else if (Eat("+")) {
      FM_ASSIGN_OR_RETURN(value, Unary());
    } else {
      FM_ASSIGN_OR_RETURN(value, Power());
    }
    --depth_;
    return value;
  }

  Result<double> Power() {
    FM_ASSIGN_OR_RETURN(double base, Atom());
    if (Eat("^") || Eat("**")) {
      FM_ASSIGN_OR_RETURN(double exponent, Unary());
      return std::pow(base, exponent);
    }
    return base;
  }

  Result<double> Number() {
    const char* begin = text_.data() + pos_;
    size_t n = 0;
    while (pos_ + n < text_.size() &&
           (std::isdigit(static_cast<unsigned char>(text_[pos_ + n])) || text_[pos_ + n] == '.' ||
            ((text_[pos_ + n] == 'e' || text_[pos_ + n] == 'E') && n > 0) ||
            ((text_[pos_ + n] == '+' || text_[pos_ + n] == '-') && n > 0 &&
             (text_[pos_ + n - 1] == 'e' || text_[pos_ + n - 1] == 'E')))) {
      ++n;
    }
    std::string literal(begin, n);  // strtod needs a terminated string
    char* end = nullptr;
    double value = std::strtod(literal.c_str(), &end);
    if (end != literal.c_str() + literal.size()) return Error("malformed number '" + literal + "'");
    pos_ += n;
    return value;
  }

  Result<double> Call(const std::string& name) {
    const Function* fn = nullptr;
    for (const auto& f : kFunctions) {
      if (name == f.name) fn = &f;
    }
    if (!fn) return Error("unknown function '" + name + "'");
    std::vector<double> args;
    if (!Eat(")")) {
      do {
        FM_ASSIGN_OR_RETURN(double v, Sum());
        args.push_back(v);
      } while (Eat(","));
      if (!Eat(")")) return Error("expected ')' after the arguments of " + name);
    }
    bool arity_ok = fn->arity < 0 ? !args.empty() : static_cast<int>(args.size()) == fn->arity;
    if (!arity_ok)
      return Error(name + " takes " + (fn->arity < 0 ? "one or more" : std::to_string(fn->arity)) +
                   " argument(s)");
    return fn->apply(args);
  }

  Result<double> Atom() {
    Skip();
    if (pos_ >= text_.size()) return Error("unexpected end of expression");
    char c = text_[pos_];
    if (c == '(') {
      ++pos_;
      FM_ASSIGN_OR_RETURN(double value, Sum());
      if (!Eat(")")) return Error("expected ')'");
      return value;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return Number();
    if (std::isalpha(static_cast<unsigned char>(c))) {
      size_t start = pos_;
      while (pos_ < text_.size() &&
             (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) {
        ++pos_;
      }
      std::string name(text_.substr(start, pos_ - start));
      if (Eat("(")) return Call(name);
      if (name == "pi") return M_PI;
      if (name == "e") return M_E;
      pos_ = start;
      return Error("unknown name '" + name + "'");
    }
    return Error("unexpected '" + std::string(1, c) + "'");
  }

  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<double> Evaluate(std::string_view expression) {
  if (expression.size() > kMaxExpressionChars) {
    return InvalidArgument("expression longer than " + std::to_string(kMaxExpressionChars) +
                           " characters");
  }
  FM_ASSIGN_OR_RETURN(double value, Parser(expression).Parse());
  if (!std::isfinite(value)) return InvalidArgument("the result is not a finite number");
  return value;
}

}  // namespace flowmesh::agent
