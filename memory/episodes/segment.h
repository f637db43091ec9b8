#pragma once
// A conversation cut into windows: EpiCache's unit of clustering. A window
// holds W consecutive units, a unit being an utterance, or one sentence of an
// utterance longer than a threshold (so no window is dominated by one essay).
// Windows remember which utterances they cover, so evidence turns and cache
// rebuilds can be mapped back to the conversation.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo::memory::episodes {

struct Utterance {
  std::string speaker;
  std::string text;
};

// A window of the conversation, or a question to embed (text and/or tokens;
// the utterance range is empty then).
struct Segment {
  size_t first_utterance = 0;  // covers utterances [first_utterance, end_utterance)
  size_t end_utterance = 0;
  std::string text;              // `Speaker said, "text"` lines (text conversations)
  std::vector<int32_t> tokens;   // token ids (token conversations)

  static Segment of_text(std::string text) { return Segment{0, 0, std::move(text), {}}; }
  static Segment of_tokens(std::vector<int32_t> tokens) { return Segment{0, 0, {}, std::move(tokens)}; }
};

struct SegmenterOptions {
  size_t window = 4;                  // units per window
  size_t long_message_chars = 1000;   // an utterance longer than this is split into sentences; 0: never
};

// Sentences of `text`: split after '.', '!' or '?' (runs of them, plus closing
// quotes or brackets) followed by whitespace, and at line breaks; trimmed,
// empty pieces dropped.
std::vector<std::string> split_sentences(std::string_view text);

// The unit's line inside a window's text.
std::string utterance_line(std::string_view speaker, std::string_view text);

// A unit of a window: one utterance's line, or one sentence's.
struct Unit {
  size_t utterance;  // index in the conversation
  std::string line;  // utterance_line(speaker, text or sentence)
};

// The units of `utterances`, the first being utterance number `first_index`.
std::vector<Unit> units_of(std::span<const Utterance> utterances, const SegmenterOptions& options,
                           size_t first_index = 0);
// One window of consecutive units (non-empty).
Segment window_of(std::span<const Unit> units);

// Windows of options.window units in order; the last may be shorter. An
// utterance split into sentences may span two windows (both cover it).
std::vector<Segment> segment_windows(std::span<const Utterance> utterances, const SegmenterOptions& options = {});

// Token conversations (no text): windows of `window` utterances, tokens
// concatenated in order.
std::vector<Segment> segment_token_windows(std::span<const std::vector<int32_t>> utterances, size_t window = 4);

// The time-ordered-chunks baseline: window i of n goes to chunk floor(i * E / n),
// E contiguous chunks of (almost) equal size; E is capped at n.
std::vector<int32_t> time_chunk_assignment(size_t windows, size_t episodes);

}  // namespace mnemo::memory::episodes
