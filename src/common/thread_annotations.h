// Compiler-checked locking: clang's -Wthread-safety proves that every field marked
// FM_GUARDED_BY(mu_) is touched only with mu_ held (scripts/check-threads runs it; GCC
// ignores the attributes). std::mutex carries no annotations in libstdc++, so guarded state
// uses flowmesh::Mutex and the scoped MutexLock, which also waits on condition variables.
// A wait's predicate reads guarded state with the lock held, which the analysis cannot see
// through a lambda: predicate lambdas say so, `[this]() FM_REQUIRES(mu_) { return done_; }`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#if defined(__clang__)
#define FM_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define FM_THREAD_ANNOTATION(x)
#endif

#define FM_CAPABILITY(x) FM_THREAD_ANNOTATION(capability(x))
#define FM_SCOPED_CAPABILITY FM_THREAD_ANNOTATION(scoped_lockable)
#define FM_GUARDED_BY(x) FM_THREAD_ANNOTATION(guarded_by(x))
#define FM_PT_GUARDED_BY(x) FM_THREAD_ANNOTATION(pt_guarded_by(x))
#define FM_REQUIRES(...) FM_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define FM_ACQUIRE(...) FM_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define FM_RELEASE(...) FM_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define FM_ACQUIRE_SHARED(...) FM_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define FM_RELEASE_SHARED(...) FM_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define FM_RELEASE_GENERIC(...) FM_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define FM_TRY_ACQUIRE(...) FM_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define FM_EXCLUDES(...) FM_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define FM_RETURN_CAPABILITY(x) FM_THREAD_ANNOTATION(lock_returned(x))
#define FM_NO_THREAD_SAFETY_ANALYSIS FM_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace flowmesh {

class FM_CAPABILITY("mutex") Mutex {
 public:
  void lock() FM_ACQUIRE() { mu_.lock(); }
  void unlock() FM_RELEASE() { mu_.unlock(); }
  bool try_lock() FM_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds a Mutex for its scope; Unlock()/Lock() release and retake it early.
class FM_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) FM_ACQUIRE(mu) : lock_(mu.mu_) {}
  ~MutexLock() FM_RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() FM_RELEASE() { lock_.unlock(); }
  void Lock() FM_ACQUIRE() { lock_.lock(); }

  // Releases the mutex while blocked on `cv`; holds it again on return (spurious wake-ups
  // included: callers loop on their condition).
  void Wait(std::condition_variable& cv) { cv.wait(lock_); }
  // As Wait, returning false on time-out.
  template <class Rep, class Period>
  bool WaitFor(std::condition_variable& cv, std::chrono::duration<Rep, Period> d) {
    return cv.wait_for(lock_, d) == std::cv_status::no_timeout;
  }
  template <class Clock, class Duration>
  bool WaitUntil(std::condition_variable& cv, std::chrono::time_point<Clock, Duration> t) {
    return cv.wait_until(lock_, t) == std::cv_status::no_timeout;
  }
  // Predicate forms, as std::condition_variable's: return once `ready()` holds (WaitFor and
  // WaitUntil: false when time ran out first). `ready` runs with the mutex held.
  template <class Pred>
  void Wait(std::condition_variable& cv, Pred ready) FM_NO_THREAD_SAFETY_ANALYSIS {
    cv.wait(lock_, ready);
  }
  template <class Rep, class Period, class Pred>
  bool WaitFor(std::condition_variable& cv, std::chrono::duration<Rep, Period> d,
               Pred ready) FM_NO_THREAD_SAFETY_ANALYSIS {
    return cv.wait_for(lock_, d, ready);
  }
  template <class Clock, class Duration, class Pred>
  bool WaitUntil(std::condition_variable& cv, std::chrono::time_point<Clock, Duration> t,
                 Pred ready) FM_NO_THREAD_SAFETY_ANALYSIS {
    return cv.wait_until(lock_, t, ready);
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

// A readers-writer lock: WriterLock for changes, ReaderLock for lookups.
class FM_CAPABILITY("mutex") SharedMutex {
 public:
  void lock() FM_ACQUIRE() { mu_.lock(); }
  void unlock() FM_RELEASE() { mu_.unlock(); }
  void lock_shared() FM_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() FM_RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

class FM_SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex& mu) FM_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~WriterLock() FM_RELEASE() {
    if (held_) mu_.unlock();
  }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;
  void Unlock() FM_RELEASE() {
    mu_.unlock();
    held_ = false;
  }
  void Lock() FM_ACQUIRE() {
    mu_.lock();
    held_ = true;
  }

 private:
  SharedMutex& mu_;
  bool held_ = true;
};

class FM_SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex& mu) FM_ACQUIRE_SHARED(mu) : mu_(mu) { mu_.lock_shared(); }
  ~ReaderLock() FM_RELEASE_GENERIC() { mu_.unlock_shared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex& mu_;
};

}  // namespace flowmesh
