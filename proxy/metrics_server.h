#pragma once
// MetricsServer: the small HTTP/1.1 server of `[metrics] listen`, on the daemon's own loop:
//
//   GET|HEAD /metrics   200, Prometheus text format 0.0.4 (metrics_text.h)
//   GET|HEAD /healthz   200 when the upstream is connected and every backend open, else 503
//                       (also while readthru stops); a JSON body says which part is down
//   another path        404          another method on those paths   405
//   a header over 8 KB  431          a body over 8 KB                 413
//   bytes that are not HTTP          400
//
// Requests are parsed by Node's http-parser (Debian's libhttp-parser), never by hand. A
// connection answers its requests one at a time, in order (keep-alive and pipelining work); it
// reads nothing while a response is being written, so what a peer can make readthru hold is one
// read (16 KB) plus one response. A request must arrive whole within `idle_timeout` of the
// connection's start or its previous response, or the connection is closed (slow or idle peers
// cannot hold it); at most `max_connections` are open, more are answered 503 and closed. After an
// error response (4xx but 404 and 405) the connection closes.
//
// Lifetime: Server owns it and closes it as the daemon stops; connections are freed in their
// uv_close callbacks, which run before the loop ends.

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>

#include "proxy/config.h"

namespace readthru {

class Server;
class MetricsConn;

class MetricsServer {
 public:
  // Largest request head (request line and headers) and body accepted.
  static constexpr size_t kMaxHeaderBytes = 8 * 1024;
  static constexpr size_t kMaxBodyBytes = 8 * 1024;

  MetricsServer(uv_loop_t* loop, const MetricsConfig& config, Server* server);
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds and listens (when the config enables it); false with `error` set when it cannot.
  bool start(std::string* error);
  // Stops listening and closes every connection. Idempotent; a no-op when never started.
  void close();

  // For MetricsConn.
  uv_loop_t* loop() { return loop_; }
  Server* server() { return server_; }
  void removeConn(MetricsConn* c);

 private:
  void onConnection(int status);
  void onSweep();

  uv_loop_t* loop_;
  const MetricsConfig& config_;
  Server* server_;
  uv_tcp_t listener_;
  uv_timer_t sweep_;  // closes connections past idle_timeout
  bool started_ = false;
  bool closed_ = false;
  std::unordered_set<MetricsConn*> conns_;  // open, or closing until their close callback
};

}  // namespace readthru
