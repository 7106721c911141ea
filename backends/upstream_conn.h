#pragma once
// UpstreamConn: one connection to the upstream Redis. Requests are appended to an output buffer
// and written once per loop turn (many clients' requests in one write); each request leaves an
// entry in a FIFO of pending replies, and reply bytes are handed to the head entry's target as
// they arrive (a 100 MB value is never held here whole).
//
// Lifetimes: the owner creates it with new and ends it with close(); the object frees itself in
// its last uv_close callback. Targets must stay valid until they get replyDone (without wanting
// more) or replyFailed: a client that goes away leaves its targets behind as orphans that drop
// their replies (a cancelled request still consumes its reply, or the stream would desync).
//
// When the connection drops, every pending request fails at once, in order. A shared connection
// then reconnects with backoff; a pinned one reports down to its owner, which closes it.
//
// TLS (options.tls set): after the TCP connect a TlsSession handshakes over the same socket, and
// the connection is ready (AUTH, HELLO, SELECT go out) only once it is established; a failed
// handshake is a failed connect. Read bytes are fed to the session and its plaintext to the
// framer; queued requests are encrypted in bounded chunks. Without TLS none of this runs.

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "backends/loop_flusher.h"
#include "backends/reply_target.h"
#include "backends/tls_context.h"
#include "resp/byte_buffer.h"
#include "resp/reply_framer.h"

namespace readthru::backends {

struct UpstreamOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string username;  // empty: AUTH <password> only
  std::string password;  // empty: no AUTH
  int protocol = 2;      // 3: HELLO 3 on connect
  int db = 0;            // SELECT on connect when non-zero
  std::string client_name;
  uint64_t connect_timeout_ms = 2000;
  uint64_t command_timeout_ms = 0;  // 0: none; otherwise the oldest pending request's limit
  bool reconnect = true;            // shared connections reconnect; pinned ones do not
  bool buffer_frames = false;       // pinned: whole frames, so pushes can be told from replies
  std::shared_ptr<const TlsContext> tls;  // null: plain TCP
  std::string tls_server_name;            // what the certificate must name; empty: `host`
};

class TlsSession;

class UpstreamConn final : public Flushable {
 public:
  enum class State { kConnecting, kReady, kDown, kClosed };

  class Listener {
   public:
    virtual void onUpstreamReady(UpstreamConn*) {}
    // Every pending request has already failed. A conn without reconnect stays down.
    virtual void onUpstreamDown(UpstreamConn*, std::string_view /*reason*/) {}
    // buffer_frames only: a whole frame before it goes to the head target. Return true when it is
    // not a reply (a pub/sub message, a push): the listener took it and no target gets it.
    virtual bool onUpstreamFrame(UpstreamConn*, std::string& /*frame*/) { return false; }

   protected:
    ~Listener() = default;
  };

  // Requests that several callers build together on this connection (write-behind's shared
  // transaction): while a batch is open, its requests go out with sendInBatch(); any other
  // request, a flush, or a failure first seals it, so it can append its closing requests in
  // front of everything that follows. The batch outlives sealing as a reply target of its own.
  class Batch {
   public:
    virtual void seal(UpstreamConn* conn) = 0;

   protected:
    ~Batch() = default;
  };

  UpstreamConn(uv_loop_t* loop, LoopFlusher* flusher, UpstreamOptions options, Listener* listener);

