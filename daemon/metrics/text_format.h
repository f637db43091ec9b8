#pragma once
// Pieces of the Prometheus text exposition format (version 0.0.4).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/metrics/counter.h"
#include "daemon/metrics/gauge.h"
#include "daemon/metrics/histogram.h"

namespace mnemo::daemon::metrics {

// Label values escape backslash, double quote and newline.
std::string escape_label_value(std::string_view v);
// HELP text escapes backslash and newline.
std::string escape_help(std::string_view v);
// Shortest text that reads back as v; "+Inf", "-Inf", "NaN".
std::string format_value(double v);

// name/value pairs in the order the family declared them.
struct Labels {
  const std::vector<std::string>& names;
  const std::vector<std::string>& values;
};

// "{a="x",b="y"}" or "" without labels; `extra` appends one more pair
// (a histogram's le) when not empty.
std::string label_text(const Labels& labels, std::string_view extra_name = {}, std::string_view extra_value = {});

// One metric's sample lines.
void write_samples(std::string& out, const std::string& name, const Labels& labels, const Counter& c);
void write_samples(std::string& out, const std::string& name, const Labels& labels, const Gauge& g);
void write_samples(std::string& out, const std::string& name, const Labels& labels, const Histogram& h);

// Metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
// [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__".
bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);

}  // namespace mnemo::daemon::metrics
