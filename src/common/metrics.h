// A metrics registry: counters, gauges and histograms with labels, rendered in the
// Prometheus text exposition format 0.0.4 (and as JSON for /api/v1/system/metrics).
//
// Families are registered once (normally at start-up); each distinct set of label values
// is a child created on first use, whose address stays valid for the registry's life, so a
// hot path may look a child up once and keep the pointer. Updates are lock-free atomics;
// looking a child up by its label values takes the family's mutex. Values that live
// elsewhere (a snapshot of the fleet) are rendered by collectors: callbacks run at render
// time. Everything is thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/thread_annotations.h"

namespace flowmesh::metrics {

enum class Type { kCounter, kGauge, kHistogram };

// Label values of one child, in the order of its family's label names.
using LabelValues = std::vector<std::string>;

class Counter {
 public:
  // `v` must be >= 0 (a counter only goes up); negative values are ignored.
  void Inc(double v = 1) {
    if (v > 0) value_.fetch_add(v, std::memory_order_relaxed);
  }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Dec(double v = 1) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds`: the upper bounds of the buckets, ascending (+Inf is implicit).
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Read() const;
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  const std::vector<double>* bounds_;  // owned by the family
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket (not cumulative), +Inf last
  std::atomic<double> sum_{0};
};

// Buckets from `start`, each `factor` times the previous, `count` of them.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// One sample a collector reports: label name/value pairs and the value.
struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, Type type, std::vector<std::string> labels)
      : name_(std::move(name)), help_(std::move(help)), type_(type), labels_(std::move(labels)) {}
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  Type type() const { return type_; }
  const std::vector<std::string>& label_names() const { return labels_; }
  virtual void Render(std::string* out) const = 0;
  virtual nlohmann::json ToJson() const = 0;

 protected:
  // `{a="x",b="y"}` (empty when there are no labels), plus `extra` (e.g. le="0.5").
  std::string LabelText(const LabelValues& values, const std::string& extra = "") const;

 private:
  std::string name_, help_;
  Type type_;
  std::vector<std::string> labels_;
};

// The children of one metric, by label values. At most kMaxChildren distinct sets of label
// values are kept; later ones share a child whose every label value is "_other", so a label
// fed from user input cannot grow the registry without bound.
template <typename T>
class Family final : public FamilyBase {
 public:
  static constexpr size_t kMaxChildren = 2000;

  Family(std::string name, std::string help, Type type, std::vector<std::string> labels,
         std::vector<double> bounds = {})
      : FamilyBase(std::move(name), std::move(help), type, std::move(labels)),
        bounds_(std::move(bounds)) {}

  // The child for these label values (as many as the family has label names).
  T& With(const LabelValues& values);
  // The child of a family without labels.
  T& Get() { return With({}); }

  void Render(std::string* out) const override;
  nlohmann::json ToJson() const override;

 private:
  T& Create(const LabelValues& values) FM_REQUIRES(mu_);

  const std::vector<double> bounds_;  // histograms only
  mutable Mutex mu_;
  std::map<LabelValues, std::unique_ptr<T>> children_ FM_GUARDED_BY(mu_);
};

class Registry {
 public:
  using CollectFn = std::function<std::vector<Sample>()>;

  // Registering a name twice returns the first family; a different type or label set for
  // the same name is a programmer error (CHECK). Names must match [a-zA-Z_:][a-zA-Z0-9_:]*.
  Family<Counter>& AddCounter(const std::string& name, const std::string& help,
                              std::vector<std::string> labels = {});
  Family<Gauge>& AddGauge(const std::string& name, const std::string& help,
                          std::vector<std::string> labels = {});
  Family<Histogram>& AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds, std::vector<std::string> labels = {});
  // A family whose samples `collect` computes at each render (counter or gauge). Called
  // without the registry's lock held, from the rendering thread: it must be thread-safe.
  void AddCollector(const std::string& name, const std::string& help, Type type,
                    CollectFn collect);

  // Forgets a family (one whose collector reads something that is going away).
  void Remove(const std::string& name);
  bool Has(const std::string& name) const;
  // Every family, sorted by name, in the Prometheus text format 0.0.4.
  std::string RenderText() const;
  // {name: value} for a family without labels, {name: [{labels..., value}]} otherwise;
  // a histogram's value is {count, sum, buckets: {le: cumulative count}}.
  nlohmann::json ToJson() const;

  static bool ValidName(const std::string& name);
  static bool ValidLabelName(const std::string& name);
  // Escapes a label value (\\, \", \n) for the text format.
  static std::string EscapeLabelValue(const std::string& v);
  // A sample value as the text format writes it (+Inf, -Inf, NaN, shortest decimal).
  static std::string FormatValue(double v);

 private:
  struct Collector;
  template <typename F>
  F& Add(const std::string& name, std::unique_ptr<F> family);
  std::vector<std::shared_ptr<const FamilyBase>> Families() const;

  mutable Mutex mu_;
  std::map<std::string, std::shared_ptr<FamilyBase>> families_ FM_GUARDED_BY(mu_);
};

}  // namespace flowmesh::metrics
