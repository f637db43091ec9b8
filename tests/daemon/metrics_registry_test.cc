#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/metrics/registry.h"
#include "daemon/metrics/text_format.h"

namespace mnemo::daemon::metrics {
namespace {

// A scrape parsed back: "name{labels}" -> value, plus each name's HELP and TYPE.
struct Scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> help, type;
  std::vector<std::string> order;  // sample keys as they appeared
};

double parse_number(const std::string& s) {
  if (s == "+Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  if (s == "NaN") return NAN;
  size_t used = 0;
  const double v = std::stod(s, &used);
  EXPECT_EQ(used, s.size()) << s;
  return v;
}

Scrape parse(const std::string& text) {
  Scrape out;
  EXPECT_TRUE(text.empty() || text.back() == '\n');
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("# HELP ")) {
      const size_t sp = line.find(' ', 7);
      out.help[line.substr(7, sp - 7)] = line.substr(sp + 1);
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      const size_t sp = line.find(' ', 7);
      out.type[line.substr(7, sp - 7)] = line.substr(sp + 1);
      continue;
    }
    EXPECT_FALSE(line.starts_with("#")) << line;
    // The key ends at the last space outside a quoted label value.
    bool quoted = false;
    size_t split = std::string::npos;
    for (size_t i = 0; i < line.size(); ++i) {
      if (quoted && line[i] == '\\') {
        ++i;
        continue;
      }
      if (line[i] == '"') quoted = !quoted;
      if (!quoted && line[i] == ' ') split = i;
    }
    EXPECT_NE(split, std::string::npos) << line;
    const std::string key = line.substr(0, split);
    out.samples[key] = parse_number(line.substr(split + 1));
    out.order.push_back(key);
  }
  return out;
}

TEST(MetricsRegistry, CounterAndGaugeValues) {
  Registry r;
  Counter& requests = r.counter("mnemo_requests_total", "Requests served.");
  Gauge& sessions = r.gauge("mnemo_sessions_active", "Sessions in memory.");
  requests.inc();
  requests.inc(41);
  sessions.set(5);
  sessions.inc();
  sessions.dec(2.5);
  const Scrape s = parse(r.render());
  EXPECT_EQ(s.samples.at("mnemo_requests_total"), 42);
  EXPECT_EQ(s.samples.at("mnemo_sessions_active"), 3.5);
  EXPECT_EQ(s.type.at("mnemo_requests_total"), "counter");
  EXPECT_EQ(s.type.at("mnemo_sessions_active"), "gauge");
  EXPECT_EQ(s.help.at("mnemo_requests_total"), "Requests served.");
}

TEST(MetricsRegistry, GaugeCallbackIsReadAtScrapeTime) {
  Registry r;
  double blocks = 7;
  Gauge& g = r.gauge_family("mnemo_kv_blocks", "KV blocks by state.", {"state"}).labels({"used"});
  g.set(1);
  g.set_callback([&] { return blocks; });
  EXPECT_EQ(parse(r.render()).samples.at("mnemo_kv_blocks{state=\"used\"}"), 7);
  blocks = 9;
  EXPECT_EQ(parse(r.render()).samples.at("mnemo_kv_blocks{state=\"used\"}"), 9);
  g.set_callback({});
  EXPECT_EQ(parse(r.render()).samples.at("mnemo_kv_blocks{state=\"used\"}"), 1);
}

TEST(MetricsRegistry, LabelledChildrenAreStableAndSeparate) {
  Registry r;
  auto& f = r.counter_family("mnemo_http_requests_total", "HTTP requests.", {"route", "code"});
  Counter& ok = f.labels({"/v1/models", "200"});
  Counter& missing = f.labels({"/v1/models", "404"});
  ok.inc(3);
  missing.inc();
  EXPECT_EQ(&f.labels({"/v1/models", "200"}), &ok);
  const Scrape s = parse(r.render());
  EXPECT_EQ(s.samples.at("mnemo_http_requests_total{route=\"/v1/models\",code=\"200\"}"), 3);
  EXPECT_EQ(s.samples.at("mnemo_http_requests_total{route=\"/v1/models\",code=\"404\"}"), 1);
  EXPECT_THROW(f.labels({"/v1/models"}), std::invalid_argument);
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInf) {
  Registry r;
  Histogram& h = r.histogram("mnemo_ttft_seconds", "Time to first token.", {0.01, 0.1, 1});
  for (double v : {0.005, 0.01, 0.05, 0.5, 0.7, 3.0}) h.observe(v);
  h.observe(NAN);  // ignored
  const Scrape s = parse(r.render());
  EXPECT_EQ(s.type.at("mnemo_ttft_seconds"), "histogram");
  EXPECT_EQ(s.samples.at("mnemo_ttft_seconds_bucket{le=\"0.01\"}"), 2);  // le is inclusive
  EXPECT_EQ(s.samples.at("mnemo_ttft_seconds_bucket{le=\"0.1\"}"), 3);
  EXPECT_EQ(s.samples.at("mnemo_ttft_seconds_bucket{le=\"1\"}"), 5);
  EXPECT_EQ(s.samples.at("mnemo_ttft_seconds_bucket{le=\"+Inf\"}"), 6);
  EXPECT_EQ(s.samples.at("mnemo_ttft_seconds_count"), 6);
  EXPECT_NEAR(s.samples.at("mnemo_ttft_seconds_sum"), 4.265, 1e-12);
  // Buckets in increasing le order, then _sum and _count.
  std::vector<std::string> expected = {"mnemo_ttft_seconds_bucket{le=\"0.01\"}", "mnemo_ttft_seconds_bucket{le=\"0.1\"}",
                                       "mnemo_ttft_seconds_bucket{le=\"1\"}", "mnemo_ttft_seconds_bucket{le=\"+Inf\"}",
                                       "mnemo_ttft_seconds_sum", "mnemo_ttft_seconds_count"};
  EXPECT_EQ(s.order, expected);
}

