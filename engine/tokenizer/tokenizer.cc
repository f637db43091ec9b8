#include "engine/tokenizer/tokenizer.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/tokenizer/added_vocab.h"
#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/decoder.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/normalizer.h"
#include "engine/tokenizer/post_processor.h"
#include "engine/tokenizer/pre_tokenizer.h"

namespace mnemo::engine {

namespace jf = json_fields;

struct Tokenizer::Impl {
  AddedVocab added;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::optional<BpeModel> model;
  PostProcessor post;
  Decoder decoder;
  int32_t vocab_size = 0;
  // The decoder's per-token steps, for token_bytes(): the steps that act
  // on the whole text (Fuse, Strip) and Metaspace's first-token rule do
  // not apply to a token in the middle of a text.
  struct RawStep {
    enum Kind { ByteLevel, ByteFallback, Replace } kind;
    std::string from, to;
  };
  std::vector<RawStep> raw_steps;

  std::string decode(std::span<const int32_t> ids, bool skip_special) const;
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens, bool match_special_text,
                              std::string_view shadow) const;
};

namespace {

// The decoder was validated by Decoder::from_json; this only collects the
// steps that map one token to bytes.
std::vector<Tokenizer::Impl::RawStep> raw_steps_of(const nlohmann::json& j) {
  using Step = Tokenizer::Impl::RawStep;
  std::vector<Step> steps;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) return steps;
  const std::string type = j["type"].get<std::string>();
  if (type == "Sequence" && j.contains("decoders") && j["decoders"].is_array()) {
    for (const auto& d : j["decoders"])
      for (auto& s : raw_steps_of(d)) steps.push_back(std::move(s));
  } else if (type == "ByteLevel") {
    steps.push_back({Step::ByteLevel, {}, {}});
  } else if (type == "ByteFallback") {
    steps.push_back({Step::ByteFallback, {}, {}});
  } else if (type == "Replace") {
    const auto p = json_fields::pattern(j, "pattern", "decoder");
    steps.push_back({Step::Replace, p.text, json_fields::string_or(j, "content", "decoder")});
  } else if (type == "Metaspace") {
    steps.push_back({Step::Replace, json_fields::string_or(j, "replacement", "decoder", "\xE2\x96\x81"), " "});
  }
  return steps;
}

// <0xXX> -> XX, or -1.
int fallback_byte(const std::string& t) {
  if (t.size() != 6 || !t.starts_with("<0x") || t[5] != '>') return -1;
  int v = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = t[k];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

}  // namespace

Tokenizer Tokenizer::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw TokenizerError(path.string() + ": cannot open");
  std::string text(static_cast<size_t>(in.tellg()), '\0');
  in.seekg(0);
  if (!in.read(text.data(), static_cast<std::streamsize>(text.size()))) throw TokenizerError(path.string() + ": read failed");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw TokenizerError(path.string() + ": not valid JSON: " + e.what());
  }
  return from_json(j, path.string());
}

Tokenizer Tokenizer::from_json(const nlohmann::json& j, std::string_view source) {
  const std::string src(source);
  if (!j.is_object()) throw TokenizerError(src + ": top level must be an object");
  auto impl = std::make_shared<Impl>();
  try {
    if (!j.contains("model")) throw TokenizerError(src + ": model: missing");
    const auto& model = j["model"];
    const std::string where = src + ": model";
    const std::string type = model.is_object() && model.contains("type") ? jf::string_or(model, "type", where) : "BPE";
    if (type != "BPE") throw TokenizerError(where + ".type: unsupported model type '" + type + "' (only BPE)");
    impl->model.emplace(model, where);
    auto field = [&](const char* key) -> const nlohmann::json& {
      static const nlohmann::json null;
      return j.contains(key) ? j[key] : null;
    };
    impl->added = AddedVocab(field("added_tokens"), src + ": added_tokens");
    impl->normalizer = Normalizer::from_json(field("normalizer"), src + ": normalizer");
    impl->pre_tokenizer = PreTokenizer::from_json(field("pre_tokenizer"), src + ": pre_tokenizer");
    impl->post = PostProcessor::from_json(field("post_processor"), src + ": post_processor");
    impl->decoder = Decoder::from_json(field("decoder"), src + ": decoder");
    impl->raw_steps = raw_steps_of(field("decoder"));
  } catch (const nlohmann::json::exception& e) {
    throw TokenizerError(src + ": malformed field: " + e.what());
  }
  std::vector<std::string> forms;
  for (const auto& t : impl->added.tokens()) forms.push_back(t.normalized ? impl->normalizer.apply(t.content) : t.content);
  impl->added.set_normalized_forms(forms);
  int32_t max_id = impl->model->max_id();
  for (const auto& t : impl->added.tokens()) max_id = std::max(max_id, t.id);
  impl->vocab_size = max_id + 1;
  // The engine indexes embeddings with these ids; HF would pass them through.
  for (const auto* list : {&impl->post.prefix, &impl->post.suffix}) {
    for (int32_t id : *list) {
      if (id < 0 || id >= impl->vocab_size)
        throw TokenizerError(src + ": post_processor: special token id " + std::to_string(id) + " is outside the vocabulary");
    }
  }
  return Tokenizer(std::move(impl));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens, bool match_special_text) const {
  return impl_->encode(text, add_special_tokens, match_special_text, {});
}

