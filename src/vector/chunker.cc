#include "vector/chunker.h"

#include <cctype>

namespace flowmesh::vector {

Result<std::vector<Chunk>> ChunkByTokens(std::string_view text,
                                         const std::vector<size_t>& token_starts,
                                         size_t max_tokens, size_t overlap) {
  if (max_tokens == 0) return InvalidArgument("chunk size must be at least 1 token");
  if (overlap >= max_tokens) {
    return InvalidArgument("chunk overlap (" + std::to_string(overlap) +
                           ") must be smaller than the chunk size (" + std::to_string(max_tokens) +
                           ")");
  }
  for (size_t i = 0; i < token_starts.size(); ++i) {
    if (token_starts[i] >= text.size() || (i > 0 && token_starts[i] <= token_starts[i - 1])) {
      return InvalidArgument("token offsets must increase within the text (token " +
                             std::to_string(i) + ")");
    }
  }
  std::vector<Chunk> chunks;
  const size_t n = token_starts.size();
  if (n == 0) return chunks;
  const size_t step = max_tokens - overlap;
  for (size_t first = 0; first < n; first += step) {
    size_t last = std::min(n, first + max_tokens);  // one past the chunk's last token
    Chunk c;
    c.begin = first == 0 ? 0 : token_starts[first];
    c.end = last == n ? text.size() : token_starts[last];
    c.text = std::string(text.substr(c.begin, c.end - c.begin));
    c.tokens = last - first;
    chunks.push_back(std::move(c));
    if (last == n) break;
  }
  return chunks;
}

std::vector<size_t> TokenStarts(std::string_view text, const std::vector<std::string>& pieces) {
  constexpr size_t kLookAhead = 16;
  std::vector<size_t> starts;
  size_t pos = 0;
  auto keep = [&](size_t at) {
    bool continuation = at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80;
    if (at >= text.size() || continuation) return;
    if (!starts.empty() && at <= starts.back()) return;
    starts.push_back(at);
  };
  for (const std::string& piece : pieces) {
    if (pos >= text.size()) break;
    std::string_view p = piece;
    if (p.empty()) continue;
    if (text.compare(pos, p.size(), p) == 0) {
      keep(pos);
      pos += p.size();
      continue;
    }
    std::string_view bare = p.front() == ' ' ? p.substr(1) : p;
    if (!bare.empty() && text.compare(pos, bare.size(), bare) == 0) {
      keep(pos);
      pos += bare.size();
      continue;
    }
    size_t found = bare.empty() ? std::string_view::npos
                                : text.substr(0, std::min(text.size(), pos + bare.size() + kLookAhead))
                                      .find(bare, pos);
    if (found != std::string_view::npos) {
      keep(found);
      pos = found + bare.size();
    } else {
      keep(pos);
      pos = std::min(text.size(), pos + std::max<size_t>(1, bare.size()));
    }
  }
  if (!starts.empty()) starts.front() = 0;  // a first token's leading bytes are its own
  return starts;
}

std::vector<size_t> WordStarts(std::string_view text) {
  std::vector<size_t> starts;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    bool space = std::isspace(static_cast<unsigned char>(text[i])) != 0;
    if (!space && !in_word) starts.push_back(i);
    in_word = !space;
  }
  return starts;
}

}  // namespace flowmesh::vector
