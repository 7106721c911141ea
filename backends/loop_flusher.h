#pragma once
// LoopFlusher: runs each marked object's flush once per loop turn, after all reads of that turn
// (a uv_check_t). This is where many clients' requests become one upstream write and a client's
// ready replies become one write to its socket (redis: handleClientsWithPendingWrites).
// Marks made before the poll phase (timer callbacks: a command or loader timeout answering its
// clients) are flushed just before the loop polls (a uv_prepare_t), since the poll may block
// with nothing else to wake it.

#include <uv.h>

#include <vector>

namespace readthru::backends {

class Flushable {
 public:
  virtual void flush() = 0;

 protected:
  ~Flushable() = default;

 private:
  friend class LoopFlusher;
  bool marked_ = false;
};

class LoopFlusher {
 public:
  explicit LoopFlusher(uv_loop_t* loop);
  // Adds `f` to this turn's flush list; a no-op when it is already there.
  void mark(Flushable* f) {
    if (f->marked_) return;
    f->marked_ = true;
    marked_.push_back(f);
  }
  // Must be called before `f` is freed if it may still be marked.
  void forget(Flushable* f);
  // Runs the flushes now (the check callback; also usable before blocking work).
  void run();
  void close();

 private:
  uv_check_t check_;
  uv_prepare_t prepare_;
  std::vector<Flushable*> marked_;
  std::vector<Flushable*> running_;
};

}  // namespace readthru::backends
