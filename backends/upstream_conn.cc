#include "backends/upstream_conn.h"

#include <cstring>
#include <string>

#include "backends/tls_session.h"
#include "resp/errors.h"
#include "resp/reply_encoder.h"

namespace readthru::backends {
namespace {

size_t g_live = 0;
constexpr uint64_t kMinBackoffMs = 50;
constexpr uint64_t kMaxBackoffMs = 2000;
constexpr size_t kReadBufferSize = 64 * 1024;
// TLS: plaintext encrypted per write, so a 50 MB request is never held twice more (as records,
// then being written) and the loop turns between chunks.
constexpr size_t kTlsChunk = 256 * 1024;

// Replies are consumed as soon as they are read, so one buffer serves every connection.
char g_read_buffer[kReadBufferSize];

std::string uvError(const char* what, int status) {
  return std::string(what) + ": " + uv_strerror(status);
}

}  // namespace

size_t UpstreamConn::liveCount() { return g_live; }

UpstreamConn::UpstreamConn(uv_loop_t* loop, LoopFlusher* flusher, UpstreamOptions options,
                           Listener* listener)
    : loop_(loop), flusher_(flusher), options_(std::move(options)), listener_(listener) {
  ++g_live;
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  ++open_handles_;
  tcp_.data = this;
  connect_req_.data = this;
  write_req_.data = this;
  resolve_req_.data = this;
}

UpstreamConn::~UpstreamConn() { --g_live; }

std::string UpstreamConn::handshake(size_t* requests) const {
  std::string out;
  *requests = 0;
  if (options_.protocol == 3) {
    // HELLO carries the credentials when it switches the protocol.
    if (!options_.password.empty()) {
      resp::ReplyEncoder::command(
          &out, {"HELLO", "3", "AUTH",
                 options_.username.empty() ? std::string_view("default") : options_.username,
                 options_.password});
    } else {
      resp::ReplyEncoder::command(&out, {"HELLO", "3"});
    }
    ++*requests;
  } else if (!options_.password.empty()) {
    if (options_.username.empty()) {
      resp::ReplyEncoder::command(&out, {"AUTH", options_.password});
    } else {
      resp::ReplyEncoder::command(&out, {"AUTH", options_.username, options_.password});
    }
    ++*requests;
  }
  if (options_.db != 0) {
    resp::ReplyEncoder::command(&out, {"SELECT", std::to_string(options_.db)});
    ++*requests;
  }
  if (!options_.client_name.empty()) {
    resp::ReplyEncoder::command(&out, {"CLIENT", "SETNAME", options_.client_name});
    ++*requests;
  }
  return out;
}

void UpstreamConn::connect() {
  if (state_ == State::kClosed) return;
  startConnect();
}

void UpstreamConn::startConnect() {
  state_ = State::kConnecting;
  server_id_ = 0;
  framer_ = resp::ReplyFramer();
  frame_.clear();
  if (options_.tls != nullptr) {
    tls_ = std::make_unique<TlsSession>(
        options_.tls, options_.tls_server_name.empty() ? options_.host : options_.tls_server_name);
    cipher_.clear();
  }
  sockaddr_storage addr{};
  bool numeric = uv_ip4_addr(options_.host.c_str(), options_.port,
                             reinterpret_cast<sockaddr_in*>(&addr)) == 0 ||
                 uv_ip6_addr(options_.host.c_str(), options_.port,
                             reinterpret_cast<sockaddr_in6*>(&addr)) == 0;
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<UpstreamConn*>(t->data);
        if (self->state_ == State::kConnecting) self->fail("ERR upstream connect timeout");
      },
      options_.connect_timeout_ms, 0);
  if (numeric) {
    connectTo(reinterpret_cast<const sockaddr*>(&addr));
    return;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  resolving_ = true;
  ++open_handles_;
  std::string port = std::to_string(options_.port);
  int rc = uv_getaddrinfo(
      loop_, &resolve_req_,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* self = static_cast<UpstreamConn*>(req->data);
        self->resolving_ = false;
        if (status == 0 && self->state_ == State::kConnecting) {
          self->connectTo(res->ai_addr);
        } else if (self->state_ == State::kConnecting) {
          self->fail(uvError("ERR upstream address lookup failed", status));
        }
        uv_freeaddrinfo(res);
        self->handleClosed();
      },
      options_.host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    resolving_ = false;
    --open_handles_;
    fail(uvError("ERR upstream address lookup failed", rc));
  }
}

void UpstreamConn::connectTo(const sockaddr* addr) {
  uv_tcp_init(loop_, &tcp_);
  tcp_.data = this;
  tcp_open_ = true;
  ++open_handles_;
  uv_tcp_nodelay(&tcp_, 1);
  int rc = uv_tcp_connect(&connect_req_, &tcp_, addr, [](uv_connect_t* req, int status) {
    static_cast<UpstreamConn*>(req->data)->onConnected(status);
  });
  // On failure the callback never runs.
  if (rc != 0) fail(uvError("ERR upstream connect failed", rc));
}

