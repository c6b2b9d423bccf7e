// When a retryable failure is tried again: exponential backoff from a base delay, doubling
// per attempt made, capped, with jitter (a uniform factor in [0.5, 1]) so that tasks failed
// together do not come back together. Owns its random source; loop-owned.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>

namespace flowmesh::scheduler {

class RetryPolicy {
 public:
  RetryPolicy(double base_s, double max_s, uint64_t seed = std::random_device{}())
      : base_s_(base_s), max_s_(max_s), rng_(seed) {}

  // Whether a failed attempt is tried again.
  static bool ShouldRetry(bool retryable, int attempts, int max_attempts) {
    return retryable && attempts < max_attempts;
  }
  // The delay before the next attempt, after `attempts` attempts (>= 1) have been made.
  double Delay(int attempts) { return Delay(attempts, jitter_(rng_)); }
  // The same with the jitter factor given (for tests).
  double Delay(int attempts, double jitter) const {
    double base = base_s_ * std::pow(2.0, std::max(0, attempts - 1));
    return std::min(max_s_, base) * jitter;
  }

 private:
  double base_s_;
  double max_s_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> jitter_{0.5, 1.0};
};

}  // namespace flowmesh::scheduler
