#pragma once
// UpstreamPool: the few shared connections every unpinned client is multiplexed over, one set
// per protocol version (RESP3 clients share RESP3 connections), plus the factory for pinned
// connections. It also learns the upstream's identity (version, mode, role) for HELLO replies.

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "backends/upstream_conn.h"
#include "proxy/config.h"

namespace readthru {

struct UpstreamIdentity {
  std::string version = "7.0.0";
  std::string mode = "standalone";
  std::string role = "master";
};

class IdentityProbe;

class UpstreamPool final : public backends::UpstreamConn::Listener {
 public:
  UpstreamPool(uv_loop_t* loop, backends::LoopFlusher* flusher, const Config& config);
  ~UpstreamPool();
  void start();
  // The shared connection for a client; nullptr when the upstream is unavailable.
  backends::UpstreamConn* shared(uint64_t client_id, int protocol);
  // readthru's own background connection (write-behind flushers): RESP2, reconnecting, shared
  // with no client, so its requests never queue behind clients' pipelines. nullptr while the
  // upstream is unavailable.
  backends::UpstreamConn* service();
  // A dedicated connection (an idle one when it fits, else a new one); the caller owns it until
  // it hands it back with release().
  backends::UpstreamConn* pinned(int protocol, int db, const std::string& client_name,
                                 backends::UpstreamConn::Listener* listener);
  // Takes back a dedicated connection. `clean`: its state is as new (db 0, no name, nothing
  // pending), so the next client that pins may reuse it; otherwise, or when enough are idle,
  // it is closed.
  void release(backends::UpstreamConn* conn, bool clean);
  const UpstreamIdentity& identity() const { return identity_; }
  // Whether a shared connection to the upstream is connected now (health checks, metrics).
  bool up() const;
  void close();

  void onUpstreamReady(backends::UpstreamConn* conn) override;
  void onUpstreamDown(backends::UpstreamConn* conn, std::string_view reason) override;

 private:
  backends::UpstreamOptions options(int protocol) const;
  std::vector<backends::UpstreamConn*>& conns(int protocol);

  uv_loop_t* loop_;
  backends::LoopFlusher* flusher_;
  const Config& config_;
  std::vector<backends::UpstreamConn*> resp2_;
  std::vector<backends::UpstreamConn*> resp3_;        // opened on the first RESP3 client
  std::vector<backends::UpstreamConn*> idle_pinned_;  // dedicated connections kept for reuse
  backends::UpstreamConn* service_ = nullptr;         // opened on first use
  UpstreamIdentity identity_;
  std::unique_ptr<IdentityProbe> probe_;
  bool was_down_ = false;
};

}  // namespace readthru
