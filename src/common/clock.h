// Time sources. Wall time (seconds since the epoch, as a double) is what records and
// the API carry; monotonic time measures intervals.
#pragma once

#include <chrono>
#include <cstdint>

namespace flowmesh {

inline double WallSeconds() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count() / 1e6;
}

inline int64_t MonoMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace flowmesh