void UpstreamConn::onConnected(int status) {
  if (state_ != State::kConnecting) return;  // failed or closed meanwhile
  if (status != 0) {
    fail(uvError("ERR upstream connect failed", status));
    return;
  }
  startReading();
  if (tls_ != nullptr) {
    advanceTlsHandshake();  // ready once established; the connect timeout covers it
    return;
  }
  onReady();
}

void UpstreamConn::startReading() {
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp_),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        *buf = uv_buf_init(g_read_buffer, kReadBufferSize);
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        static_cast<UpstreamConn*>(s->data)->onRead(nread, buf);
      });
}

void UpstreamConn::pauseReading() {
  if (read_paused_ || state_ != State::kReady) return;
  read_paused_ = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void UpstreamConn::resumeReading() {
  if (!read_paused_) return;
  read_paused_ = false;
  if (state_ == State::kReady) startReading();
}

void UpstreamConn::onReady() {
  uv_timer_stop(&timer_);
  state_ = State::kReady;
  size_t n = 0;
  std::string hs = handshake(&n);
  if (n > 0) {
    resp::ByteBuffer queued;
    queued.swap(out_);
    out_.append(hs);
    out_.append(queued.view());
    for (size_t i = 0; i < n; ++i) fifo_.push_front(Pending{nullptr, uv_now(loop_)});
    handshake_left_ = n;
  }
  // Under TLS, acceptance waits for the first bytes after the handshake (onTlsRead).
  if (handshake_left_ == 0 && tls_ == nullptr) acceptedByUpstream();
  if (options_.command_timeout_ms > 0) {
    uint64_t every = options_.command_timeout_ms / 4 + 1;
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<UpstreamConn*>(t->data)->onTimer(); }, every,
        every);
  }
  if (!out_.empty()) flusher_->mark(this);
  listener_->onUpstreamReady(this);
}

// Only a connection the upstream accepted (its TLS session and its AUTH, HELLO, SELECT went
// through) counts as having worked, so that losing it retries at once. One refused every time (a
// wrong password, a missing client certificate) backs off instead of reconnecting in a loop.
void UpstreamConn::acceptedByUpstream() {
  backoff_ms_ = 0;
  was_ready_ = true;
  if (!held_.empty() && handshake_left_ == 0) {
    out_.append(held_.view());
    held_.release();
    flusher_->mark(this);
  }
}

void UpstreamConn::onTimer() {
  if (state_ != State::kReady || fifo_.empty()) return;
  if (tunnel_ != nullptr && fifo_.front().target == tunnel_) return;  // a stream, never late
  if (uv_now(loop_) - fifo_.front().sent_at >= options_.command_timeout_ms) {
    fail(resp::err::kUpstreamTimeout);
  }
}

void UpstreamConn::send(std::string_view request, ReplyTarget* target) {
  sealBatch();
  sendInBatch(request, target);
}

void UpstreamConn::sendInBatch(std::string_view request, ReplyTarget* target) {
  out_.append(request);
  fifo_.push_back(Pending{target, uv_now(loop_)});
  if (state_ == State::kReady) flusher_->mark(this);
}

void UpstreamConn::sendOwned(resp::ByteBuffer&& request, ReplyTarget* target) {
  sealBatch();
  if (out_.empty()) {
    out_.swap(request);
  } else {
    out_.append(request.view());
  }
  request.release();
  fifo_.push_back(Pending{target, uv_now(loop_)});
  if (state_ == State::kReady) flusher_->mark(this);
}

void UpstreamConn::sendUnanswered(std::string_view request) {
  sealBatch();
  (held_.empty() ? out_ : held_).append(request);
  if (state_ == State::kReady) flusher_->mark(this);
}

void UpstreamConn::sendTunnel(std::string_view request, ReplyTarget* target) {
  sealBatch();
  // Redis refuses SYNC while replies are owed ("invalid with pending output"), as the replies
  // to the handshake are while it runs: the SYNC, and what the client relays after it, wait.
  bool hold = state_ != State::kReady || handshake_left_ > 0 || !held_.empty();
  (hold ? held_ : out_).append(request);
  fifo_.push_back(Pending{target, uv_now(loop_)});
  tunnel_ = target;
  if (state_ == State::kReady) flusher_->mark(this);
}

void UpstreamConn::flush() {
  sealBatch();
  if (tls_ != nullptr) {
    flushTls();
    return;
  }
  if (state_ != State::kReady || writing_ || out_.empty()) return;
  writeOut(&out_);
}

