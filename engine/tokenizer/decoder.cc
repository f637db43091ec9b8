#include "engine/tokenizer/decoder.h"

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/utf8.h"

namespace mnemo::engine {

namespace jf = json_fields;

Decoder Decoder::from_json(const nlohmann::json& j, const std::string& where) {
  Decoder d;
  if (!j.is_null()) {
    d.none_ = false;
    d.add(j, where);
  }
  return d;
}

void Decoder::add(const nlohmann::json& j, const std::string& where) {
  const std::string type = jf::type_of(j, where);
  if (type == "Sequence") {
    const auto& list = jf::array_of(j, "decoders", where);
    for (size_t i = 0; i < list.size(); ++i) add(list[i], where + ".decoders[" + std::to_string(i) + "]");
  } else if (type == "ByteLevel") {
    steps_.push_back(ByteLevel{});
  } else if (type == "ByteFallback") {
    steps_.push_back(ByteFallback{});
  } else if (type == "Fuse") {
    steps_.push_back(Fuse{});
  } else if (type == "Replace") {
    const auto p = jf::pattern(j, "pattern", where);
    if (p.regex || p.text.empty()) throw TokenizerError(where + ".pattern: only a non-empty String pattern is supported");
    steps_.push_back(Replace{p.text, jf::string_or(j, "content", where)});
  } else if (type == "Strip") {
    const std::string content = jf::string_or(j, "content", where, " ");
    const auto start = jf::int_or(j, "start", where, 0), stop = jf::int_or(j, "stop", where, 0);
    if (start < 0 || stop < 0) throw TokenizerError(where + ": start and stop must not be negative");
    size_t len = 0;
    if (content.empty() || (utf8::decode(content, 0, len), len != content.size()))
      throw TokenizerError(where + ".content: must be one character");
    steps_.push_back(Strip{content, static_cast<size_t>(start), static_cast<size_t>(stop)});
  } else if (type == "Metaspace") {
    const std::string scheme = jf::string_or(j, "prepend_scheme", where, jf::bool_or(j, "add_prefix_space", where, true) ? "always" : "never");
    steps_.push_back(Metaspace{jf::string_or(j, "replacement", where, "\xE2\x96\x81"), scheme != "never"});
  } else {
    throw TokenizerError(where + ".type: unsupported decoder '" + type + "'");
  }
}

bool Decoder::window_safe() const {
  for (const auto& step : steps_) {
    // A stripped tail is only known at the very end, so windows cannot restart.
    if (const auto* s = std::get_if<Strip>(&step); s && (s->start > 1 || s->stop > 0)) return false;
  }
  return true;
}

namespace {

std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  size_t i = 0;
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, i)) {
    out.append(s, i, at - i);
    out += to;
    i = at + from.size();
  }
  out.append(s, i);
  return out;
}

int byte_token(const std::string& t) {
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

bool valid_utf8(const std::string& s) { return utf8::lossy(s) == s; }

}  // namespace

std::string Decoder::decode(std::vector<std::string> tokens) const {
  if (none_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return out;
  }
  for (const auto& step : steps_) {
    std::vector<std::string> next;
    if (std::holds_alternative<ByteLevel>(step)) {
      std::string bytes;
      for (const auto& t : tokens) byte_level::decode_token(t, bytes);
      next.push_back(utf8::lossy(bytes));
    } else if (std::holds_alternative<Fuse>(step)) {
      std::string all;
      for (const auto& t : tokens) all += t;
      next.push_back(std::move(all));
    } else if (std::holds_alternative<ByteFallback>(step)) {
      std::string pending;
      auto flush = [&] {
        if (pending.empty()) return;
        if (valid_utf8(pending)) next.push_back(pending);
        else for (size_t i = 0; i < pending.size(); ++i) next.push_back("\xEF\xBF\xBD");
        pending.clear();
      };
      for (auto& t : tokens) {
        const int b = byte_token(t);
        if (b >= 0) {
          pending.push_back(static_cast<char>(b));
        } else {
          flush();
          next.push_back(std::move(t));
        }
      }
      flush();
    } else if (const auto* r = std::get_if<Replace>(&step)) {
      for (const auto& t : tokens) next.push_back(replace_all(t, r->from, r->to));
    } else if (const auto* s = std::get_if<Strip>(&step)) {
      for (const auto& t : tokens) {
        size_t b = 0, e = t.size();
        for (size_t k = 0; k < s->start && t.compare(b, s->content.size(), s->content) == 0 && b < e; ++k) b += s->content.size();
        for (size_t k = 0; k < s->stop && e >= b + s->content.size() && t.compare(e - s->content.size(), s->content.size(), s->content) == 0; ++k)
          e -= s->content.size();
        next.push_back(t.substr(b, e - b));
      }
    } else if (const auto* m = std::get_if<Metaspace>(&step)) {
      for (size_t i = 0; i < tokens.size(); ++i) {
        // HF drops every replacement character of the first token, not
        // just a leading one.
        const bool drop = i == 0 && m->strip_first_space;
        next.push_back(replace_all(tokens[i], m->replacement, drop ? "" : " "));
      }
    }
    tokens = std::move(next);
  }
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

}  // namespace mnemo::engine