  void connect();
  // Queues one request (complete RESP bytes). `target` may be null: the reply is read and
  // dropped. Must not be called while state() is kDown or kClosed (see acceptsRequests()).
  void send(std::string_view request, ReplyTarget* target);
  // As send(), taking the bytes over without a copy when nothing else is queued (a large value).
  void sendOwned(resp::ByteBuffer&& request, ReplyTarget* target);
  // Queues a request Redis will not answer (the client switched replies off with CLIENT REPLY),
  // or bytes a tunnel relays.
  void sendUnanswered(std::string_view request);
  // Queues a request whose reply never ends in RESP terms (SYNC, PSYNC: a payload, then the
  // replication stream): once the replies before it are in, every byte read goes to `target`
  // (replyData) as it arrives, unframed, until the connection closes. Whatever follows goes
  // with sendUnanswered; such a connection is never handed to anyone else. `target` is not null.
  void sendTunnel(std::string_view request, ReplyTarget* target);
  // Stops reading the socket (whoever reads a tunnel is behind) and starts again.
  void pauseReading();
  void resumeReading();
  // Bytes queued for the upstream and not yet written.
  size_t queuedBytes() const {
    return out_.size() + held_.size() + writing_buf_.size() + cipher_.size();
  }
  // The open batch (nullptr: none); opening one seals the one before.
  Batch* openBatch() const { return batch_; }
  void setOpenBatch(Batch* batch) {
    sealBatch();
    batch_ = batch;
  }
  // As send(), for a request of the open batch (which it does not seal).
  void sendInBatch(std::string_view request, ReplyTarget* target);
  bool acceptsRequests() const { return state_ == State::kConnecting || state_ == State::kReady; }
  State state() const { return state_; }
  size_t pending() const { return fifo_.size(); }
  // The target that will get the next reply; nullptr when none is pending.
  ReplyTarget* headTarget() const { return fifo_.empty() ? nullptr : fifo_.front().target; }
  const UpstreamOptions& options() const { return options_; }
  // The connection's id in Redis, once a CLIENT ID sent on it told (setServerId); 0 when
  // unknown. Not asked in the handshake: MONITOR would show it on every new connection.
  uint64_t serverId() const { return server_id_; }
  void setServerId(uint64_t id) { server_id_ = id; }

  // Fails what is pending with `reason`, then frees the object once its handles are closed.
  void close(std::string_view reason = "ERR upstream connection closed");
  void flush() override;
  // The client on a dedicated connection switched protocol (HELLO) or RESET it.
  void setProtocol(int protocol) { options_.protocol = protocol; }
  void setListener(Listener* listener) { listener_ = listener; }
  // A connection that failed and is trying again: requests would only wait for an error.
  bool retrying() const { return backoff_ms_ > 0; }

  static size_t liveCount();

 private:
  struct Pending {
    ReplyTarget* target;
    uint64_t sent_at;
  };
  void startReading();
  ~UpstreamConn();
  void startConnect();
  void connectTo(const sockaddr* addr);
  void onConnected(int status);
  void onReady();
  void acceptedByUpstream();
  void onRead(ssize_t nread, const uv_buf_t* buf);
  void onTlsRead(const char* data, size_t len);
  void advanceTlsHandshake();
  void flushTls();
  void writeOut(resp::ByteBuffer* buf);
  void consume(const char* data, size_t len);
  void deliverFrame();
  void replyEnded(char type);
  void fail(std::string_view reason);
  void failPending(std::string_view reason);
  void closeSocket();
  void armReconnect(uint64_t delay_ms);
  void onTimer();
  void handleClosed();
  void sealBatch() {
    if (batch_ == nullptr) return;
    Batch* b = batch_;
    batch_ = nullptr;
    b->seal(this);
  }
  std::string handshake(size_t* requests) const;

  uv_loop_t* loop_;
  LoopFlusher* flusher_;
  UpstreamOptions options_;
  Listener* listener_;
  State state_ = State::kDown;
  uv_tcp_t tcp_;
  uv_connect_t connect_req_;
  uv_timer_t timer_;  // connect timeout, command timeout, reconnect backoff
  uv_write_t write_req_;
  uv_getaddrinfo_t resolve_req_;
  bool tcp_open_ = false;
  bool read_paused_ = false;  // pauseReading(): not reading although connected
  // sendTunnel's target: once its entry heads the FIFO, everything read is its reply.
  ReplyTarget* tunnel_ = nullptr;
  bool tcp_closing_ = false;  // uv_close asked, its callback not run yet: tcp_ is not reusable
  bool writing_ = false;
  bool resolving_ = false;
  int open_handles_ = 0;
  uint64_t backoff_ms_ = 0;
  bool was_ready_ = false;  // the upstream accepted the last connect: its loss retries at once
  resp::ByteBuffer out_;    // queued, not yet written
  resp::ByteBuffer writing_buf_;     // owned by the write in flight
  std::unique_ptr<TlsSession> tls_;  // this connection's TLS session; null for plain TCP
  resp::ByteBuffer cipher_;          // TLS: encrypted, not yet written
  std::string frame_;                // buffer_frames: the frame being read
  std::deque<Pending> fifo_;
  Batch* batch_ = nullptr;
  size_t handshake_left_ = 0;  // handshake replies still expected at the head of the FIFO
  uint64_t server_id_ = 0;
  // A SYNC and what follows it, until the handshake's replies are in (sendTunnel).
  resp::ByteBuffer held_;
  resp::ReplyFramer framer_;
};

}  // namespace readthru::backends
