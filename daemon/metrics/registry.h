#pragma once
// Every metric mnemod exports, rendered for GET /metrics. Registration
// returns a reference that stays valid for the Registry's life; updates go
// straight to that metric's atomics and never touch the Registry.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/metrics/counter.h"
#include "daemon/metrics/family.h"
#include "daemon/metrics/gauge.h"
#include "daemon/metrics/histogram.h"

namespace mnemo::daemon::metrics {

// The Content-Type of render()'s output.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

class Registry {
 public:
  // All of these throw std::invalid_argument for an invalid or already
  // registered name, an invalid label name ("le" is reserved for
  // histograms), or invalid histogram bounds.
  Counter& counter(const std::string& name, const std::string& help);
  Family<Counter>& counter_family(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names);
  Gauge& gauge(const std::string& name, const std::string& help);
  Family<Gauge>& gauge_family(const std::string& name, const std::string& help, std::vector<std::string> label_names);
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> bounds);
  Family<Histogram>& histogram_family(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names, std::vector<double> bounds);

  // The text exposition format, families in registration order.
  std::string render() const;

 private:
  template <class T>
  Family<T>& add(const std::string& name, const std::string& help, const char* type,
                 std::vector<std::string> label_names, std::function<std::unique_ptr<T>()> make);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_;
};

}  // namespace mnemo::daemon::metrics
