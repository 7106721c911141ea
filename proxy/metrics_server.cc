#include "proxy/metrics_server.h"

#include <fmt/format.h>
#include <http_parser.h>

#include <algorithm>
#include <string_view>

#include "proxy/log.h"
#include "proxy/metrics_text.h"

namespace readthru {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
// Reads land here and are copied to the connection's own input at once: loop thread only.
char g_read_buffer[kReadChunk];

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
  }
  return "Error";
}

struct Response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string_view extra_headers;  // whole lines, CRLF-terminated
};

// The bytes of `r`; HEAD gets the headers a GET would, without the body.
std::string encode(const Response& r, bool head, bool close) {
  std::string out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}{}"
      "\r\n",
      r.status, reason(r.status), r.content_type, r.body.size(), r.extra_headers,
      close ? "Connection: close\r\n" : "");
  if (!head) out += r.body;
  return out;
}

}  // namespace

// One HTTP connection: reads, parses with http-parser, answers one request at a time.
class MetricsConn {
 public:
  explicit MetricsConn(MetricsServer* owner) : owner_(owner) {
    uv_tcp_init(owner_->loop(), &tcp_);
    tcp_.data = this;
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    last_active_ = uv_now(owner_->loop());
  }

  uv_tcp_t* handle() { return &tcp_; }
  uint64_t lastActive() const { return last_active_; }

  void start() { updateReading(); }

  // Over max_connections: a 503, then the connection closes.
  void rejectBusy() {
    Response r;
    r.status = 503;
    r.body = "too many metrics connections\n";
    send(encode(r, false, true), true);
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    stopReading();
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
      auto* self = static_cast<MetricsConn*>(h->data);
      self->owner_->removeConn(self);
      delete self;
    });
  }

 private:
  static const http_parser_settings kSettings;

  static MetricsConn* of(http_parser* p) { return static_cast<MetricsConn*>(p->data); }

  // Request-head bytes so far; false (stop parsing) past the limit.
  bool countHead(size_t len) {
    head_bytes_ += len;
    if (head_bytes_ <= MetricsServer::kMaxHeaderBytes) return true;
    error_status_ = 431;
    return false;
  }

  // Closing a socket with unread input makes the kernel send a reset, which can destroy the
  // response before the peer reads it (a 431 to a peer still sending its headers). So the
  // last response is followed by a FIN, and what the peer still sends is read and dropped until
  // it closes too, or idle_timeout ends it.
  void linger() {
    lingering_ = true;
    in_.clear();
    shutdown_req_.data = this;
    if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_),
                    [](uv_shutdown_t* req, int status) {
                      auto* self = static_cast<MetricsConn*>(req->data);
                      if (status < 0) self->close();
                    }) != 0) {
      close();
      return;
    }
    updateReading();
  }

  void updateReading() {
    bool want = !closing_ && !writing_ && (lingering_ || (!close_after_write_ && in_.empty()));
    if (want && !reading_) {
      reading_ = true;
      uv_read_start(
          reinterpret_cast<uv_stream_t*>(&tcp_),
          [](uv_handle_t*, size_t, uv_buf_t* buf) {
            *buf = uv_buf_init(g_read_buffer, kReadChunk);
          },
          [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
            static_cast<MetricsConn*>(s->data)->onRead(nread);
          });
    } else if (!want) {
      stopReading();
    }
  }

  void stopReading() {
    if (!reading_) return;
    reading_ = false;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  }

  void onRead(ssize_t nread) {
    if (nread == 0) return;
    if (nread < 0) {
      // The peer is gone or has finished sending: a response on its way still goes out.
      peer_done_ = true;
      if (nread == UV_EOF && writing_) {
        close_after_write_ = true;
        stopReading();
      } else {
        close();
      }
      return;
    }
    if (lingering_) return;  // after the last response: read and dropped
    in_.append(g_read_buffer, static_cast<size_t>(nread));
    process();
  }

  // Parses what is buffered; stops at each whole request to answer it.
  void process() {
    while (!in_.empty() && !writing_ && !closing_ && !close_after_write_) {
      size_t n = http_parser_execute(&parser_, &kSettings, in_.data(), in_.size());
      http_errno err = HTTP_PARSER_ERRNO(&parser_);
      if (err == HPE_PAUSED) {
        // on_message_complete paused the parser at the end of one request.
        http_parser_pause(&parser_, 0);
        in_.erase(0, n);
        answer();
        continue;
      }
      if (err != HPE_OK || n != in_.size()) {
        // Not HTTP, over a limit, or an upgrade to another protocol: answered, then closed.
        Response r;
        r.status = error_status_ != 0 ? error_status_ : err == HPE_HEADER_OVERFLOW ? 431 : 400;
        r.body = fmt::format("{}\n", reason(r.status));
        log::debug("metrics: closing a connection: {} ({})", r.status, http_errno_name(err));
        in_.clear();
        send(encode(r, false, true), true);
        break;
      }
      in_.clear();  // the parser holds what it needs of a partial request
    }
    updateReading();
  }

  void answer() {
    std::string_view path = url_;
    path = path.substr(0, path.find('?'));
    bool head = method_ == HTTP_HEAD;
    bool close = !keep_alive_ || parser_.upgrade;
    Response r;
    if (path != "/metrics" && path != "/healthz") {
      r.status = 404;
      r.body = "Not Found: try /metrics or /healthz\n";
    } else if (method_ != HTTP_GET && !head) {
      r.status = 405;
      r.body = "Method Not Allowed\n";
      r.extra_headers = "Allow: GET, HEAD\r\n";
    } else if (path == "/metrics") {
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = renderMetrics(owner_->server());
    } else {
      r.content_type = "application/json";
      r.status = renderHealth(owner_->server(), &r.body) ? 200 : 503;
      r.body += "\n";
    }
    send(encode(r, head, close), close);
  }

  void send(std::string&& bytes, bool close_after) {
    close_after_write_ = close_after_write_ || close_after;
    out_ = std::move(bytes);
    writing_ = true;
    stopReading();
    uv_buf_t b = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    write_req_.data = this;
    int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
                      [](uv_write_t* req, int status) {
                        static_cast<MetricsConn*>(req->data)->onWritten(status);
                      });
    if (rc != 0) {
      // The callback will not run.
      writing_ = false;
      close();
    }
  }

  void onWritten(int status) {
    writing_ = false;
    std::string().swap(out_);
    if (closing_) return;
    if (status < 0 || peer_done_) {
      close();
      return;
    }
    last_active_ = uv_now(owner_->loop());
    if (close_after_write_) {
      linger();
      return;
    }
    process();
  }

  MetricsServer* owner_;
  uv_tcp_t tcp_;
  uv_write_t write_req_;
  uv_shutdown_t shutdown_req_;
  http_parser parser_;
  std::string in_;   // read, not yet parsed: at most one read, and only while a response is out
  std::string out_;  // the response being written
  uint64_t last_active_;
  // The request being parsed.
  std::string url_;
  size_t head_bytes_ = 0;
  size_t body_bytes_ = 0;
  int error_status_ = 0;  // a limit a callback hit
  unsigned method_ = HTTP_GET;
  bool keep_alive_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_after_write_ = false;
  bool lingering_ = false;  // the last response is out: reading only until the peer closes
  bool peer_done_ = false;  // the peer closed its side (or the connection broke)
};

