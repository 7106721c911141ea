#include "proxy/server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "proxy/client_conn.h"
#include "proxy/log.h"
#include "resp/errors.h"

namespace readthru {

Server::Server(uv_loop_t* loop, Config& config, CacheRegistry* registry, ConfigSource source)
    : loop_(loop),
      config_(config),
      acl_(std::make_unique<Acl>(config)),
      flusher_(loop),
      pool_(loop, &flusher_, config),
      registry_(registry),
      read_through_(loop, config, registry, &pool_),
      write_behind_(loop, registry, &pool_),
      metrics_(loop, config.metrics, this),
      reloader_(loop, std::move(source), config,
                [this](Config&& next, RegistryRef r, std::string* error) {
                  return applyReload(std::move(next), std::move(r), error);
                }) {
  read_through_.setWriteBehind(&write_behind_);
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  uv_pipe_init(loop_, &unix_listener_, 0);
  unix_listener_.data = this;
  uv_timer_init(loop_, &idle_timer_);
  idle_timer_.data = this;
  uv_timer_init(loop_, &deadline_);
  deadline_.data = this;
  for (uv_signal_t* s : {&sigterm_, &sigint_, &sighup_}) {
    uv_signal_init(loop_, s);
    s->data = this;
  }
}

bool Server::start(std::string* error) {
  sockaddr_storage addr{};
  const char* host = config_.listen.host.c_str();
  if (uv_ip4_addr(host, config_.listen.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
      uv_ip6_addr(host, config_.listen.port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
    *error = fmt::format("listen address '{}' is not an IP address", config_.listen.host);
    return false;
  }
  int rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 511, [](uv_stream_t* s, int status) {
      static_cast<Server*>(s->data)->onConnection(s, status);
    });
  }
  if (rc != 0) {
    *error = fmt::format("cannot listen on {}:{}: {}", config_.listen.host, config_.listen.port,
                         uv_strerror(rc));
    return false;
  }
  if (!config_.unixsocket.empty() && !listenUnix(error)) return false;
  if (!metrics_.start(error)) return false;
  listening_ = true;
  pool_.start();
  write_behind_.start();
  uv_signal_start(
      &sigterm_, [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->shutdown("SIGTERM"); },
      SIGTERM);
  uv_signal_start(
      &sigint_, [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->shutdown("SIGINT"); },
      SIGINT);
  uv_signal_start(
      &sighup_, [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->reload("SIGHUP", {}); },
      SIGHUP);
  armIdleTimer();
  log::info("readthru {} listening on {}:{}, upstream {}:{}", READTHRU_VERSION, config_.listen.host,
            config_.listen.port, config_.upstream.host, config_.upstream.port);
  if (unix_bound_) log::info("listening on unix socket {}", config_.unixsocket);
  return true;
}

// Called once TCP listens: a second readthru started with the same config stops at the port in
// use before it could remove the first one's socket file.
bool Server::listenUnix(std::string* error) {
  const std::string& path = config_.unixsocket;  // under sun_path's size (checked by the config)
  auto fail = [&](const char* step, int uv_code) {
    *error = fmt::format("Failed opening Unix socket: {} {}: {}", step, path, uv_strerror(uv_code));
    return false;
  };
  // A socket file left behind by a readthru that did not stop cleanly would make bind fail:
  // remove it, as redis-server does. Anything else at that path is left alone (bind reports it).
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  // Bound here rather than by uv_pipe_bind, which reports a missing directory as EACCES.
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket", uv_translate_sys_error(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path.data(), path.size());
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    int rc = uv_translate_sys_error(errno);
    ::close(fd);
    return fail("bind", rc);
  }
  unix_bound_ = true;  // closeListener removes the file from here on
  if (config_.unixsocketperm != 0 && chmod(path.c_str(), config_.unixsocketperm) != 0) {
    int rc = uv_translate_sys_error(errno);
    ::close(fd);
    return fail("chmod", rc);
  }
  int rc = uv_pipe_open(&unix_listener_, fd);
  if (rc != 0) {
    ::close(fd);
    return fail("open", rc);
  }
  // The handle owns fd now; closeListener closes it.
  rc = uv_listen(
      reinterpret_cast<uv_stream_t*>(&unix_listener_), 511,
      [](uv_stream_t* s, int status) { static_cast<Server*>(s->data)->onConnection(s, status); });
  if (rc != 0) return fail("listen", rc);
  return true;
}

