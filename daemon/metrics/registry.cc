#include "daemon/metrics/registry.h"

#include <stdexcept>
#include <vector>

namespace mnemo::daemon::metrics {

template <class T>
Family<T>& Registry::add(const std::string& name, const std::string& help, const char* type,
                         std::vector<std::string> label_names, std::function<std::unique_ptr<T>()> make) {
  if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name '" + name + "'");
  for (const std::string& l : label_names) {
    if (!valid_label_name(l)) throw std::invalid_argument("metric " + name + ": invalid label name '" + l + "'");
    if (l == "le" && std::string(type) == "histogram")
      throw std::invalid_argument("metric " + name + ": label 'le' is reserved for histogram buckets");
  }
  for (size_t i = 0; i < label_names.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (label_names[i] == label_names[j])
        throw std::invalid_argument("metric " + name + ": label '" + label_names[i] + "' twice");

  auto family = std::make_unique<Family<T>>(name, help, type, std::move(label_names), std::move(make));
  Family<T>& ref = *family;
  std::lock_guard lock(mu_);
  // Every sample name must be new, a histogram's _bucket/_sum/_count
  // included, or the scrape would be ambiguous.
  const auto sample_names = [](const std::string& n, bool histogram) {
    return histogram ? std::vector<std::string>{n, n + "_bucket", n + "_sum", n + "_count"} : std::vector<std::string>{n};
  };
  const bool is_histogram = std::string(type) == "histogram";
  for (const auto& f : families_)
    for (const std::string& mine : sample_names(name, is_histogram))
      for (const std::string& theirs : sample_names(f->name(), f->type() == "histogram"))
        if (mine == theirs) throw std::invalid_argument("metric " + name + " clashes with " + f->name());
  families_.push_back(std::move(family));
  return ref;
}

Counter& Registry::counter(const std::string& name, const std::string& help) {
  return counter_family(name, help, {}).labels({});
}

Family<Counter>& Registry::counter_family(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names) {
  return add<Counter>(name, help, "counter", std::move(label_names), [] { return std::make_unique<Counter>(); });
}

Gauge& Registry::gauge(const std::string& name, const std::string& help) {
  return gauge_family(name, help, {}).labels({});
}

Family<Gauge>& Registry::gauge_family(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names) {
  return add<Gauge>(name, help, "gauge", std::move(label_names), [] { return std::make_unique<Gauge>(); });
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> bounds) {
  return histogram_family(name, help, {}, std::move(bounds)).labels({});
}

Family<Histogram>& Registry::histogram_family(const std::string& name, const std::string& help,
                                              std::vector<std::string> label_names, std::vector<double> bounds) {
  Histogram probe(bounds);  // throws now, not at the first labels() call
  (void)probe;
  return add<Histogram>(name, help, "histogram", std::move(label_names),
                        [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); });
}

std::string Registry::render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& f : families_) f->render(out);
  return out;
}

}  // namespace mnemo::daemon::metrics
