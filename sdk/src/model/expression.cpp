// The template expression language: lexer, recursive-descent parser with static
// type checking, and a bounded tree-walking evaluator. See docs/templates.md.

#include <outpost/expression.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <utility>

namespace outpost::model {

std::string_view valueTypeName(ValueType type) noexcept {
  switch (type) {
  case ValueType::null:
    return "null";
  case ValueType::boolean:
    return "true/false";
  case ValueType::integer:
    return "number";
  case ValueType::text:
    return "text";
  case ValueType::date:
    return "date";
  case ValueType::list:
    return "list";
  }
  return "unknown";
}

std::string ExpressionDiagnostic::toString() const {
  return message + " at column " + std::to_string(column);
}

ExpressionEnvironment::~ExpressionEnvironment() = default;

bool isTrue(const ExprValue& value) noexcept {
  const bool* b = std::get_if<bool>(&value);
  return b != nullptr && *b;
}

std::optional<Date> parseDate(std::string_view text) noexcept {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') {
    return std::nullopt;
  }
  auto digits = [&](std::size_t from, std::size_t count) -> std::optional<int> {
    int v = 0;
    for (std::size_t i = from; i < from + count; ++i) {
      if (text[i] < '0' || text[i] > '9') {
        return std::nullopt;
      }
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  const auto y = digits(0, 4);
  const auto m = digits(5, 2);
  const auto d = digits(8, 2);
  if (!y || !m || !d) {
    return std::nullopt;
  }
  const Date date{std::chrono::year{*y}, std::chrono::month{static_cast<unsigned>(*m)},
                  std::chrono::day{static_cast<unsigned>(*d)}};
  if (!date.ok()) {
    return std::nullopt;
  }
  return date;
}

std::string formatDate(Date date) {
  std::array<char, 16> buf{};
  std::snprintf(buf.data(), buf.size(), "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return std::string(buf.data());
}

namespace detail {

enum class Op : std::uint8_t {
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  add,
  sub,
  mul,
  div,
  mod,
  neg,
  logicalAnd,
  logicalOr,
  logicalNot,
  in
};

enum class Builtin : std::uint8_t {
  count,
  selected,
  today,
  daysSince,
  date,
  age,
  learningDisability,
  present,
  recency,
  countIndicators
};

struct ExprNode {
  enum class Kind : std::uint8_t { literal, answer, current, list, op, call };
  Kind kind = Kind::literal;
  std::size_t column = 0;
  ValueType type = ValueType::null;
  ExprValue literal;
  std::string name; // question id for answers
  Op op = Op::eq;
  Builtin builtin = Builtin::count;
  std::size_t height = 1; // of the subtree rooted here, bounded by kMaxExpressionDepth
  std::vector<std::unique_ptr<ExprNode>> children;
};

} // namespace detail

namespace {

using detail::Builtin;
using detail::ExprNode;
using detail::Op;
using NodePtr = std::unique_ptr<ExprNode>;

// ---------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------

enum class Tok : std::uint8_t {
  end,
  number,
  string,
  ident,
  answer,
  dot,
  lparen,
  rparen,
  lbracket,
  rbracket,
  comma,
  op
};

struct Token {
  Tok kind = Tok::end;
  std::size_t column = 0; // 1-based
  std::string text;       // identifier, answer id, string contents or operator
  std::int64_t number = 0;
};

/// Thrown inside the compiler only; turned into a diagnostic at the boundary.
struct SyntaxError {
  std::size_t column;
  std::string message;
};

std::string describeByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) {
    return std::string("'") + c + "'";
  }
  std::array<char, 8> buf{};
  std::snprintf(buf.data(), buf.size(), "0x%02X", static_cast<unsigned>(u));
  return std::string("byte ") + buf.data();
}

bool isIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool isIdentChar(char c) { return isIdentStart(c) || (c >= '0' && c <= '9'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
public:
  explicit Lexer(std::string_view src) : src_(src) {}

  Token next() {
    while (pos_ < src_.size() &&
           (src_[pos_] == ' ' || src_[pos_] == '\t' || src_[pos_] == '\n' || src_[pos_] == '\r')) {
      ++pos_;
    }
    Token t;
    t.column = pos_ + 1;
    if (pos_ >= src_.size()) {
      t.kind = Tok::end;
      return t;
    }
    const char c = src_[pos_];
    if (isDigit(c)) {
      return lexNumber(t);
    }
    if (isIdentStart(c)) {
      const std::size_t start = pos_;
      while (pos_ < src_.size() && isIdentChar(src_[pos_])) {
        ++pos_;
      }
      t.kind = Tok::ident;
      t.text = std::string(src_.substr(start, pos_ - start));
      return t;
    }
    if (c == '\'' || c == '"') {
      return lexString(t, c);
    }
    if (c == '$') {
      return lexAnswer(t);
    }
    ++pos_;
    switch (c) {
    case '.':
      if (pos_ < src_.size() && isDigit(src_[pos_])) {
        throw SyntaxError{t.column, "decimal numbers are not supported; use whole numbers"};
      }
      t.kind = Tok::dot;
      return t;
    case '(':
      t.kind = Tok::lparen;
      return t;
    case ')':
      t.kind = Tok::rparen;
      return t;
    case '[':
      t.kind = Tok::lbracket;
      return t;
    case ']':
      t.kind = Tok::rbracket;
      return t;
    case ',':
      t.kind = Tok::comma;
      return t;
    case '+':
    case '-':
    case '*':
    case '/':
    case '%':
      t.kind = Tok::op;
      t.text = std::string(1, c);
      return t;
    case '=':
      t.kind = Tok::op;
      t.text = "=";
      if (pos_ < src_.size() && src_[pos_] == '=') {
        ++pos_; // `==` is accepted as a synonym of `=`
      }
      return t;
    case '!':
      if (pos_ < src_.size() && src_[pos_] == '=') {
        ++pos_;
        t.kind = Tok::op;
        t.text = "!=";
        return t;
      }
      throw SyntaxError{t.column, "'!' is not an operator; use 'not' or '!='"};
    case '<':
    case '>':
      t.kind = Tok::op;
      t.text = std::string(1, c);
      if (pos_ < src_.size() && src_[pos_] == '=') {
        ++pos_;
        t.text += '=';
      }
      return t;
    default:
      throw SyntaxError{t.column, "unexpected " + describeByte(c)};
    }
  }

private:
  Token lexNumber(Token& t) {
    constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
    std::int64_t value = 0;
    bool overflow = false;
    while (pos_ < src_.size() && isDigit(src_[pos_])) {
      const std::int64_t digit = src_[pos_] - '0';
      if (!overflow && value > (kMax - digit) / 10) {
        overflow = true;
      }
      if (!overflow) {
        value = value * 10 + digit;
      }
      ++pos_;
    }
    if (overflow) {
      throw SyntaxError{t.column, "number too large (the largest is 9223372036854775807)"};
    }
    if (pos_ < src_.size() && src_[pos_] == '.') {
      throw SyntaxError{t.column, "decimal numbers are not supported; use whole numbers"};
    }
    if (pos_ < src_.size() && isIdentStart(src_[pos_])) {
      throw SyntaxError{pos_ + 1, "a number must not run into a name; add a space"};
    }
    t.kind = Tok::number;
    t.number = value;
    return t;
  }

  Token lexString(Token& t, char quote) {
    ++pos_;
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) {
        throw SyntaxError{t.column, "unterminated string; close it with " + std::string(1, quote)};
      }
      const char c = src_[pos_++];
      if (c == quote) {
        break;
      }
      if (c == '\\') {
        if (pos_ >= src_.size()) {
          throw SyntaxError{t.column,
                            "unterminated string; close it with " + std::string(1, quote)};
        }
        const char e = src_[pos_++];
        if (e != '\\' && e != '\'' && e != '"') {
          throw SyntaxError{pos_ - 1, "unknown escape \\" + std::string(1, e) +
                                          " (only \\\\, \\' and \\\" are allowed)"};
        }
        out += e;
        continue;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        throw SyntaxError{pos_, "control " + describeByte(c) + " inside a string"};
      }
      out += c;
    }
    t.kind = Tok::string;
    t.text = std::move(out);
    return t;
  }

  Token lexAnswer(Token& t) {
    ++pos_;
    if (pos_ >= src_.size() || src_[pos_] != '{') {
      throw SyntaxError{t.column, "'$' must start an answer reference like ${question_id}"};
    }
    ++pos_;
    const std::size_t start = pos_;
    while (pos_ < src_.size() && isIdentChar(src_[pos_])) {
      ++pos_;
    }
    if (pos_ >= src_.size() || src_[pos_] != '}') {
      throw SyntaxError{t.column, "expected '}' to close the answer reference"};
    }
    if (pos_ == start) {
      throw SyntaxError{t.column, "empty answer reference; write ${question_id}"};
    }
    t.kind = Tok::answer;
    t.text = std::string(src_.substr(start, pos_ - start));
    ++pos_;
    return t;
  }

  std::string_view src_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// Parser and type checker
// ---------------------------------------------------------------------------

struct FunctionSpec {
  std::string_view name;
  Builtin builtin;
  std::size_t minArgs;
  std::size_t maxArgs;
  std::array<ValueType, 2> params;
  ValueType result;
  bool rulesOnly;
  bool literalArgs; // arguments must be text literals (checked at load time)
};

constexpr std::array kFunctions{
    FunctionSpec{"count",
                 Builtin::count,
                 1,
                 1,
                 {ValueType::list, ValueType::null},
                 ValueType::integer,
                 false,
                 false},
    FunctionSpec{"selected",
                 Builtin::selected,
                 2,
                 2,
                 {ValueType::list, ValueType::text},
                 ValueType::boolean,
                 false,
                 false},
    FunctionSpec{"today",
                 Builtin::today,
                 0,
                 0,
                 {ValueType::null, ValueType::null},
                 ValueType::date,
                 false,
                 false},
    FunctionSpec{"days_since",
                 Builtin::daysSince,
                 1,
                 1,
                 {ValueType::date, ValueType::null},
                 ValueType::integer,
                 false,
                 false},
    FunctionSpec{"date",
                 Builtin::date,
                 1,
                 1,
                 {ValueType::text, ValueType::null},
                 ValueType::date,
                 false,
                 true},
    FunctionSpec{"age",
                 Builtin::age,
                 0,
                 0,
                 {ValueType::null, ValueType::null},
                 ValueType::integer,
                 false,
                 false},
    FunctionSpec{"learning_disability",
                 Builtin::learningDisability,
                 0,
                 0,
                 {ValueType::null, ValueType::null},
                 ValueType::boolean,
                 false,
                 false},
    FunctionSpec{"present",
                 Builtin::present,
                 1,
                 1,
                 {ValueType::text, ValueType::null},
                 ValueType::boolean,
                 true,
                 true},
    FunctionSpec{"recency",
                 Builtin::recency,
                 1,
                 1,
                 {ValueType::text, ValueType::null},
                 ValueType::text,
                 true,
                 true},
    FunctionSpec{"count_indicators",
                 Builtin::countIndicators,
                 1,
                 2,
                 {ValueType::text, ValueType::text},
                 ValueType::integer,
                 true,
                 true},
};

constexpr std::array<std::string_view, 3> kTiers{"vulnerability", "concern", "serious"};
constexpr std::array<std::string_view, 3> kRecencies{"current", "within_6_months", "6_12_months"};

bool typeFits(ValueType actual, ValueType wanted) {
  return actual == wanted || actual == ValueType::null;
}

class Parser {
public:
  Parser(std::string_view src, const ExpressionScope& scope,
         std::set<std::string, std::less<>>& read, std::vector<ExpressionDiagnostic>& diags)
      : lexer_(src), scope_(scope), read_(read), diags_(diags) {
    advance();
  }

  NodePtr parseAll() {
    NodePtr n = parseOr(0);
    if (tok_.kind != Tok::end) {
      throw SyntaxError{tok_.column, "unexpected " + describe(tok_) + " after the expression"};
    }
    return n;
  }

private:
  void advance() { tok_ = lexer_.next(); }

  static std::string describe(const Token& t) {
    switch (t.kind) {
    case Tok::end:
      return "end of expression";
    case Tok::number:
      return "number";
    case Tok::string:
      return "text";
    case Tok::ident:
      return "'" + t.text + "'";
    case Tok::answer:
      return "${" + t.text + "}";
    case Tok::dot:
      return "'.'";
    case Tok::lparen:
      return "'('";
    case Tok::rparen:
      return "')'";
    case Tok::lbracket:
      return "'['";
    case Tok::rbracket:
      return "']'";
    case Tok::comma:
      return "','";
    case Tok::op:
      return "'" + t.text + "'";
    }
    return "token";
  }

  static void checkDepth(std::size_t depth, std::size_t column) {
    if (depth > kMaxExpressionDepth) {
      throw SyntaxError{column, "expression nested too deeply (the limit is " +
                                    std::to_string(kMaxExpressionDepth) + " levels)"};
    }
  }

  bool isKeyword(std::string_view word) const {
    return tok_.kind == Tok::ident && tok_.text == word;
  }

  void typeError(std::size_t column, std::string message) {
    diags_.push_back({column, std::move(message)});
  }

  NodePtr makeOp(Op op, std::size_t column, ValueType type, NodePtr a, NodePtr b = nullptr) {
    auto n = std::make_unique<ExprNode>();
    n->kind = ExprNode::Kind::op;
    n->op = op;
    n->column = column;
    n->type = type;
    n->children.push_back(std::move(a));
    if (b) {
      n->children.push_back(std::move(b));
    }
    setHeight(*n);
    return n;
  }

  // Chains like `1+1+1+...` grow the tree without growing the parser's recursion,
  // so the tree's own height is bounded as well.
  static void setHeight(ExprNode& n) {
    std::size_t h = 0;
    for (const auto& c : n.children) {
      h = std::max(h, c->height);
    }
    n.height = h + 1;
    checkDepth(n.height, n.column);
  }

  void requireBoolean(const ExprNode& n, std::string_view what) {
    if (!typeFits(n.type, ValueType::boolean)) {
      typeError(n.column,
                std::string(what) + " needs true/false, got " + std::string(valueTypeName(n.type)));
    }
  }

  // `depth` counts nesting (parentheses, 'not', '-', function arguments), which is
  // what drives the parser's recursion; precedence levels pass it through.
  NodePtr parseOr(std::size_t depth) {
    checkDepth(depth, tok_.column);
    NodePtr left = parseAnd(depth);
    while (isKeyword("or")) {
      const std::size_t col = tok_.column;
      advance();
      NodePtr right = parseAnd(depth);
      requireBoolean(*left, "'or'");
      requireBoolean(*right, "'or'");
      left = makeOp(Op::logicalOr, col, ValueType::boolean, std::move(left), std::move(right));
    }
    return left;
  }

  NodePtr parseAnd(std::size_t depth) {
    checkDepth(depth, tok_.column);
    NodePtr left = parseNot(depth);
    while (isKeyword("and")) {
      const std::size_t col = tok_.column;
      advance();
      NodePtr right = parseNot(depth);
      requireBoolean(*left, "'and'");
      requireBoolean(*right, "'and'");
      left = makeOp(Op::logicalAnd, col, ValueType::boolean, std::move(left), std::move(right));
    }
    return left;
  }

  NodePtr parseNot(std::size_t depth) {
    checkDepth(depth, tok_.column);
    if (isKeyword("not")) {
      const std::size_t col = tok_.column;
      checkDepth(depth + 1, col);
      advance();
      NodePtr operand = parseNot(depth + 1);
      requireBoolean(*operand, "'not'");
      return makeOp(Op::logicalNot, col, ValueType::boolean, std::move(operand));
    }
    return parseComparison(depth);
  }

  NodePtr parseComparison(std::size_t depth) {
    checkDepth(depth, tok_.column);
    NodePtr left = parseAdditive(depth);
    if (tok_.kind == Tok::op && (tok_.text == "=" || tok_.text == "!=" || tok_.text == "<" ||
                                 tok_.text == "<=" || tok_.text == ">" || tok_.text == ">=")) {
      const std::string opText = tok_.text;
      const std::size_t col = tok_.column;
      advance();
      NodePtr right = parseAdditive(depth);
      Op op = Op::eq;
      if (opText == "!=") {
        op = Op::ne;
      } else if (opText == "<") {
        op = Op::lt;
      } else if (opText == "<=") {
        op = Op::le;
      } else if (opText == ">") {
        op = Op::gt;
      } else if (opText == ">=") {
        op = Op::ge;
      }
      const ValueType a = left->type;
      const ValueType b = right->type;
      if (op == Op::eq || op == Op::ne) {
        if (a != ValueType::null && b != ValueType::null && (a != b || a == ValueType::list)) {
          typeError(col, "cannot compare " + std::string(valueTypeName(a)) + " with " +
                             std::string(valueTypeName(b)) + " using '" + opText + "'");
        }
      } else {
        const bool ordered = (typeFits(a, ValueType::integer) && typeFits(b, ValueType::integer)) ||
                             (typeFits(a, ValueType::date) && typeFits(b, ValueType::date));
        if (!ordered) {
          typeError(col, "'" + opText + "' compares two numbers or two dates, got " +
                             std::string(valueTypeName(a)) + " and " +
                             std::string(valueTypeName(b)));
        }
      }
      left = makeOp(op, col, ValueType::boolean, std::move(left), std::move(right));
      if (tok_.kind == Tok::op && (tok_.text == "=" || tok_.text == "!=" || tok_.text == "<" ||
                                   tok_.text == "<=" || tok_.text == ">" || tok_.text == ">=")) {
        throw SyntaxError{tok_.column,
                          "comparisons cannot be chained; join them with 'and' or 'or'"};
      }
    } else if (isKeyword("in")) {
      const std::size_t col = tok_.column;
      advance();
      NodePtr right = parseAdditive(depth);
      if (!typeFits(left->type, ValueType::text) || !typeFits(right->type, ValueType::list)) {
        typeError(col, "'in' needs text on the left and a list on the right, got " +
                           std::string(valueTypeName(left->type)) + " and " +
                           std::string(valueTypeName(right->type)));
      }
      left = makeOp(Op::in, col, ValueType::boolean, std::move(left), std::move(right));
    }
    return left;
  }

  NodePtr parseAdditive(std::size_t depth) {
    checkDepth(depth, tok_.column);
    NodePtr left = parseMultiplicative(depth);
    while (tok_.kind == Tok::op && (tok_.text == "+" || tok_.text == "-")) {
      const Op op = tok_.text == "+" ? Op::add : Op::sub;
      const std::size_t col = tok_.column;
      advance();
      NodePtr right = parseMultiplicative(depth);
      left = arithmetic(op, col, std::move(left), std::move(right));
    }
    return left;
  }

  NodePtr parseMultiplicative(std::size_t depth) {
    checkDepth(depth, tok_.column);
    NodePtr left = parseUnary(depth);
    while (tok_.kind == Tok::op && (tok_.text == "*" || tok_.text == "/" || tok_.text == "%")) {
      const Op op = tok_.text == "*" ? Op::mul : (tok_.text == "/" ? Op::div : Op::mod);
      const std::size_t col = tok_.column;
      advance();
      NodePtr right = parseUnary(depth);
      left = arithmetic(op, col, std::move(left), std::move(right));
    }
    return left;
  }

  NodePtr arithmetic(Op op, std::size_t col, NodePtr left, NodePtr right) {
    if (!typeFits(left->type, ValueType::integer) || !typeFits(right->type, ValueType::integer)) {
      typeError(col, "arithmetic needs numbers, got " + std::string(valueTypeName(left->type)) +
                         " and " + std::string(valueTypeName(right->type)));
    }
    return makeOp(op, col, ValueType::integer, std::move(left), std::move(right));
  }

  NodePtr parseUnary(std::size_t depth) {
    checkDepth(depth, tok_.column);
    if (tok_.kind == Tok::op && tok_.text == "-") {
      const std::size_t col = tok_.column;
      checkDepth(depth + 1, col);
      advance();
      NodePtr operand = parseUnary(depth + 1);
      if (!typeFits(operand->type, ValueType::integer)) {
        typeError(col, "'-' needs a number, got " + std::string(valueTypeName(operand->type)));
      }
      return makeOp(Op::neg, col, ValueType::integer, std::move(operand));
    }
    return parsePrimary(depth);
  }

  NodePtr literal(ExprValue v, ValueType type, std::size_t column) {
    auto n = std::make_unique<ExprNode>();
    n->kind = ExprNode::Kind::literal;
    n->literal = std::move(v);
    n->type = type;
    n->column = column;
    return n;
  }

  NodePtr parsePrimary(std::size_t depth) {
    checkDepth(depth, tok_.column);
    const Token t = tok_;
    switch (t.kind) {
    case Tok::number:
      advance();
      return literal(t.number, ValueType::integer, t.column);
    case Tok::string:
      advance();
      return literal(t.text, ValueType::text, t.column);
    case Tok::answer: {
      advance();
      auto n = std::make_unique<ExprNode>();
      n->kind = ExprNode::Kind::answer;
      n->column = t.column;
      n->name = t.text;
      const auto it = scope_.questions.find(t.text);
      if (it == scope_.questions.end()) {
        typeError(t.column, "unknown question '" + t.text + "'");
        n->type = ValueType::null;
      } else {
        n->type = it->second;
        read_.insert(t.text);
      }
      return n;
    }
    case Tok::dot: {
      advance();
      auto n = std::make_unique<ExprNode>();
      n->kind = ExprNode::Kind::current;
      n->column = t.column;
      if (scope_.kind != ExpressionKind::constraint || !scope_.currentType) {
        typeError(t.column, "'.' (the answer being checked) is only allowed in a constraint");
        n->type = ValueType::null;
      } else {
        n->type = *scope_.currentType;
      }
      return n;
    }
    case Tok::lparen: {
      checkDepth(depth + 1, t.column);
      advance();
      NodePtr inner = parseOr(depth + 1);
      if (tok_.kind != Tok::rparen) {
        throw SyntaxError{tok_.column, "expected ')' to close the '(' at column " +
                                           std::to_string(t.column) + ", found " + describe(tok_)};
      }
      advance();
      return inner;
    }
    case Tok::lbracket:
      return parseList(t);
    case Tok::ident:
      return parseIdent(t, depth);
    case Tok::end:
      throw SyntaxError{t.column, "expression ends too early; a value is missing"};
    default:
      throw SyntaxError{t.column, "expected a value, found " + describe(t)};
    }
  }

  NodePtr parseList(const Token& open) {
    advance();
    std::vector<std::string> items;
    if (tok_.kind != Tok::rbracket) {
      while (true) {
        if (tok_.kind != Tok::string) {
          throw SyntaxError{tok_.column,
                            "a list holds text literals like 'option_id', found " + describe(tok_)};
        }
        items.push_back(tok_.text);
        advance();
        if (tok_.kind == Tok::comma) {
          advance();
          continue;
        }
        if (tok_.kind == Tok::rbracket) {
          break;
        }
        throw SyntaxError{tok_.column, "expected ',' or ']' in the list that starts at column " +
                                           std::to_string(open.column) + ", found " +
                                           describe(tok_)};
      }
    }
    advance();
    auto n = literal(std::move(items), ValueType::list, open.column);
    n->kind = ExprNode::Kind::list;
    return n;
  }

  NodePtr parseIdent(const Token& t, std::size_t depth) {
    if (t.text == "true" || t.text == "false") {
      advance();
      return literal(t.text == "true", ValueType::boolean, t.column);
    }
    if (t.text == "null") {
      advance();
      return literal(std::monostate{}, ValueType::null, t.column);
    }
    if (t.text == "and" || t.text == "or" || t.text == "not" || t.text == "in") {
      throw SyntaxError{t.column, "expected a value, found '" + t.text + "'"};
    }
    advance();
    if (tok_.kind != Tok::lparen) {
      throw SyntaxError{t.column, "unknown name '" + t.text +
                                      "'; answers are written ${question_id}, functions "
                                      "need '(...)'"};
    }
    const std::size_t parenColumn = tok_.column;
    advance();
    std::vector<NodePtr> args;
    if (tok_.kind != Tok::rparen) {
      while (true) {
        args.push_back(parseOr(depth + 1));
        if (tok_.kind == Tok::comma) {
          advance();
          continue;
        }
        if (tok_.kind == Tok::rparen) {
          break;
        }
        throw SyntaxError{tok_.column, "expected ',' or ')' to close the '(' at column " +
                                           std::to_string(parenColumn) + ", found " +
                                           describe(tok_)};
      }
    }
    advance();
    auto n = std::make_unique<ExprNode>();
    n->kind = ExprNode::Kind::call;
    n->column = t.column;
    n->name = t.text;
    n->children = std::move(args);
    setHeight(*n);
    checkCall(*n);
    return n;
  }

  void checkCall(ExprNode& n) {
    const auto spec = std::find_if(kFunctions.begin(), kFunctions.end(),
                                   [&](const FunctionSpec& f) { return f.name == n.name; });
    if (spec == kFunctions.end()) {
      typeError(n.column, "unknown function '" + n.name + "'");
      n.type = ValueType::null;
      return;
    }
    n.builtin = spec->builtin;
    n.type = spec->result;
    if (spec->rulesOnly && scope_.kind != ExpressionKind::rule) {
      typeError(n.column, "function '" + n.name + "' is only allowed in override and review rules");
      return;
    }
    const std::size_t argc = n.children.size();
    if (argc < spec->minArgs || argc > spec->maxArgs) {
      const std::string wanted =
          spec->minArgs == spec->maxArgs
              ? std::to_string(spec->minArgs)
              : std::to_string(spec->minArgs) + " or " + std::to_string(spec->maxArgs);
      typeError(n.column, "function '" + n.name + "' takes " + wanted + " argument" +
                              (spec->maxArgs == 1 ? "" : "s") + ", got " + std::to_string(argc));
      return;
    }
    for (std::size_t i = 0; i < argc; ++i) {
      const ExprNode& arg = *n.children[i];
      if (!typeFits(arg.type, spec->params[i])) {
        typeError(arg.column, "argument " + std::to_string(i + 1) + " of '" + n.name +
                                  "' must be " + std::string(valueTypeName(spec->params[i])) +
                                  ", got " + std::string(valueTypeName(arg.type)));
        continue;
      }
      if (!spec->literalArgs) {
        continue;
      }
      const auto* text = std::get_if<std::string>(&arg.literal);
      if (arg.kind != ExprNode::Kind::literal || text == nullptr) {
        typeError(arg.column, "argument " + std::to_string(i + 1) + " of '" + n.name +
                                  "' must be written as a text literal");
        continue;
      }
      checkLiteralArg(n, i, *text, arg.column);
    }
  }

  void checkLiteralArg(const ExprNode& call, std::size_t index, const std::string& text,
                       std::size_t column) {
    switch (call.builtin) {
    case Builtin::date:
      if (!parseDate(text)) {
        typeError(column, "'" + text + "' is not a date; write 'YYYY-MM-DD'");
      }
      break;
    case Builtin::present:
    case Builtin::recency:
      if (!scope_.indicators.contains(text)) {
        typeError(column, "unknown indicator '" + text + "'");
      }
      break;
    case Builtin::countIndicators:
      if (index == 0 && std::find(kTiers.begin(), kTiers.end(), text) == kTiers.end()) {
        typeError(column,
                  "unknown tier '" + text + "' (use 'vulnerability', 'concern' or 'serious')");
      }
      if (index == 1 && std::find(kRecencies.begin(), kRecencies.end(), text) == kRecencies.end()) {
        typeError(column, "unknown recency '" + text +
                              "' (use 'current', 'within_6_months' or '6_12_months')");
      }
      break;
    default:
      break;
    }
  }

  Lexer lexer_;
  Token tok_;
  const ExpressionScope& scope_;
  std::set<std::string, std::less<>>& read_;
  std::vector<ExpressionDiagnostic>& diags_;
};

// ---------------------------------------------------------------------------
// Evaluator
// ---------------------------------------------------------------------------

class Evaluator {
public:
  Evaluator(const ExpressionEnvironment& env, std::size_t maxSteps)
      : env_(env), budget_(maxSteps) {}

  ExprValue eval(const ExprNode& n) {
    if (budget_ == 0) {
      return EvaluationError{"the expression took too many steps to evaluate"};
    }
    --budget_;
    switch (n.kind) {
    case ExprNode::Kind::literal:
    case ExprNode::Kind::list:
      return n.literal;
    case ExprNode::Kind::answer:
      return env_.answer(n.name);
    case ExprNode::Kind::current:
      return env_.current();
    case ExprNode::Kind::op:
      return evalOp(n);
    case ExprNode::Kind::call:
      return evalCall(n);
    }
    return EvaluationError{"internal: unknown node"};
  }

private:
  static bool isError(const ExprValue& v) { return std::holds_alternative<EvaluationError>(v); }
  static bool isNull(const ExprValue& v) { return std::holds_alternative<std::monostate>(v); }

  static ExprValue typeMismatch(std::string_view what) {
    return EvaluationError{"values of the wrong type for " + std::string(what)};
  }

  ExprValue evalOp(const ExprNode& n) {
    switch (n.op) {
    case Op::logicalAnd: {
      ExprValue a = eval(*n.children[0]);
      if (isError(a)) {
        return a;
      }
      if (!isTrue(a)) {
        return false;
      }
      ExprValue b = eval(*n.children[1]);
      return isError(b) ? b : ExprValue{isTrue(b)};
    }
    case Op::logicalOr: {
      ExprValue a = eval(*n.children[0]);
      if (isError(a)) {
        return a;
      }
      if (isTrue(a)) {
        return true;
      }
      ExprValue b = eval(*n.children[1]);
      return isError(b) ? b : ExprValue{isTrue(b)};
    }
    case Op::logicalNot: {
      ExprValue a = eval(*n.children[0]);
      return isError(a) ? a : ExprValue{!isTrue(a)};
    }
    case Op::neg: {
      ExprValue a = eval(*n.children[0]);
      if (isError(a) || isNull(a)) {
        return a;
      }
      const auto* i = std::get_if<std::int64_t>(&a);
      if (i == nullptr) {
        return typeMismatch("'-'");
      }
      if (*i == std::numeric_limits<std::int64_t>::min()) {
        return EvaluationError{"number overflow"};
      }
      return -*i;
    }
    default:
      break;
    }
    ExprValue a = eval(*n.children[0]);
    if (isError(a)) {
      return a;
    }
    ExprValue b = eval(*n.children[1]);
    if (isError(b)) {
      return b;
    }
    switch (n.op) {
    case Op::eq:
      return a == b;
    case Op::ne:
      return a != b;
    case Op::lt:
    case Op::le:
    case Op::gt:
    case Op::ge:
      return compareOrdered(n.op, a, b);
    case Op::in: {
      if (isNull(a) || isNull(b)) {
        return false;
      }
      const auto* item = std::get_if<std::string>(&a);
      const auto* list = std::get_if<std::vector<std::string>>(&b);
      if (item == nullptr || list == nullptr) {
        return typeMismatch("'in'");
      }
      return std::find(list->begin(), list->end(), *item) != list->end();
    }
    default:
      return arithmetic(n.op, a, b);
    }
  }

  static ExprValue compareOrdered(Op op, const ExprValue& a, const ExprValue& b) {
    if (isNull(a) || isNull(b)) {
      return std::monostate{};
    }
    int cmp = 0;
    if (const auto* x = std::get_if<std::int64_t>(&a)) {
      const auto* y = std::get_if<std::int64_t>(&b);
      if (y == nullptr) {
        return typeMismatch("a comparison");
      }
      cmp = *x < *y ? -1 : (*x > *y ? 1 : 0);
    } else if (const auto* dx = std::get_if<Date>(&a)) {
      const auto* dy = std::get_if<Date>(&b);
      if (dy == nullptr) {
        return typeMismatch("a comparison");
      }
      cmp = *dx < *dy ? -1 : (*dx > *dy ? 1 : 0);
    } else {
      return typeMismatch("a comparison");
    }
    switch (op) {
    case Op::lt:
      return cmp < 0;
    case Op::le:
      return cmp <= 0;
    case Op::gt:
      return cmp > 0;
    default:
      return cmp >= 0;
    }
  }

  static ExprValue arithmetic(Op op, const ExprValue& a, const ExprValue& b) {
    if (isNull(a) || isNull(b)) {
      return std::monostate{};
    }
    const auto* x = std::get_if<std::int64_t>(&a);
    const auto* y = std::get_if<std::int64_t>(&b);
    if (x == nullptr || y == nullptr) {
      return typeMismatch("arithmetic");
    }
    std::int64_t r = 0;
    switch (op) {
    case Op::add:
      if (__builtin_add_overflow(*x, *y, &r)) {
        return EvaluationError{"number overflow"};
      }
      return r;
    case Op::sub:
      if (__builtin_sub_overflow(*x, *y, &r)) {
        return EvaluationError{"number overflow"};
      }
      return r;
    case Op::mul:
      if (__builtin_mul_overflow(*x, *y, &r)) {
        return EvaluationError{"number overflow"};
      }
      return r;
    case Op::div:
    case Op::mod:
      if (*y == 0) {
        return EvaluationError{"division by zero"};
      }
      if (*x == std::numeric_limits<std::int64_t>::min() && *y == -1) {
        return EvaluationError{"number overflow"};
      }
      return op == Op::div ? *x / *y : *x % *y;
    default:
      return EvaluationError{"internal: unknown operator"};
    }
  }

  static std::string_view literalText(const ExprNode& n, std::size_t i) {
    return std::get<std::string>(n.children[i]->literal);
  }

  ExprValue evalCall(const ExprNode& n) {
    switch (n.builtin) {
    case Builtin::today: {
      const auto t = env_.today();
      return t ? ExprValue{*t} : ExprValue{};
    }
    case Builtin::age: {
      const auto a = env_.childAge();
      return a ? ExprValue{*a} : ExprValue{};
    }
    case Builtin::learningDisability:
      return env_.learningDisability();
    case Builtin::date: {
      const auto d = parseDate(literalText(n, 0));
      return d ? ExprValue{*d} : ExprValue{EvaluationError{"not a date"}};
    }
    case Builtin::present:
      return env_.indicatorPresent(literalText(n, 0));
    case Builtin::recency: {
      std::string r = env_.indicatorRecency(literalText(n, 0));
      return r.empty() ? ExprValue{} : ExprValue{std::move(r)};
    }
    case Builtin::countIndicators:
      return env_.countIndicators(literalText(n, 0),
                                  n.children.size() > 1 ? literalText(n, 1) : std::string_view{});
    default:
      break;
    }
    std::vector<ExprValue> args;
    args.reserve(n.children.size());
    for (const auto& c : n.children) {
      ExprValue v = eval(*c);
      if (isError(v)) {
        return v;
      }
      args.push_back(std::move(v));
    }
    switch (n.builtin) {
    case Builtin::count: {
      if (isNull(args[0])) {
        return std::int64_t{0};
      }
      const auto* list = std::get_if<std::vector<std::string>>(&args[0]);
      if (list == nullptr) {
        return typeMismatch("count()");
      }
      return static_cast<std::int64_t>(list->size());
    }
    case Builtin::selected: {
      if (isNull(args[0]) || isNull(args[1])) {
        return false;
      }
      const auto* list = std::get_if<std::vector<std::string>>(&args[0]);
      const auto* item = std::get_if<std::string>(&args[1]);
      if (list == nullptr || item == nullptr) {
        return typeMismatch("selected()");
      }
      return std::find(list->begin(), list->end(), *item) != list->end();
    }
    case Builtin::daysSince: {
      const auto t = env_.today();
      if (isNull(args[0]) || !t) {
        return std::monostate{};
      }
      const auto* d = std::get_if<Date>(&args[0]);
      if (d == nullptr) {
        return typeMismatch("days_since()");
      }
      return static_cast<std::int64_t>(
          (std::chrono::sys_days{*t} - std::chrono::sys_days{*d}).count());
    }
    default:
      return EvaluationError{"internal: unknown function"};
    }
  }

  const ExpressionEnvironment& env_;
  std::size_t budget_;
};

} // namespace

std::variant<Expression, std::vector<ExpressionDiagnostic>>
Expression::compile(std::string_view source, const ExpressionScope& scope) {
  std::vector<ExpressionDiagnostic> diags;
  if (source.size() > kMaxExpressionLength) {
    diags.push_back({kMaxExpressionLength + 1,
                     "expression too long (" + std::to_string(source.size()) +
                         " bytes; the limit is " + std::to_string(kMaxExpressionLength) + ")"});
    return diags;
  }
  Expression e;
  NodePtr root;
  try {
    Parser parser(source, scope, e.questionsRead_, diags);
    root = parser.parseAll();
  } catch (const SyntaxError& err) {
    // A syntax error makes later type errors noise: report it alone.
    diags.clear();
    diags.push_back({err.column, err.message});
    return diags;
  }
  if (!diags.empty()) {
    return diags;
  }
  e.source_ = std::string(source);
  e.root_ = std::shared_ptr<const detail::ExprNode>(std::move(root));
  return e;
}

ExprValue Expression::evaluate(const ExpressionEnvironment& env, std::size_t maxSteps) const {
  if (!root_) {
    return EvaluationError{"empty expression"};
  }
  Evaluator ev(env, maxSteps);
  return ev.eval(*root_);
}

ValueType Expression::type() const noexcept { return root_ ? root_->type : ValueType::null; }

} // namespace outpost::model
