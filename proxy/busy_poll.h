#pragma once
// runEventLoop: the daemon's event loop, with optional busy polling (config key busy_poll, in
// microseconds, as Linux's net.core.busy_poll).
//
// A loop that blocks in epoll_wait whenever it has nothing to do pays a scheduler wake-up for
// every event that ends the wait: a client's request, and again Redis's reply to it. With one
// client doing a request at a time that is most of what a proxy adds to the round trip (on a VM
// an idle core halts, and waking it is an interprocessor interrupt through the hypervisor). With
// busy_poll > 0, after an event the loop keeps polling for the next one for up to that long
// before it blocks, yielding the core (sched_yield) between polls to any thread ready to run on
// it. The spin is CPU time spent to save latency, so the loop spins only
//   - within busy_poll of its last event: an idle daemon blocks and uses no CPU;
//   - while few clients are active (ActiveClients): with many, the next event is never far, and a
//     loop that blocks finds several clients' requests ready at once and sends them to Redis in
//     one write, a batch that spinning would break into one write per request.
//
// Contract: returns when the loop has no active handles left, as uv_run(UV_RUN_DEFAULT) does.
// `*busy_poll_us` is read after every event (loop thread), so a reload changes it at once. While
// the loop spins, timers and prepare/check callbacks wait for the next event or the end of the
// spin: at most busy_poll late.

#include <uv.h>

#include <cstddef>
#include <cstdint>

namespace readthru {

// The largest busy_poll the config accepts: a wake-up costs tens of microseconds, not more.
inline constexpr uint64_t kMaxBusyPollUs = 1000;

// How many clients were active lately, counted per 10 ms window. few() holds while no more than
// kMaxClients were active in the current window and in the one before it (a client counts once
// per window however much it sends).
class ActiveClients {
 public:
  static constexpr size_t kMaxClients = 2;
  static constexpr uint64_t kWindowMs = 10;

  // A client sent something at `now_ms`; `mark` is that client's own, 0 at first.
  void note(uint64_t now_ms, uint64_t* mark) {
    roll(now_ms);
    if (*mark != window_ + 1) {
      *mark = window_ + 1;
      ++active_;
    }
  }
  bool few(uint64_t now_ms) {
    roll(now_ms);
    return active_ <= kMaxClients && active_before_ <= kMaxClients;
  }

 private:
  void roll(uint64_t now_ms) {
    uint64_t w = now_ms / kWindowMs;
    if (w == window_) return;
    active_before_ = w == window_ + 1 ? active_ : 0;
    active_ = 0;
    window_ = w;
  }

  uint64_t window_ = 0;
  size_t active_ = 0;
  size_t active_before_ = 0;
};

// The loop thread's count of active clients, which runEventLoop reads.
ActiveClients& activeClients();

// Events the loop found by polling, each a sleep and a wake-up it did not pay (INFO's
// busy_poll_hits).
uint64_t busyPollHits();

void runEventLoop(uv_loop_t* loop, const uint64_t* busy_poll_us);

}  // namespace readthru
