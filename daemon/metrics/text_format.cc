#include "daemon/metrics/text_format.h"

#include <charconv>
#include <cmath>

namespace mnemo::daemon::metrics {

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, ec == std::errc() ? end : buf);
}

std::string label_text(const Labels& labels, std::string_view extra_name, std::string_view extra_value) {
  if (labels.names.empty() && extra_name.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.names.size(); ++i) {
    if (i) out += ',';
    out += labels.names[i];
    out += "=\"";
    out += escape_label_value(labels.values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!labels.names.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    out += escape_label_value(extra_value);
    out += '"';
  }
  out += '}';
  return out;
}

void write_samples(std::string& out, const std::string& name, const Labels& labels, const Counter& c) {
  out += name + label_text(labels) + ' ' + std::to_string(c.value()) + '\n';
}

void write_samples(std::string& out, const std::string& name, const Labels& labels, const Gauge& g) {
  out += name + label_text(labels) + ' ' + format_value(g.value()) + '\n';
}

void write_samples(std::string& out, const std::string& name, const Labels& labels, const Histogram& h) {
  const Histogram::Snapshot s = h.snapshot();
  for (size_t i = 0; i < s.cumulative.size(); ++i) {
    const std::string le = i < s.bounds.size() ? format_value(s.bounds[i]) : "+Inf";
    out += name + "_bucket" + label_text(labels, "le", le) + ' ' + std::to_string(s.cumulative[i]) + '\n';
  }
  out += name + "_sum" + label_text(labels) + ' ' + format_value(s.sum) + '\n';
  out += name + "_count" + label_text(labels) + ' ' + std::to_string(s.count) + '\n';
}

namespace {
bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool digit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

bool valid_metric_name(std::string_view name) {
  if (name.empty() || !(alpha(name[0]) || name[0] == ':')) return false;
  for (char c : name)
    if (!(alpha(c) || digit(c) || c == ':')) return false;
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || !alpha(name[0]) || name.starts_with("__")) return false;
  for (char c : name)
    if (!(alpha(c) || digit(c))) return false;
  return true;
}

}  // namespace mnemo::daemon::metrics
