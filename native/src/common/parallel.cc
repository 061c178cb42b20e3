#include "parallel.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace calib {
namespace {

int hardware_threads() {
  if (const char* env = std::getenv("CALIB_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return std::min(n, 256);
  }
  unsigned h = std::thread::hardware_concurrency();
  return h == 0 ? 1 : static_cast<int>(std::min(h, 256u));
}

std::atomic<int> g_default{0};

// Workers sleep on a condition variable between jobs; a job is published by bumping
// `generation`. The pool grows on demand and lives until the process exits.
class Pool {
 public:
  static Pool& get() {
    static Pool* pool = new Pool();  // never destroyed: workers may outlive static destructors
    return *pool;
  }

  void run(int n, const std::function<void(int)>& fn) {
    std::lock_guard<std::mutex> serial(call_mutex_);
    if (n <= 1) {
      fn(0);
      return;
    }
    grow(n - 1);
    {
      std::lock_guard<std::mutex> lk(m_);
      job_ = &fn;
      active_ = n - 1;
      pending_ = n - 1;
      ++generation_;
    }
    cv_.notify_all();
    fn(0);
    std::unique_lock<std::mutex> lk(m_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void grow(int workers) {
    while (static_cast<int>(threads_.size()) < workers) {
      int id = static_cast<int>(threads_.size()) + 1;
      uint64_t start;
      {
        std::lock_guard<std::mutex> lk(m_);
        start = generation_;  // read here: the thread may start after the next job is posted
      }
      threads_.emplace_back([this, id, start] { loop(id, start); });
      threads_.back().detach();
    }
  }

  void loop(int id, uint64_t seen) {
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
        if (id > active_) continue;  // this job needs fewer workers
        job = job_;
      }
      (*job)(id);
      std::lock_guard<std::mutex> lk(m_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  std::mutex call_mutex_;
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> threads_;
  const std::function<void(int)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int active_ = 0, pending_ = 0;
};

}  // namespace

int default_threads() {
  int n = g_default.load();
  return n > 0 ? n : hardware_threads();
}

void set_default_threads(int threads) { g_default.store(threads > 0 ? std::min(threads, 256) : 0); }

void run_team(int n, const std::function<void(int)>& fn) { Pool::get().run(std::max(1, n), fn); }

void parallel_for(int threads, int64_t count, int64_t grain,
                  const std::function<void(int64_t, int64_t, int)>& fn) {
  if (count <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t chunks = (count + grain - 1) / grain;
  int n = static_cast<int>(std::min<int64_t>(std::max(1, threads), chunks));
  std::atomic<int64_t> next{0};
  run_team(n, [&](int tid) {
    for (;;) {
      int64_t k = next.fetch_add(1);
      if (k >= chunks) break;
      int64_t b = k * grain;
      fn(b, std::min(count, b + grain), tid);
    }
  });
}

void Barrier::wait() {
  const int my_sense = 1 - sense_.load(std::memory_order_relaxed);
  if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    count_.store(0, std::memory_order_relaxed);
    sense_.store(my_sense, std::memory_order_release);
    return;
  }
  int spins = 0;
  while (sense_.load(std::memory_order_acquire) != my_sense) {
    if (++spins > 64) std::this_thread::yield();
  }
}

}  // namespace calib
