#include "proxy/upstream_pool.h"

#include <hiredis/hiredis.h>

#include "proxy/log.h"
#include "resp/reply_encoder.h"

namespace readthru {
// Reads the upstream's HELLO reply (a RESP2 array of field/value pairs) with hiredis's reader:
// it is a reply readthru inspects, flat and small, which is what that reader is for.
class IdentityProbe final : public backends::ReplyTarget {
 public:
  explicit IdentityProbe(UpstreamIdentity* out) : out_(out) {}
  void replyData(const char* data, size_t len) override { bytes_.append(data, len); }
  bool replyDone(char) override {
    redisReader* r = redisReaderCreate();
    redisReaderFeed(r, bytes_.data(), bytes_.size());
    void* reply = nullptr;
    if (redisReaderGetReply(r, &reply) == REDIS_OK && reply != nullptr) {
      auto* rep = static_cast<redisReply*>(reply);
      if (rep->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < rep->elements; i += 2) {
          redisReply* k = rep->element[i];
          redisReply* v = rep->element[i + 1];
          if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
          std::string_view key(k->str, k->len);
          std::string value(v->str, v->len);
          if (key == "version") out_->version = value;
          if (key == "mode") out_->mode = value;
          if (key == "role") out_->role = value;
        }
      }
      freeReplyObject(reply);
    }
    redisReaderFree(r);
    bytes_.clear();
    in_flight_ = false;
    return false;
  }
  void replyFailed(std::string_view) override {
    bytes_.clear();
    in_flight_ = false;
  }
  bool in_flight_ = false;

 private:
  UpstreamIdentity* out_;
  std::string bytes_;
};

UpstreamPool::UpstreamPool(uv_loop_t* loop, backends::LoopFlusher* flusher, const Config& config)
    : loop_(loop),
      flusher_(flusher),
      config_(config),
      probe_(std::make_unique<IdentityProbe>(&identity_)) {}

UpstreamPool::~UpstreamPool() = default;

backends::UpstreamOptions UpstreamPool::options(int protocol) const {
  backends::UpstreamOptions o;
  o.host = config_.upstream.host;
  o.port = config_.upstream.port;
  o.username = config_.upstream_username;
  o.password = config_.upstream_password;
  o.protocol = protocol;
  o.connect_timeout_ms = config_.connect_timeout_ms;
  o.command_timeout_ms = config_.command_timeout_ms;
  o.tls = config_.upstream_tls_context;
  o.tls_server_name = config_.upstream_tls.server_name;
  return o;
}

std::vector<backends::UpstreamConn*>& UpstreamPool::conns(int protocol) {
  auto& v = protocol == 3 ? resp3_ : resp2_;
  if (v.empty()) {
    for (int i = 0; i < config_.upstream_connections; ++i) {
      auto* c = new backends::UpstreamConn(loop_, flusher_, options(protocol), this);
      v.push_back(c);
      c->connect();
    }
  }
  return v;
}

void UpstreamPool::start() {
  if (config_.upstream_tls_context != nullptr && !config_.upstream_tls.verify) {
    log::warning("upstream TLS: tls_verify = false: the upstream's certificate is not checked");
  }
  conns(2);
}

namespace {

// A first connect is worth waiting for; a reconnect after a failure is not: the request would
// only wait for the next error, and "upstream unavailable" now is the better answer.
bool usable(const backends::UpstreamConn* c) {
  return c->state() == backends::UpstreamConn::State::kReady ||
         (c->state() == backends::UpstreamConn::State::kConnecting && !c->retrying());
}

}  // namespace

backends::UpstreamConn* UpstreamPool::service() {
  if (service_ == nullptr) {
    service_ = new backends::UpstreamConn(loop_, flusher_, options(2), this);
    service_->connect();
  }
  return usable(service_) ? service_ : nullptr;
}

backends::UpstreamConn* UpstreamPool::shared(uint64_t client_id, int protocol) {
  auto& v = conns(protocol);
  backends::UpstreamConn* c = v[client_id % v.size()];
  if (usable(c)) return c;
  // Another connection of the set may still be up.
  for (auto* other : v) {
    if (other->state() == backends::UpstreamConn::State::kReady) return other;
  }
  return nullptr;
}

backends::UpstreamConn* UpstreamPool::pinned(int protocol, int db, const std::string& client_name,
                                             backends::UpstreamConn::Listener* listener) {
  if (db == 0 && client_name.empty()) {
    for (size_t i = idle_pinned_.size(); i-- > 0;) {
      backends::UpstreamConn* c = idle_pinned_[i];
      if (c->options().protocol != protocol) continue;
      idle_pinned_.erase(idle_pinned_.begin() + static_cast<std::ptrdiff_t>(i));
      c->setListener(listener);
      return c;
    }
  }
  backends::UpstreamOptions o = options(protocol);
  o.db = db;
  o.client_name = client_name;
  o.reconnect = false;
  o.buffer_frames = true;
  o.command_timeout_ms = 0;  // blocking commands and subscriptions wait as long as they like
  auto* c = new backends::UpstreamConn(loop_, flusher_, std::move(o), listener);
  c->connect();
  return c;
}

void UpstreamPool::release(backends::UpstreamConn* conn, bool clean) {
  // Enough to absorb clients that alternate blocking and plain commands without reconnecting.
  constexpr size_t kMaxIdlePinned = 16;
  const auto& o = conn->options();
  if (clean && conn->state() == backends::UpstreamConn::State::kReady && conn->pending() == 0 &&
      o.db == 0 && o.client_name.empty() && !o.reconnect && idle_pinned_.size() < kMaxIdlePinned) {
    conn->setListener(this);
    idle_pinned_.push_back(conn);
    return;
  }
  conn->close();
}

void UpstreamPool::onUpstreamReady(backends::UpstreamConn* conn) {
  if (was_down_) {
    log::info("upstream {}:{} is back", config_.upstream.host, config_.upstream.port);
    was_down_ = false;
  }
  IdentityProbe* p = probe_.get();
  if (conn->options().protocol == 2 && !p->in_flight_) {
    std::string req;
    resp::ReplyEncoder::command(&req, {"HELLO"});
    p->in_flight_ = true;
    conn->send(req, p);
  }
}

void UpstreamPool::onUpstreamDown(backends::UpstreamConn* conn, std::string_view reason) {
  for (size_t i = 0; i < idle_pinned_.size(); ++i) {
    if (idle_pinned_[i] == conn) {
      idle_pinned_.erase(idle_pinned_.begin() + static_cast<std::ptrdiff_t>(i));
      conn->close();
      return;
    }
  }
  if (!was_down_) {
    log::warning("upstream {}:{} unavailable: {}", config_.upstream.host, config_.upstream.port,
                 reason);
    was_down_ = true;
  }
}

bool UpstreamPool::up() const {
  for (const auto* c : resp2_) {
    if (c->state() == backends::UpstreamConn::State::kReady) return true;
  }
  return false;
}

void UpstreamPool::close() {
  for (auto* c : resp2_) c->close();
  for (auto* c : resp3_) c->close();
  for (auto* c : idle_pinned_) c->close();
  if (service_ != nullptr) service_->close();
  service_ = nullptr;
  idle_pinned_.clear();
  resp2_.clear();
  resp3_.clear();
}

}  // namespace readthru
