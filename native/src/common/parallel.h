// A small persistent thread pool for the CPU kernels.
// Kernels either split a range dynamically (parallel_for) or run as a team of
// threads that meet at barriers (run_team) when they must take turns on shared outputs.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>

namespace calib {

// Threads the CPU path uses when a call does not say (CALIB_THREADS or hardware concurrency).
int default_threads();
void set_default_threads(int threads);

// Runs fn(tid) for tid in [0, n) on n threads (the caller is tid 0) and waits for all.
// Calls from different threads are serialized.
void run_team(int n, const std::function<void(int tid)>& fn);

// Splits [0, count) into chunks of `grain` handed out dynamically to `threads` threads.
void parallel_for(int threads, int64_t count, int64_t grain,
                  const std::function<void(int64_t begin, int64_t end, int tid)>& fn);

// Sense-reversing spin barrier for a team of n threads (steps are short, so spinning
// with a yield is cheaper than a condition variable).
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait();

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<int> sense_{0};
};

}  // namespace calib
