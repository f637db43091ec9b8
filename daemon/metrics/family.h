#pragma once
// One metric name with fixed label names, and one child metric per set of
// label values. A child is created on first use under the family's lock
// and never moves, so callers look it up once and keep the reference; the
// hot path is then the child's atomics only.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/metrics/text_format.h"

namespace mnemo::daemon::metrics {

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, std::string type, std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), type_(std::move(type)), label_names_(std::move(label_names)) {}
  virtual ~FamilyBase() = default;

  const std::string& name() const { return name_; }
  const std::string& type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // # HELP, # TYPE, then every child's samples.
  void render(std::string& out) const {
    out += "# HELP " + name_ + ' ' + escape_help(help_) + '\n';
    out += "# TYPE " + name_ + ' ' + type_ + '\n';
    render_children(out);
  }

 protected:
  virtual void render_children(std::string& out) const = 0;

  std::string name_, help_, type_;
  std::vector<std::string> label_names_;
};

template <class T>
class Family final : public FamilyBase {
 public:
  Family(std::string name, std::string help, std::string type, std::vector<std::string> label_names,
         std::function<std::unique_ptr<T>()> make)
      : FamilyBase(std::move(name), std::move(help), std::move(type), std::move(label_names)), make_(std::move(make)) {}

  // values: one per label name, in the same order. Throws
  // std::invalid_argument on a count mismatch.
  T& labels(const std::vector<std::string>& values) {
    if (values.size() != label_names_.size())
      throw std::invalid_argument("metric " + name_ + " takes " + std::to_string(label_names_.size()) +
                                  " label values, got " + std::to_string(values.size()));
    std::lock_guard lock(mu_);
    auto& slot = children_[values];
    if (!slot) slot = make_();
    return *slot;
  }

 private:
  void render_children(std::string& out) const override {
    std::lock_guard lock(mu_);
    for (const auto& [values, child] : children_) write_samples(out, name_, Labels{label_names_, values}, *child);
  }

  std::function<std::unique_ptr<T>()> make_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;  // sorted: a stable scrape order
};

}  // namespace mnemo::daemon::metrics
