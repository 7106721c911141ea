#include "proxy/busy_poll.h"

#include <poll.h>
#include <sched.h>

namespace readthru {

namespace {

ActiveClients g_active_clients;
uint64_t g_hits = 0;

// Whether the loop has an event ready. poll() on the epoll descriptor reports readiness without
// taking the events, which uv_run then collects.
bool eventReady(int backend_fd) {
  pollfd p{backend_fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

}  // namespace

ActiveClients& activeClients() { return g_active_clients; }

uint64_t busyPollHits() { return g_hits; }

void runEventLoop(uv_loop_t* loop, const uint64_t* busy_poll_us) {
  const int backend_fd = uv_backend_fd(loop);
  for (;;) {
    if (uv_run(loop, UV_RUN_ONCE) == 0) return;
    // *busy_poll_us is read anew after every event: a reload may have changed it.
    uint64_t last_event = uv_hrtime();
    while (*busy_poll_us != 0 && g_active_clients.few(uv_now(loop))) {
      if (eventReady(backend_fd)) {
        ++g_hits;
        if (uv_run(loop, UV_RUN_NOWAIT) == 0) return;
        last_event = uv_hrtime();
      } else if (uv_hrtime() - last_event >= *busy_poll_us * 1000) {
        break;
      } else {
        sched_yield();
      }
    }
  }
}

}  // namespace readthru