// Writes `buf` (out_, or cipher_ under TLS): what the socket takes now, then the rest in one
// uv_write that owns it until its callback.
void UpstreamConn::writeOut(resp::ByteBuffer* buf) {
  uv_buf_t b = uv_buf_init(buf->data(), static_cast<unsigned>(buf->size()));
  int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
  if (n == static_cast<int>(buf->size())) {
    buf->clear();
    if (buf->capacity() > 1024 * 1024) buf->release();
    return;
  }
  if (n < 0 && n != UV_EAGAIN) {
    fail(uvError("ERR upstream write failed", n));
    return;
  }
  if (n > 0) buf->consume(static_cast<size_t>(n));
  writing_buf_.swap(*buf);
  writing_ = true;
  b = uv_buf_init(writing_buf_.data(), static_cast<unsigned>(writing_buf_.size()));
  int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
                    [](uv_write_t* req, int status) {
                      auto* self = static_cast<UpstreamConn*>(req->data);
                      self->writing_ = false;
                      self->writing_buf_.clear();
                      if (self->writing_buf_.capacity() > 1024 * 1024) {
                        self->writing_buf_.release();
                      }
                      if (status != 0) {
                        if (self->state_ == State::kReady) {
                          self->fail(uvError("ERR upstream write failed", status));
                        }
                        return;
                      }
                      if (!self->out_.empty() || !self->cipher_.empty()) {
                        self->flusher_->mark(self);
                      }
                    });
  if (rc != 0) {
    writing_ = false;
    fail(uvError("ERR upstream write failed", rc));
  }
}

void UpstreamConn::onRead(ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {
    if (tls_ != nullptr && !tls_->established()) {
      fail(nread == UV_EOF ? "ERR upstream TLS handshake failed: connection closed by the upstream"
                           : uvError("ERR upstream TLS handshake failed", static_cast<int>(nread)));
      return;
    }
    fail(nread == UV_EOF ? std::string(resp::err::kUpstreamLost)
                         : uvError("ERR upstream connection lost", static_cast<int>(nread)));
    return;
  }
  if (tls_ != nullptr) {
    onTlsRead(buf->base, static_cast<size_t>(nread));
    return;
  }
  consume(buf->base, static_cast<size_t>(nread));
}

void UpstreamConn::advanceTlsHandshake() {
  TlsSession::Result r = tls_->handshake();
  if (r == TlsSession::Result::kError) {
    fail("ERR upstream TLS handshake failed: " + tls_->error());
    return;
  }
  flushTls();  // the ClientHello, or the client's Finished
  if (state_ == State::kConnecting && r == TlsSession::Result::kDone) onReady();
}

void UpstreamConn::onTlsRead(const char* data, size_t len) {
  bool established = tls_->established();
  tls_->feed(data, len);  // copied: g_read_buffer is free again for the plaintext
  if (!established) {
    if (state_ == State::kConnecting) advanceTlsHandshake();
    if (state_ != State::kReady) return;
  }
  for (;;) {
    size_t n = 0;
    TlsSession::Result r = tls_->read(g_read_buffer, kReadBufferSize, &n);
    if (r == TlsSession::Result::kError) {
      fail("ERR upstream TLS error: " + tls_->error());
      return;
    }
    if (r == TlsSession::Result::kClosed) {
      fail(resp::err::kUpstreamLost);
      return;
    }
    // Bytes came after the handshake and decrypt: the upstream took the session. (Under TLS 1.3
    // a server that refuses the client's certificate says so only after the client's handshake
    // is done.)
    if (established && handshake_left_ == 0 && !was_ready_) acceptedByUpstream();
    if (n == 0) break;
    consume(g_read_buffer, n);
    if (state_ != State::kReady) return;
  }
  if (tls_->hasOutput() || !out_.empty()) flusher_->mark(this);
}

// Encrypts queued requests a chunk at a time while the socket takes them at once; the session's
// own output (handshake messages, alerts) always moves to cipher_, so a write in flight finds it
// there when it completes.
void UpstreamConn::flushTls() {
  while (tcp_open_) {
    if (!writing_ && state_ == State::kReady && !out_.empty()) {
      size_t taken = 0;
      TlsSession::Result r = tls_->write(out_.data(), std::min(out_.size(), kTlsChunk), &taken);
      if (r == TlsSession::Result::kError) {
        fail("ERR upstream TLS error: " + tls_->error());
        return;
      }
      out_.consume(taken);
      if (out_.empty() && out_.capacity() > 1024 * 1024) out_.release();
    }
    tls_->takeOutput(&cipher_);
    if (writing_ || cipher_.empty()) return;
    writeOut(&cipher_);
    if (state_ != State::kReady && state_ != State::kConnecting) return;
  }
}

