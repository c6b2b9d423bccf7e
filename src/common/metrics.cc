#include "common/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/status.h"

namespace flowmesh::metrics {

using nlohmann::json;

namespace {

const char* TypeName(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

std::string EscapeHelp(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void Header(const FamilyBase& f, std::string* out) {
  *out += "# HELP " + f.name() + " " + EscapeHelp(f.help()) + "\n";
  *out += "# TYPE " + f.name() + " " + TypeName(f.type()) + "\n";
}

json LabelObject(const std::vector<std::string>& names, const LabelValues& values) {
  json o = json::object();
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) o[names[i]] = values[i];
  return o;
}

// JSON has no infinities: a value that is not finite is rendered as its text form.
json JsonValue(double v) { return std::isfinite(v) ? json(v) : json(Registry::FormatValue(v)); }

}  // namespace

// ---------------------------------------------------------------- Histogram

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // The first bucket whose upper bound is >= v ("le"); past the last bound: +Inf.
  auto it = std::lower_bound(bounds_->begin(), bounds_->end(), v);
  buckets_[static_cast<size_t>(it - bounds_->begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.cumulative.reserve(bounds_->size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // The count is the +Inf bucket, so a scrape is self-consistent even mid-update.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  FM_CHECK(start > 0 && factor > 1 && count > 0);
  std::vector<double> out;
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) out.push_back(b);
  return out;
}

// ---------------------------------------------------------------- families

std::string FamilyBase::LabelText(const LabelValues& values, const std::string& extra) const {
  if (labels_.empty() && extra.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels_.size() && i < values.size(); ++i) {
    if (i > 0) out += ",";
    out += labels_[i] + "=\"" + Registry::EscapeLabelValue(values[i]) + "\"";
  }
  if (!extra.empty()) {
    if (out.size() > 1) out += ",";
    out += extra;
  }
  return out + "}";
}

template <typename T>
T& Family<T>::With(const LabelValues& values) {
  FM_CHECK(values.size() == label_names().size());
  MutexLock lock(mu_);
  auto it = children_.find(values);
  if (it != children_.end()) return *it->second;
  if (children_.size() >= kMaxChildren) {
    LabelValues other(values.size(), "_other");
    auto o = children_.find(other);
    return o != children_.end() ? *o->second : Create(other);
  }
  return Create(values);
}

template <>
Histogram& Family<Histogram>::Create(const LabelValues& values) {
  return *children_.emplace(values, std::make_unique<Histogram>(&bounds_)).first->second;
}

template <typename T>
T& Family<T>::Create(const LabelValues& values) {
  return *children_.emplace(values, std::make_unique<T>()).first->second;
}

template <typename T>
void Family<T>::Render(std::string* out) const {
  Header(*this, out);
  MutexLock lock(mu_);
  for (const auto& [values, child] : children_) {
    *out += name() + LabelText(values) + " " + Registry::FormatValue(child->Value()) + "\n";
  }
}

template <>
void Family<Histogram>::Render(std::string* out) const {
  Header(*this, out);
  MutexLock lock(mu_);
  for (const auto& [values, child] : children_) {
    Histogram::Snapshot s = child->Read();
    for (size_t i = 0; i < s.cumulative.size(); ++i) {
      std::string le = i < bounds_.size() ? Registry::FormatValue(bounds_[i]) : "+Inf";
      *out += name() + "_bucket" + LabelText(values, "le=\"" + le + "\"") + " " +
              std::to_string(s.cumulative[i]) + "\n";
    }
    *out += name() + "_sum" + LabelText(values) + " " + Registry::FormatValue(s.sum) + "\n";
    *out += name() + "_count" + LabelText(values) + " " + std::to_string(s.count) + "\n";
  }
}

template <typename T>
json Family<T>::ToJson() const {
  MutexLock lock(mu_);
  if (label_names().empty()) {
    auto it = children_.find({});
    return it == children_.end() ? json(0) : JsonValue(it->second->Value());
  }
  json arr = json::array();
  for (const auto& [values, child] : children_) {
    json o = LabelObject(label_names(), values);
    o["value"] = JsonValue(child->Value());
    arr.push_back(std::move(o));
  }
  return arr;
}

template <>
json Family<Histogram>::ToJson() const {
  auto one = [this](const Histogram& h) {
    Histogram::Snapshot s = h.Read();
    json buckets = json::object();
    for (size_t i = 0; i < s.cumulative.size(); ++i) {
      buckets[i < bounds_.size() ? Registry::FormatValue(bounds_[i]) : "+Inf"] = s.cumulative[i];
    }
    return json{{"count", s.count}, {"sum", JsonValue(s.sum)}, {"buckets", std::move(buckets)}};
  };
  MutexLock lock(mu_);
  if (label_names().empty()) {
    auto it = children_.find({});
    return it == children_.end() ? json{{"count", 0}, {"sum", 0}} : one(*it->second);
  }
  json arr = json::array();
  for (const auto& [values, child] : children_) {
    json o = LabelObject(label_names(), values);
    o["value"] = one(*child);
    arr.push_back(std::move(o));
  }
  return arr;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// A family rendered from a callback's samples.
struct Registry::Collector final : FamilyBase {
  Collector(std::string name, std::string help, Type type, CollectFn fn)
      : FamilyBase(std::move(name), std::move(help), type, {}), collect(std::move(fn)) {}

  static std::string Labels(const Sample& s) {
    if (s.labels.empty()) return "";
    std::string out = "{";
    for (size_t i = 0; i < s.labels.size(); ++i) {
      if (i > 0) out += ",";
      out += s.labels[i].first + "=\"" + EscapeLabelValue(s.labels[i].second) + "\"";
    }
    return out + "}";
  }
  void Render(std::string* out) const override {
    Header(*this, out);
    for (const Sample& s : collect()) *out += name() + Labels(s) + " " + FormatValue(s.value) + "\n";
  }
  json ToJson() const override {
    std::vector<Sample> samples = collect();
    if (samples.size() == 1 && samples[0].labels.empty()) return JsonValue(samples[0].value);
    json arr = json::array();
    for (const Sample& s : samples) {
      json o = json::object();
      for (const auto& [k, v] : s.labels) o[k] = v;
      o["value"] = JsonValue(s.value);
      arr.push_back(std::move(o));
    }
    return arr;
  }

  CollectFn collect;
};

// ---------------------------------------------------------------- Registry

bool Registry::ValidName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool Registry::ValidLabelName(const std::string& name) {
  return ValidName(name) && name.find(':') == std::string::npos && name.rfind("__", 0) != 0 &&
         name != "le";
}

std::string Registry::EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Registry::FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

template <typename F>
F& Registry::Add(const std::string& name, std::unique_ptr<F> family) {
  FM_CHECK(ValidName(name));
  for (const auto& l : family->label_names()) FM_CHECK(ValidLabelName(l));
  MutexLock lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    auto* existing = dynamic_cast<F*>(it->second.get());
    FM_CHECK(existing != nullptr && existing->type() == family->type() &&
             existing->label_names() == family->label_names());
    return *existing;
  }
  F& ref = *family;
  families_.emplace(name, std::move(family));
  return ref;
}

Family<Counter>& Registry::AddCounter(const std::string& name, const std::string& help,
                                      std::vector<std::string> labels) {
  return Add(name, std::make_unique<Family<Counter>>(name, help, Type::kCounter, std::move(labels)));
}

Family<Gauge>& Registry::AddGauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> labels) {
  return Add(name, std::make_unique<Family<Gauge>>(name, help, Type::kGauge, std::move(labels)));
}

Family<Histogram>& Registry::AddHistogram(const std::string& name, const std::string& help,
                                          std::vector<double> bounds,
                                          std::vector<std::string> labels) {
  FM_CHECK(std::is_sorted(bounds.begin(), bounds.end()));
  FM_CHECK(std::adjacent_find(bounds.begin(), bounds.end()) == bounds.end());
  return Add(name, std::make_unique<Family<Histogram>>(name, help, Type::kHistogram,
                                                       std::move(labels), std::move(bounds)));
}

void Registry::AddCollector(const std::string& name, const std::string& help, Type type,
                            CollectFn collect) {
  FM_CHECK(type != Type::kHistogram && collect);
  Add(name, std::make_unique<Collector>(name, help, type, std::move(collect)));
}

void Registry::Remove(const std::string& name) {
  MutexLock lock(mu_);
  families_.erase(name);
}

bool Registry::Has(const std::string& name) const {
  MutexLock lock(mu_);
  return families_.count(name) > 0;
}

std::vector<std::shared_ptr<const FamilyBase>> Registry::Families() const {
  MutexLock lock(mu_);
  std::vector<std::shared_ptr<const FamilyBase>> out;
  out.reserve(families_.size());
  for (const auto& [name, f] : families_) out.push_back(f);
  return out;
}

std::string Registry::RenderText() const {
  // Rendered outside the registry's lock: collectors may take locks of their own.
  std::string out;
  for (const auto& f : Families()) f->Render(&out);
  return out;
}

json Registry::ToJson() const {
  json out = json::object();
  for (const auto& f : Families()) out[f->name()] = f->ToJson();
  return out;
}

}  // namespace flowmesh::metrics