const http_parser_settings MetricsConn::kSettings = [] {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_message_begin = [](http_parser* p) {
    MetricsConn* c = of(p);
    c->url_.clear();
    c->head_bytes_ = 0;
    c->body_bytes_ = 0;
    c->error_status_ = 0;
    return 0;
  };
  s.on_url = [](http_parser* p, const char* at, size_t len) {
    MetricsConn* c = of(p);
    if (!c->countHead(len)) return 1;
    c->url_.append(at, len);
    return 0;
  };
  s.on_header_field = [](http_parser* p, const char*, size_t len) {
    return of(p)->countHead(len) ? 0 : 1;
  };
  s.on_header_value = [](http_parser* p, const char*, size_t len) {
    return of(p)->countHead(len) ? 0 : 1;
  };
  s.on_body = [](http_parser* p, const char*, size_t len) {
    MetricsConn* c = of(p);
    c->body_bytes_ += len;
    if (c->body_bytes_ <= MetricsServer::kMaxBodyBytes) return 0;
    c->error_status_ = 413;
    return 1;
  };
  s.on_message_complete = [](http_parser* p) {
    MetricsConn* c = of(p);
    c->method_ = p->method;
    c->keep_alive_ = http_should_keep_alive(p) != 0;
    // One request at a time: process() answers it, then parses on.
    http_parser_pause(p, 1);
    return 0;
  };
  return s;
}();

MetricsServer::MetricsServer(uv_loop_t* loop, const MetricsConfig& config, Server* server)
    : loop_(loop), config_(config), server_(server) {}

bool MetricsServer::start(std::string* error) {
  if (!config_.enabled) return true;
  sockaddr_storage addr{};
  const char* host = config_.listen.host.c_str();
  if (uv_ip4_addr(host, config_.listen.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host, config_.listen.port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    *error = fmt::format("metrics listen address '{}' is not an IP address", config_.listen.host);
    return false;
  }
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  uv_timer_init(loop_, &sweep_);
  sweep_.data = this;
  started_ = true;
  int rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 64, [](uv_stream_t* s, int status) {
      static_cast<MetricsServer*>(s->data)->onConnection(status);
    });
  }
  if (rc != 0) {
    *error = fmt::format("cannot listen for metrics on {}:{}: {}", config_.listen.host,
                         config_.listen.port, uv_strerror(rc));
    close();
    return false;
  }
  uint64_t every = std::min<uint64_t>(1000, config_.idle_timeout_ms);
  uv_timer_start(
      &sweep_, [](uv_timer_t* t) { static_cast<MetricsServer*>(t->data)->onSweep(); }, every,
      every);
  log::info("metrics on http://{}:{}/metrics", config_.listen.host, config_.listen.port);
  return true;
}

void MetricsServer::onConnection(int status) {
  if (status != 0 || closed_) return;
  auto* c = new MetricsConn(this);
  conns_.insert(c);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_),
                reinterpret_cast<uv_stream_t*>(c->handle())) != 0) {
    c->close();
  } else if (conns_.size() > static_cast<size_t>(config_.max_connections)) {
    c->rejectBusy();
  } else {
    c->start();
  }
}

void MetricsServer::removeConn(MetricsConn* c) { conns_.erase(c); }

void MetricsServer::onSweep() {
  uint64_t now = uv_now(loop_);
  // close() frees nothing yet: the set stays as it is while this runs.
  for (MetricsConn* c : conns_) {
    if (now - c->lastActive() > config_.idle_timeout_ms) c->close();
  }
}

void MetricsServer::close() {
  if (!started_ || closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sweep_), nullptr);
  for (MetricsConn* c : conns_) c->close();
}

}  // namespace readthru
