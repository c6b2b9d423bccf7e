// Splits text into chunks of at most `max_tokens` tokens that overlap by `overlap` tokens,
// cutting only at token boundaries. The tokenizer is the caller's (the embedding model's,
// so a chunk never exceeds what the model embeds): it gives the byte offset where each
// token starts. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace flowmesh::vector {

struct Chunk {
  std::string text;
  size_t begin = 0;   // byte offsets into the source text
  size_t end = 0;
  size_t tokens = 0;
};

// `token_starts`: increasing byte offsets into `text`, the first usually 0. InvalidArgument
// when max_tokens is 0, overlap >= max_tokens, or the offsets are not increasing within
// the text. Empty text gives no chunk.
Result<std::vector<Chunk>> ChunkByTokens(std::string_view text,
                                         const std::vector<size_t>& token_starts,
                                         size_t max_tokens, size_t overlap);

// Byte offsets in `text` where each token starts, from the tokens' bytes (`pieces`, e.g.
// inference::Engine::TokenPieces) aligned against the text: a piece matches the text where
// it is (or without the leading space SentencePiece tokenizers add); a piece the text does
// not hold (normalised by the tokenizer) is looked for a few bytes on. Offsets that are not
// increasing, or inside a UTF-8 character (byte-fallback tokens), are dropped, so that their
// token is counted with the one before it: a cut never splits a character. Pure.
std::vector<size_t> TokenStarts(std::string_view text, const std::vector<std::string>& pieces);

// Byte offsets of whitespace-separated words: a tokenizer for tests and for sources with
// no model yet.
std::vector<size_t> WordStarts(std::string_view text);

}  // namespace flowmesh::vector