void Server::onConnection(uv_stream_t* listener, int status) {
  if (status != 0 || shutting_down_) return;
  bool unix_socket = listener == reinterpret_cast<uv_stream_t*>(&unix_listener_);
  auto* c = new ClientConn(this, next_client_id_++, unix_socket);
  if (uv_accept(listener, c->stream()) != 0) {
    ++clients_;  // close() ends in removeClient
    c->next_ = clients_head_;
    if (clients_head_ != nullptr) clients_head_->prev_ = c;
    clients_head_ = c;
    c->close();
    return;
  }
  bool full = static_cast<int>(clients_) >= config_.maxclients;
  ++clients_;
  c->next_ = clients_head_;
  if (clients_head_ != nullptr) clients_head_->prev_ = c;
  clients_head_ = c;
  if (full) {
    ++connections_rejected_;
    log::warning("max number of clients reached ({})", config_.maxclients);
    c->start(resp::err::kMaxClients);
  } else {
    ++connections_received_;
    c->start();
  }
}

std::vector<ClientConn*> Server::openClients() const {
  std::vector<ClientConn*> out;
  for (ClientConn* c = clients_head_; c != nullptr; c = c->next_) {
    if (!c->closing()) out.push_back(c);
  }
  std::reverse(out.begin(), out.end());  // the list keeps the newest first
  return out;
}

void Server::removeClient(ClientConn* c) {
  if (c->prev_ != nullptr) {
    c->prev_->next_ = c->next_;
  } else {
    clients_head_ = c->next_;
  }
  if (c->next_ != nullptr) c->next_->prev_ = c->prev_;
  --clients_;
  if (shutting_down_) maybeFinish();
}

void Server::armIdleTimer() {
  uv_timer_stop(&idle_timer_);
  if (config_.idle_timeout_ms == 0) return;
  uint64_t every = std::min<uint64_t>(1000, config_.idle_timeout_ms);
  uv_timer_start(
      &idle_timer_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->onIdleTimer(); }, every,
      every);
}

void Server::reload(std::string why, ConfigReloader::Done done) {
  reloader_.reload(std::move(why), std::move(done));
}

// Limits apply to existing clients too (they read the configuration as they go); users and
// requirepass as replaceUsers() says.
bool Server::applyReload(Config&& next, RegistryRef registry, std::string* error) {
  if (shutting_down_) {
    *error = "readthru is shutting down";
    return false;
  }
  registry->adoptStats(*registry_);
  // In place: clients hold on to parts of it (their parser limits).
  config_ = std::move(next);
  log::Level level;
  if (log::parseLevel(config_.log_level, &level)) log::setLevel(level);
  log::Format format;
  if (log::parseFormat(config_.log_format, &format)) log::setFormat(format);
  replaceUsers();
  read_through_.setRegistry(registry.get(), config_.negative_cache_entries);
  read_through_.slowlog()->setSlowerThan(config_.slowlog_log_slower_than_us);
  read_through_.slowlog()->setMaxLen(config_.slowlog_max_len);
  write_behind_.setRegistry(registry.get());
  // The old registry lives on while loads, writes and flushes that started with it run.
  registry_ = std::move(registry);
  armIdleTimer();
  return true;
}