void UpstreamConn::consume(const char* data, size_t len) {
  while (len > 0 && state_ == State::kReady) {
    if (tunnel_ != nullptr && handshake_left_ == 0 && !fifo_.empty() &&
        fifo_.front().target == tunnel_) {
      if (ReplyTarget* t = fifo_.front().target) t->replyData(data, len);
      return;
    }
    auto r = framer_.feed(data, len);
    if (r.error) {
      fail("ERR upstream protocol error: " + framer_.message());
      return;
    }
    if (fifo_.empty() && !options_.buffer_frames) {
      fail("ERR upstream sent a reply nobody asked for");
      return;
    }
    if (options_.buffer_frames || handshake_left_ > 0) {
      frame_.append(data, r.consumed);
    } else if (ReplyTarget* t = fifo_.front().target) {
      t->replyData(data, r.consumed);
    }
    data += r.consumed;
    len -= r.consumed;
    if (r.complete) {
      if (options_.buffer_frames || handshake_left_ > 0) {
        deliverFrame();
      } else {
        replyEnded(r.type);
      }
    }
  }
}

void UpstreamConn::deliverFrame() {
  char type = frame_.empty() ? 0 : frame_[0];
  if (handshake_left_ > 0) {
    --handshake_left_;
    fifo_.pop_front();
    if (type == '-') {
      std::string reason = "ERR upstream handshake failed: " + frame_.substr(1, frame_.size() - 3);
      frame_.clear();
      fail(reason);
      return;
    }
    frame_.clear();
    if (handshake_left_ == 0) acceptedByUpstream();
    return;
  }
  if (listener_->onUpstreamFrame(this, frame_)) {
    frame_.clear();
    return;
  }
  if (state_ != State::kReady) return;
  if (fifo_.empty()) {
    fail("ERR upstream sent a reply nobody asked for");
    return;
  }
  if (ReplyTarget* t = fifo_.front().target) t->replyFrame(frame_);
  frame_.clear();
  replyEnded(type);
}

void UpstreamConn::replyEnded(char type) {
  ReplyTarget* t = fifo_.front().target;
  bool more = t != nullptr && t->replyDone(type);
  if (!more) fifo_.pop_front();
}

void UpstreamConn::failPending(std::string_view reason) {
  sealBatch();  // its requests fail with the rest, in order
  std::deque<Pending> pending;
  pending.swap(fifo_);
  handshake_left_ = 0;
  out_.clear();
  held_.release();
  cipher_.clear();
  frame_.clear();
  for (auto& p : pending) {
    if (p.target != nullptr) p.target->replyFailed(reason);
  }
}

void UpstreamConn::fail(std::string_view reason) {
  if (state_ == State::kClosed || state_ == State::kDown) return;
  state_ = State::kDown;
  std::string why(reason);
  uv_timer_stop(&timer_);
  closeSocket();
  failPending(why);
  if (state_ == State::kClosed) return;
  listener_->onUpstreamDown(this, why);
  if (state_ == State::kDown && options_.reconnect) {
    if (backoff_ms_ == 0 && was_ready_) {
      // The first retry after a working connection dropped (CLIENT KILL, a restart) goes out at
      // once, and requests may wait for it; only when it fails does backoff begin.
      was_ready_ = false;
      state_ = State::kConnecting;
      armReconnect(0);
      return;
    }
    backoff_ms_ = backoff_ms_ == 0 ? kMinBackoffMs : std::min(backoff_ms_ * 2, kMaxBackoffMs);
    armReconnect(backoff_ms_);
  }
}

void UpstreamConn::armReconnect(uint64_t delay_ms) {
  uv_timer_start(
      &timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<UpstreamConn*>(t->data);
        if (self->state_ == State::kClosed || self->state_ == State::kReady) return;
        if (self->tcp_closing_ || self->resolving_) {
          self->armReconnect(1);  // the old socket is still closing
          return;
        }
        self->startConnect();
      },
      delay_ms, 0);
}

void UpstreamConn::closeSocket() {
  if (resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(&resolve_req_));
  if (!tcp_open_) return;
  tcp_open_ = false;
  tcp_closing_ = true;
  writing_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
    auto* self = static_cast<UpstreamConn*>(h->data);
    self->tcp_closing_ = false;
    self->writing_buf_.clear();
    self->handleClosed();
  });
}

void UpstreamConn::close(std::string_view reason) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  closeSocket();
  failPending(reason);
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_),
           [](uv_handle_t* h) { static_cast<UpstreamConn*>(h->data)->handleClosed(); });
}

void UpstreamConn::handleClosed() {
  if (--open_handles_ == 0 && state_ == State::kClosed) {
    flusher_->forget(this);
    delete this;
  }
}

}  // namespace readthru::backends
