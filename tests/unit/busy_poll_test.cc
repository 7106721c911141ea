#include "proxy/busy_poll.h"

#include <uv.h>

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include <doctest/doctest.h>

namespace readthru {
namespace {

TEST_CASE("busy poll: few clients means at most two in this 10 ms window and the one before") {
  ActiveClients a;
  uint64_t c1 = 0, c2 = 0, c3 = 0;
  CHECK(a.few(1000));
  for (int i = 0; i < 100; ++i) a.note(1000, &c1);  // one client counts once per window
  a.note(1001, &c2);
  CHECK(a.few(1009));
  a.note(1009, &c3);
  CHECK_FALSE(a.few(1009));
  CHECK_FALSE(a.few(1010));  // the window before had three
  a.note(1015, &c1);
  CHECK_FALSE(a.few(1019));
  CHECK(a.few(1020));  // 1010-1019 had one
  CHECK(a.few(5000));  // a gap forgets everything
  a.note(5000, &c1);
  a.note(5001, &c2);
  a.note(5002, &c3);
  CHECK_FALSE(a.few(5003));
  CHECK(a.few(5020));  // two windows later
}

uint64_t threadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

struct AsyncFeed {
  uv_async_t async;
  std::atomic<int> sent{0};
  int seen = 0;
};

TEST_CASE("busy poll: events from another thread are all handled, and some found by polling") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  AsyncFeed feed;
  uv_async_init(&loop, &feed.async, [](uv_async_t* h) {
    auto* f = static_cast<AsyncFeed*>(h->data);
    f->seen = f->sent.load();
    if (f->seen == 200) uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
  });
  feed.async.data = &feed;
  // Gaps far under the 1 ms spin: after the first wake-up the loop should find the rest while
  // polling. One hit of 200 is all this asks, however busy the host.
  std::thread sender([&feed] {
    for (int i = 1; i <= 200; ++i) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      feed.sent.store(i);
      uv_async_send(&feed.async);
    }
  });
  const uint64_t hits_before = busyPollHits();
  const uint64_t busy_poll_us = 1000;
  runEventLoop(&loop, &busy_poll_us);  // returns once the async handle is closed
  sender.join();
  CHECK(feed.seen == 200);
  CHECK(busyPollHits() > hits_before);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("busy poll: a loop with nothing to do sleeps, and its timers fire") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  int fired = 0;
  timer.data = &fired;
  // A first event at 1 ms starts a spin; the next is 300 ms later: the loop must block between.
  uv_timer_start(
      &timer,
      [](uv_timer_t* t) {
        int* n = static_cast<int*>(t->data);
        if (++*n == 2) uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
      },
      1, 300);
  const uint64_t cpu_before = threadCpuNs();
  const uint64_t busy_poll_us = 1000;
  runEventLoop(&loop, &busy_poll_us);
  const uint64_t cpu_ns = threadCpuNs() - cpu_before;
  CHECK(fired == 2);
  // A loop that spun through the 300 ms would have used about 300 ms of CPU.
  CHECK(cpu_ns < 100'000'000);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("busy poll: 0 runs the loop as uv_run does") {
  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  uv_timer_t timer;
  uv_timer_init(&loop, &timer);
  bool fired = false;
  timer.data = &fired;
  uv_timer_start(
      &timer,
      [](uv_timer_t* t) {
        *static_cast<bool*>(t->data) = true;
        uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
      },
      5, 0);
  const uint64_t hits_before = busyPollHits();
  const uint64_t busy_poll_us = 0;
  runEventLoop(&loop, &busy_poll_us);
  CHECK(fired);
  CHECK(busyPollHits() == hits_before);
  CHECK(uv_loop_close(&loop) == 0);
}

}  // namespace
}  // namespace readthru