TEST(MetricsRegistry, LabelledHistogramPutsLeLast) {
  Registry r;
  auto& f = r.histogram_family("mnemo_latency_seconds", "Latency.", {"op"}, latency_buckets());
  f.labels({"append"}).observe(0.002);
  const Scrape s = parse(r.render());
  EXPECT_EQ(s.samples.at("mnemo_latency_seconds_bucket{op=\"append\",le=\"0.001\"}"), 0);
  EXPECT_EQ(s.samples.at("mnemo_latency_seconds_bucket{op=\"append\",le=\"0.0025\"}"), 1);
  EXPECT_EQ(s.samples.at("mnemo_latency_seconds_bucket{op=\"append\",le=\"+Inf\"}"), 1);
  EXPECT_EQ(s.samples.at("mnemo_latency_seconds_count{op=\"append\"}"), 1);
}

TEST(MetricsRegistry, LabelValuesAndHelpAreEscaped) {
  Registry r;
  r.counter_family("mnemo_odd_total", "Help with \\ and\nnewline.", {"v"}).labels({"a\"b\\c\nd"}).inc();
  const std::string text = r.render();
  EXPECT_NE(text.find("# HELP mnemo_odd_total Help with \\\\ and\\nnewline.\n"), std::string::npos) << text;
  EXPECT_NE(text.find("mnemo_odd_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << text;
  EXPECT_EQ(escape_label_value("plain"), "plain");
}

TEST(MetricsRegistry, ValueFormatting) {
  EXPECT_EQ(format_value(3), "3");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(INFINITY), "+Inf");
  EXPECT_EQ(format_value(-INFINITY), "-Inf");
  EXPECT_EQ(format_value(NAN), "NaN");
  EXPECT_EQ(parse_number(format_value(0.1 + 0.2)), 0.1 + 0.2);
}

TEST(MetricsRegistry, RejectsBadNamesAndDuplicates) {
  Registry r;
  r.counter("mnemo_x_total", "x");
  EXPECT_THROW(r.counter("mnemo_x_total", "again"), std::invalid_argument);
  EXPECT_THROW(r.gauge("mnemo_x_total", "as a gauge"), std::invalid_argument);
  EXPECT_THROW(r.counter("9lives", "x"), std::invalid_argument);
  EXPECT_THROW(r.counter("has-dash", "x"), std::invalid_argument);
  EXPECT_THROW(r.counter_family("mnemo_y", "x", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(r.counter_family("mnemo_y", "x", {"a", "a"}), std::invalid_argument);
  EXPECT_THROW(r.histogram_family("mnemo_h", "x", {"le"}, {1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("mnemo_h", "x", {1, 1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("mnemo_h", "x", {2, 1}), std::invalid_argument);
  EXPECT_THROW(r.histogram("mnemo_h", "x", {1, INFINITY}), std::invalid_argument);
  EXPECT_NO_THROW(r.histogram("mnemo_h", "x", {1, 2}));
  EXPECT_THROW(r.counter("mnemo_h_count", "a histogram's sample name"), std::invalid_argument);
  r.counter("mnemo_c_sum", "x");
  EXPECT_THROW(r.histogram("mnemo_c", "x", {1}), std::invalid_argument);
  EXPECT_NO_THROW(r.counter("ns:sub_total", "colons are allowed"));
}

TEST(MetricsRegistry, ExponentialBuckets) {
  EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_THROW(exponential_buckets(0, 2, 4), std::invalid_argument);
  EXPECT_THROW(exponential_buckets(1, 1, 4), std::invalid_argument);
  EXPECT_THROW(exponential_buckets(1, 2, 0), std::invalid_argument);
}

TEST(MetricsRegistry, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  Counter& c = r.counter("mnemo_tokens_total", "Tokens.");
  Histogram& h = r.histogram("mnemo_itl_seconds", "Inter-token latency.", {0.5});
  Gauge& g = r.gauge("mnemo_inflight", "In flight.");
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        c.inc();
        h.observe(t % 2 ? 1.0 : 0.25);
        g.inc();
        g.dec();
        if (i % 5000 == 0) (void)r.render();  // scrapes race with updates
      }
    });
  for (auto& t : threads) t.join();
  const Scrape s = parse(r.render());
  EXPECT_EQ(s.samples.at("mnemo_tokens_total"), kThreads * kEach);
  EXPECT_EQ(s.samples.at("mnemo_itl_seconds_count"), kThreads * kEach);
  EXPECT_EQ(s.samples.at("mnemo_itl_seconds_bucket{le=\"0.5\"}"), kThreads / 2 * kEach);
  EXPECT_EQ(s.samples.at("mnemo_itl_seconds_sum"), kThreads / 2 * kEach * 1.25);
  EXPECT_EQ(s.samples.at("mnemo_inflight"), 0);
}

}  // namespace
}  // namespace mnemo::daemon::metrics
