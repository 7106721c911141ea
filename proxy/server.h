#pragma once
// Server: the listening socket, the set of clients, the shared pieces every client uses (config,
// upstream pool, loop flusher), idle timeouts, and the orderly stop on SIGTERM/SIGINT:
// stop accepting, let every client receive the replies it is owed (up to shutdown_timeout),
// close everything, and let the loop run dry so main returns 0.
// A unix socket (`unixsocket`) is a second listener; its clients are ClientConns like any other.
// SIGHUP (and READTHRU RELOAD) reload the configuration (config_reload.h): applyReload swaps the
// new settings and registry in; clients, and loads and writes in flight, carry on.

#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backends/loop_flusher.h"
#include "proxy/acl.h"
#include "proxy/cache_registry.h"
#include "proxy/command_metrics.h"
#include "proxy/config.h"
#include "proxy/config_reload.h"
#include "proxy/metrics_server.h"
#include "proxy/monitor_feed.h"
#include "proxy/read_through.h"
#include "proxy/upstream_pool.h"
#include "proxy/write_behind.h"

namespace readthru {

class ClientConn;

class Server {
 public:
  // `registry` is open (or empty) and allocated with new: the server owns it, closes it when it
  // stops, and frees it with itself. `config` is the running configuration, which a reload
  // rewrites in place (on the loop thread); `source` is where a reload reads the new one.
  Server(uv_loop_t* loop, Config& config, CacheRegistry* registry, ConfigSource source);
  // Binds and listens; false with `error` set when it cannot.
  bool start(std::string* error);
  void shutdown(const char* why);
  // Reloads the configuration (see ConfigReloader::reload).
  void reload(std::string why, ConfigReloader::Done done);

  uv_loop_t* loop() { return loop_; }
  const Config& config() const { return config_; }
  // The users; a reload replaces it (clients are rebound to the new one first).
  Acl& acl() { return *acl_; }
  backends::LoopFlusher* flusher() { return &flusher_; }
  UpstreamPool* pool() { return &pool_; }
  // The current registry: the one new requests use.
  CacheRegistry* loaders() { return registry_.get(); }
  ReadThrough* readThrough() { return &read_through_; }
  WriterQueueState writerQueue(const Writer& w) const { return write_behind_.queue(w); }
  WriteBehind* writeBehind() { return &write_behind_; }
  size_t clientCount() const { return clients_; }
  // The clients still open, oldest first: what CLIENT LIST and CLIENT KILL walk.
  std::vector<ClientConn*> openClients() const;
  // Since start, as INFO's total_connections_received and rejected_connections (maxclients).
  uint64_t connectionsReceived() const { return connections_received_; }
  uint64_t connectionsRejected() const { return connections_rejected_; }
  // Clients on a dedicated upstream connection (MULTI, SUBSCRIBE, blocking commands, ...).
  size_t pinnedClientCount() const;
  double uptimeSeconds() const;
  CommandMetrics* commandMetrics() { return &command_metrics_; }
  MonitorFeed* monitorFeed() { return &monitor_feed_; }
  bool shuttingDown() const { return shutting_down_; }

  // Called from ClientConn's close callback.
  void removeClient(ClientConn* c);

 private:
  void onConnection(uv_stream_t* listener, int status);
  bool applyReload(Config&& next, RegistryRef registry, std::string* error);
  void armIdleTimer();
  bool listenUnix(std::string* error);
  void onIdleTimer();
  void replaceUsers();
  void maybeFinish();
  void closeListener();

  uv_loop_t* loop_;
  Config& config_;
  std::unique_ptr<Acl> acl_;
  backends::LoopFlusher flusher_;
  UpstreamPool pool_;
  RegistryRef registry_;  // the current one; the ones before it free themselves once unused
  ReadThrough read_through_;
  WriteBehind write_behind_;
  CommandMetrics command_metrics_;
  MonitorFeed monitor_feed_;
  MetricsServer metrics_;  // [metrics]: started with the listener, closed as the loop ends
  ConfigReloader reloader_;
  uv_tcp_t listener_;
  // config_.unixsocket's listener; the socket file is ours from bind until closeListener.
  uv_pipe_t unix_listener_;
  bool unix_bound_ = false;
  uv_signal_t sigterm_;
  uv_signal_t sigint_;
  uv_signal_t sighup_;
  uv_timer_t idle_timer_;
  uv_timer_t deadline_;
  ClientConn* clients_head_ = nullptr;
  size_t clients_ = 0;
  uint64_t connections_received_ = 0;
  uint64_t connections_rejected_ = 0;
  // readthru's own client ids (CLIENT ID of an unpinned client, HELLO's id) start far above
  // any id redis-server hands out, so CLIENT KILL ID or UNBLOCK with one of them can never hit
  // an unrelated upstream connection.
  uint64_t next_client_id_ = 1ull << 40;
  bool listening_ = false;
  bool listener_closed_ = false;
  bool shutting_down_ = false;
  const uint64_t started_ns_ = uv_hrtime();  // uptime
  bool finished_ = false;
  bool draining_ = false;  // write-behind is flushing before the stop
  bool drained_ = false;
};

}  // namespace readthru