// As Redis's ACL LOAD: clients of a user that is gone or changed are disconnected, the others
// (and the default user's, which changes in place) keep their user under its new rules.
void Server::replaceUsers() {
  auto acl = std::make_unique<Acl>(config_);
  acl->adoptCounters(*acl_);
  for (ClientConn* c = clients_head_; c != nullptr;) {
    ClientConn* next = c->next_;
    if (!c->rebindUser(*acl)) {
      log::info("closing client id={}: its user was removed or changed by the reload", c->id());
      c->close();
    }
    c = next;
  }
  acl_ = std::move(acl);
}

size_t Server::pinnedClientCount() const {
  size_t n = 0;
  for (const ClientConn* c = clients_head_; c != nullptr; c = c->next_) n += c->pinned() ? 1 : 0;
  return n;
}

double Server::uptimeSeconds() const {
  return static_cast<double>(uv_hrtime() - started_ns_) / 1e9;
}

void Server::onIdleTimer() {
  uint64_t now = uv_now(loop_);
  for (ClientConn* c = clients_head_; c != nullptr;) {
    ClientConn* next = c->next_;
    if (!c->idleExempt() && now - c->lastActive() > config_.idle_timeout_ms) {
      log::debug("closing idle client id={}", c->id());
      c->close();
    }
    c = next;
  }
}

void Server::shutdown(const char* why) {
  if (shutting_down_) {
    log::warning("{} again: closing every client now", why);
    for (ClientConn* c = clients_head_; c != nullptr; c = c->next_) c->close();
    return;
  }
  shutting_down_ = true;
  reloader_.close();
  if (!listening_) {
    maybeFinish();  // never started: nothing to drain
    return;
  }
  log::info("{} received: no new connections; finishing the replies owed (up to {} ms)", why,
            config_.shutdown_timeout_ms);
  closeListener();
  uv_timer_stop(&idle_timer_);
  for (ClientConn* c = clients_head_; c != nullptr; c = c->next_) c->drainAndClose();
  uv_timer_start(
      &deadline_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Server*>(t->data);
        log::warning("shutdown deadline reached: closing {} clients", self->clients_);
        self->write_behind_.abandonDrain();
        for (ClientConn* c = self->clients_head_; c != nullptr;) {
          ClientConn* next = c->next_;
          c->close();
          c = next;
        }
      },
      config_.shutdown_timeout_ms, 0);
  maybeFinish();
}

void Server::closeListener() {
  // The handle exists from the constructor on, listening or not.
  if (listener_closed_) return;
  listener_closed_ = true;
  listening_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&unix_listener_), nullptr);
  // Remove the socket file, as redis-server does at shutdown: a client trying it now finds no
  // file rather than a socket nobody accepts on.
  if (unix_bound_) unlink(config_.unixsocket.c_str());
  unix_bound_ = false;
}

void Server::maybeFinish() {
  if (finished_ || clients_ > 0) return;
  if (!drained_) {
    // Write-behind flushes what is queued first (its flushers need the upstream and backends).
    if (draining_) return;
    draining_ = true;
    write_behind_.drain([this] {
      drained_ = true;
      maybeFinish();
    });
    return;
  }
  finished_ = true;
  write_behind_.close();
  // Loads still running finish on the backends' threads and are dropped; no fill follows. The
  // registries a reload replaced close too, if loads or writes still hold them.
  read_through_.close();
  CacheRegistry::closeAll();
  pool_.close();
  flusher_.close();
  closeListener();
  metrics_.close();
  for (uv_handle_t* h :
       {reinterpret_cast<uv_handle_t*>(&idle_timer_), reinterpret_cast<uv_handle_t*>(&deadline_),
        reinterpret_cast<uv_handle_t*>(&sigterm_), reinterpret_cast<uv_handle_t*>(&sigint_),
        reinterpret_cast<uv_handle_t*>(&sighup_)}) {
    uv_close(h, nullptr);
  }
  // A SIGTERM from here on is caught and dropped by main's holdSignalHandlers.
}

}  // namespace readthru