std::vector<int32_t> Tokenizer::encode_with_shadow(std::string_view text, std::string_view shadow) const {
  if (shadow.size() != text.size())
    throw TokenizerError("encode_with_shadow: the shadow text has " + std::to_string(shadow.size()) +
                         " bytes, the text " + std::to_string(text.size()));
  // An empty text would read as "no shadow" below; it has no tokens anyway.
  if (text.empty()) return {};
  return impl_->encode(text, false, true, shadow);
}

std::vector<int32_t> Tokenizer::Impl::encode(std::string_view text, bool add_special_tokens, bool match_special_text,
                                             std::string_view shadow) const {
  const Impl& m = *this;
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = m.post.prefix;
  ids.reserve(text.size() / 3 + 8);
  std::vector<PreToken> words;
  for (const auto& raw : m.added.split(text, false, match_special_text, shadow)) {
    if (raw.id) {
      ids.push_back(*raw.id);
      continue;
    }
    const std::string normalized = m.normalizer.apply(std::string(raw.text));
    const bool at_start = raw.text.data() == text.data();
    // Offsets move under normalization, so the shadow cannot follow: with
    // one, special tokens of the normalized set are not matched at all.
    const bool special_here = match_special_text && shadow.empty();
    for (const auto& seg : m.added.split(normalized, true, special_here)) {
      if (seg.id) {
        ids.push_back(*seg.id);
        continue;
      }
      words.clear();
      words.push_back({std::string(seg.text), at_start && seg.text.data() == normalized.data()});
      m.pre_tokenizer.apply(words);
      for (const auto& w : words) m.model->encode_word(w.text, ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), m.post.suffix.begin(), m.post.suffix.end());
  return ids;
}

std::string Tokenizer::Impl::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* t = added.by_id(id)) {
      if (!(skip_special && t->special)) tokens.push_back(t->content);
    } else if (const std::string* s = model->id_to_token(id)) {
      tokens.push_back(*s);
    }
  }
  return decoder.decode(std::move(tokens));
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  return impl_->decode(ids, skip_special_tokens);
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_id(std::string_view token) const {
  if (const AddedToken* t = impl_->added.by_content(token)) return t->id;
  return impl_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* t = impl_->added.by_id(id)) return t->content;
  const std::string* s = impl_->model->id_to_token(id);
  return s ? *s : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* t = impl_->added.by_id(id);
  return t && t->special;
}

bool Tokenizer::is_added(int32_t id) const { return impl_->added.by_id(id) != nullptr; }

std::string Tokenizer::token_bytes(int32_t id) const {
  if (const AddedToken* t = impl_->added.by_id(id)) return t->content;
  const std::string* s = impl_->model->id_to_token(id);
  if (!s) return {};
  std::string out = *s;
  for (const auto& step : impl_->raw_steps) {
    if (step.kind == Impl::RawStep::ByteLevel) {
      std::string bytes;
      byte_level::decode_token(out, bytes);
      out = std::move(bytes);
    } else if (step.kind == Impl::RawStep::ByteFallback) {
      if (const int b = fallback_byte(out); b >= 0) out = std::string(1, static_cast<char>(b));
    } else {
      std::string next;
      size_t i = 0;
      for (size_t at = out.find(step.from); at != std::string::npos; at = out.find(step.from, i)) {
        next.append(out, i, at - i);
        next += step.to;
        i = at + step.from.size();
      }
      next.append(out, i);
      out = std::move(next);
    }
  }
  return out;
}

Tokenizer::StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : impl_(tokenizer.impl_), skip_special_(skip_special_tokens) {}

namespace {

bool ends_in_replacement(const std::string& s) { return s.ends_with("\xEF\xBF\xBD"); }

}  // namespace

// Decoding the window from `prefix_` keeps decoder context (a leading space
// that Strip/Metaspace removes only at the start, a byte sequence spread
// over tokens) identical to a full decode, so the deltas concatenate to it.
std::string Tokenizer::StreamDecoder::push(int32_t id) {
  ids_.push_back(id);
  const std::span<const int32_t> all(ids_);
  const std::string before = impl_->decode(all.subspan(prefix_, read_ - prefix_), skip_special_);
  const std::string now = impl_->decode(all.subspan(prefix_), skip_special_);
  if (now.size() <= before.size() || ends_in_replacement(now) || now.compare(0, before.size(), before) != 0) return {};
  if (impl_->decoder.window_safe()) prefix_ = read_;
  read_ = ids_.size();
  return now.substr(before.size());
}

std::string Tokenizer::StreamDecoder::flush() {
  const std::span<const int32_t> all(ids_);
  const std::string before = impl_->decode(all.subspan(prefix_, read_ - prefix_), skip_special_);
  const std::string now = impl_->decode(all.subspan(prefix_), skip_special_);
  read_ = ids_.size();
  if (impl_->decoder.window_safe()) prefix_ = read_;
  if (now.size() <= before.size() || now.compare(0, before.size(), before) != 0) return {};
  return now.substr(before.size());
}

}  // namespace mnemo::engine
