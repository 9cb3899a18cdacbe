#include "parallel.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace facegan {
namespace {

class Pool {
 public:
  explicit Pool(int threads) { Start(threads); }
  ~Pool() { Stop(); }

  int Threads() const { return int(workers_.size()) + 1; }

  void Resize(int threads) {
    Stop();
    Start(threads);
  }

  // Runs job(t) for t in [0, Threads()): t = 0 on the caller.
  void Run(const std::function<void(int)>& job) {
    std::lock_guard<std::mutex> caller(run_mutex_);  // one job at a time, whichever thread asks
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &job;
      pending_ = int(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    job(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void Start(int threads) {
    stop_ = false;
    for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { Work(t); });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  void Work(int t) {
    // Node runs on its main thread; a worker only ever runs jobs it is handed.
    unsigned long seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      (*job)(t);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_, run_mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int pending_ = 0;
  unsigned long generation_ = 0;
  bool stop_ = false;
};

// FACEGAN_NATIVE_THREADS if set, else the cores this process may run on
// (its affinity mask, which containers narrow, not the machine's core count).
int DefaultThreads() {
  if (const char* env = std::getenv("FACEGAN_NATIVE_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return std::min(n, 64);
  }
  cpu_set_t set;
  int cores = 0;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cores = CPU_COUNT(&set);
  if (cores <= 0) cores = int(std::thread::hardware_concurrency());
  return std::clamp(cores, 1, 16);
}

Pool& ThePool() {
  static Pool* pool = [] {
    openblas_set_num_threads(1);
    return new Pool(DefaultThreads());  // never destroyed: workers must outlive static teardown order
  }();
  return *pool;
}

}  // namespace

int ThreadCount() { return ThePool().Threads(); }

void SetThreadCount(int threads) {
  openblas_set_num_threads(1);
  ThePool().Resize(std::clamp(threads, 1, 64));
}

void ParallelFor(size_t n, size_t grain, const std::function<void(size_t, size_t, int)>& fn) {
  Pool& pool = ThePool();
  const size_t threads = std::min<size_t>(size_t(pool.Threads()), grain == 0 ? n : n / grain);
  if (threads <= 1) {
    if (n > 0) fn(0, n, 0);
    return;
  }
  pool.Run([&](int t) {
    if (size_t(t) >= threads) return;
    const size_t begin = n * t / threads, end = n * (t + 1) / threads;
    if (begin < end) fn(begin, end, t);
  });
}

}  // namespace facegan
