// A small fork-join pool: the calling thread plus one worker per extra core.
// OpenBLAS runs single-threaded inside it, so that BLAS threads spinning
// after each call never compete with this pool's own element-wise work.
#pragma once

#include <cstddef>
#include <functional>

namespace facegan {

// Threads that ParallelFor uses (the caller included).
int ThreadCount();
// Sets the pool size (1 = everything on the calling thread); keeps OpenBLAS at one thread.
void SetThreadCount(int threads);

// Calls fn(begin, end, thread) on disjoint slices covering [0, n), one per
// thread, and returns when all are done. Below `grain` items per thread it
// runs inline on the calling thread.
void ParallelFor(size_t n, size_t grain, const std::function<void(size_t, size_t, int)>& fn);

}  // namespace facegan
