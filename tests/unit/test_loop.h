#pragma once
// A real uv loop for unit tests of code that runs on one (SQLite backends, the cache registry):
// runUntil() turns it until a condition holds, and the destructor checks that every handle was
// closed.

#include <uv.h>

#include <chrono>
#include <functional>

#include <doctest/doctest.h>

namespace readthru::test {

class Loop {
 public:
  using Clock = std::chrono::steady_clock;

  Loop() {
    REQUIRE(uv_loop_init(&loop_) == 0);
    uv_timer_init(&loop_, &tick_);
  }
  ~Loop() {
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);  // every handle was closed
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* get() { return &loop_; }

  // Runs the loop until `done` holds; false when `limit` passes first. A ticking timer keeps a
  // turn from blocking forever when nothing arrives.
  bool runUntil(const std::function<bool()>& done,
                Clock::duration limit = std::chrono::seconds(20)) {
    auto deadline = Clock::now() + limit;
    uv_timer_start(
        &tick_, [](uv_timer_t*) {}, 5, 5);
    bool ok = true;
    while (!done()) {
      if (Clock::now() >= deadline) {
        ok = false;
        break;
      }
      uv_run(&loop_, UV_RUN_ONCE);
    }
    uv_timer_stop(&tick_);
    return ok;
  }

 private:
  uv_loop_t loop_;
  uv_timer_t tick_;
};

}  // namespace readthru::test
