#include "backends/loop_flusher.h"

#include <algorithm>

namespace readthru::backends {

LoopFlusher::LoopFlusher(uv_loop_t* loop) {
  uv_check_init(loop, &check_);
  check_.data = this;
  uv_check_start(&check_, [](uv_check_t* h) { static_cast<LoopFlusher*>(h->data)->run(); });
  uv_prepare_init(loop, &prepare_);
  prepare_.data = this;
  uv_prepare_start(&prepare_, [](uv_prepare_t* h) { static_cast<LoopFlusher*>(h->data)->run(); });
  // These handles alone must not keep the loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(&check_));
  uv_unref(reinterpret_cast<uv_handle_t*>(&prepare_));
}

void LoopFlusher::forget(Flushable* f) {
  if (!f->marked_) return;
  f->marked_ = false;
  std::replace(marked_.begin(), marked_.end(), f, static_cast<Flushable*>(nullptr));
  std::replace(running_.begin(), running_.end(), f, static_cast<Flushable*>(nullptr));
}

void LoopFlusher::run() {
  // A flush may mark other objects (an upstream write error completes client slots): keep going
  // until nothing is marked.
  while (!marked_.empty()) {
    running_.swap(marked_);
    for (size_t i = 0; i < running_.size(); ++i) {
      Flushable* f = running_[i];
      if (f == nullptr) continue;
      f->marked_ = false;
      f->flush();
    }
    running_.clear();
  }
}

void LoopFlusher::close() {
  uv_check_stop(&check_);
  uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
  uv_prepare_stop(&prepare_);
  uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
}

}  // namespace readthru::backends
