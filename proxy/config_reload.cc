#include "proxy/config_reload.h"

#include <fmt/format.h>

#include <algorithm>

#include "proxy/cache_registry.h"
#include "proxy/log.h"

namespace readthru {
namespace {

std::string hostPort(const HostPort& a) { return fmt::format("{}:{}", a.host, a.port); }

bool operator==(const HostPort& a, const HostPort& b) {
  return a.host == b.host && a.port == b.port;
}

bool operator==(const BackendConfig& a, const BackendConfig& b) {
  return a.kind == b.kind && a.path == b.path && a.workers == b.workers && a.queue == b.queue &&
         a.cache_size == b.cache_size && a.nice == b.nice;
}

bool operator==(const LoaderConfig& a, const LoaderConfig& b) {
  return a.key == b.key && a.backend == b.backend && a.query == b.query && a.type == b.type &&
         a.ttl_ms == b.ttl_ms && a.jitter_ms == b.jitter_ms &&
         a.negative_ttl_ms == b.negative_ttl_ms && a.timeout_ms == b.timeout_ms &&
         a.refresh_ahead == b.refresh_ahead;
}

bool operator==(const WriterConfig& a, const WriterConfig& b) {
  return a.key == b.key && a.backend == b.backend && a.mode == b.mode && a.upsert == b.upsert &&
         a.del == b.del && a.timeout_ms == b.timeout_ms &&
         a.flush_interval_ms == b.flush_interval_ms && a.batch == b.batch &&
         a.max_attempts == b.max_attempts;
}

bool operator==(const UserConfig& a, const UserConfig& b) {
  return a.name == b.name && a.enabled == b.enabled && a.has_password == b.has_password &&
         a.password == b.password && a.password_sha256 == b.password_sha256 &&
         a.commands == b.commands && a.keys == b.keys && a.deny_commands == b.deny_commands;
}

bool operator==(const MetricsConfig& a, const MetricsConfig& b) {
  return a.enabled == b.enabled && a.listen == b.listen && a.idle_timeout_ms == b.idle_timeout_ms &&
         a.max_connections == b.max_connections;
}

bool operator==(const backends::TlsOptions& a, const backends::TlsOptions& b) {
  return a.enabled == b.enabled && a.ca_cert_file == b.ca_cert_file &&
         a.ca_cert_dir == b.ca_cert_dir && a.cert_file == b.cert_file && a.key_file == b.key_file &&
         a.server_name == b.server_name && a.verify == b.verify;
}

// Named tables (backends, loaders, writers, users): added, changed, removed, in the new file's
// order and then the old one's.
template <typename T>
void diffNamed(std::string_view what, const std::vector<T>& before, const std::vector<T>& after,
               std::vector<std::string>* out) {
  auto find = [](const std::vector<T>& v, const std::string& name) -> const T* {
    for (const T& x : v) {
      if (x.name == name) return &x;
    }
    return nullptr;
  };
  for (const T& x : after) {
    const T* old = find(before, x.name);
    if (old == nullptr) {
      out->push_back(fmt::format("{} '{}' added", what, x.name));
    } else if (!(*old == x)) {
      out->push_back(fmt::format("{} '{}' changed", what, x.name));
    }
  }
  for (const T& x : before) {
    if (find(after, x.name) == nullptr)
      out->push_back(fmt::format("{} '{}' removed", what, x.name));
  }
}

}  // namespace

bool loadConfig(const ConfigSource& source, Config* config, std::string* error) {
  if (!source.path.empty() && !loadConfigFile(source.path, config, error)) return false;
  if (!source.listen.empty() && !parseHostPort(source.listen, &config->listen)) {
    *error = fmt::format("--listen '{}' is not HOST:PORT", source.listen);
    return false;
  }
  if (!source.upstream.empty() && !parseHostPort(source.upstream, &config->upstream)) {
    *error = fmt::format("--upstream '{}' is not HOST:PORT", source.upstream);
    return false;
  }
  return true;
}

std::vector<std::string> keepRestartSettings(const Config& running, Config* next) {
  std::vector<std::string> out;
  // `shown`: the values, or "" for secrets (only the change is told).
  auto keep = [&out](std::string_view name, auto* next_value, const auto& running_value,
                     auto show) {
    if (*next_value == running_value) return;
    std::string was = show(running_value);
    std::string wanted = show(*next_value);
    if (was.empty() && wanted.empty()) {
      out.push_back(fmt::format("'{}' changed: needs a restart; keeping the running value", name));
    } else {
      out.push_back(fmt::format("'{}' changed ({} -> {}): needs a restart; keeping {}", name, was,
                                wanted, was));
    }
    *next_value = running_value;
  };
  auto asis = [](const auto& v) { return fmt::format("{}", v); };
  auto quoted = [](const std::string& v) { return fmt::format("\"{}\"", v); };
  auto secret = [](const std::string&) { return std::string(); };
  auto ms = [](uint64_t v) { return fmt::format("{}ms", v); };
  keep("listen", &next->listen, running.listen, hostPort);
  keep("unixsocket", &next->unixsocket, running.unixsocket, quoted);
  keep("unixsocketperm", &next->unixsocketperm, running.unixsocketperm,
       [](uint32_t v) { return fmt::format("{:o}", v); });
  keep("upstream.address", &next->upstream, running.upstream, hostPort);
  keep("upstream.username", &next->upstream_username, running.upstream_username, quoted);
  keep("upstream.password", &next->upstream_password, running.upstream_password, secret);
  keep("upstream.connections", &next->upstream_connections, running.upstream_connections, asis);
  keep("upstream.connect_timeout", &next->connect_timeout_ms, running.connect_timeout_ms, ms);
  keep("upstream.command_timeout", &next->command_timeout_ms, running.command_timeout_ms, ms);
  // The files are read again at a restart only, even when their names stay the same.
  keep("upstream.tls", &next->upstream_tls, running.upstream_tls,
       [](const backends::TlsOptions&) { return std::string(); });
  next->upstream_tls_context = running.upstream_tls_context;
  keep("metrics", &next->metrics, running.metrics,
       [](const MetricsConfig&) { return std::string(); });
  return out;
}

std::vector<std::string> describeChanges(const Config& running, const Config& next) {
  std::vector<std::string> out;
  auto setting = [&out](std::string_view name, const auto& was, const auto& now) {
    if (!(was == now)) out.push_back(fmt::format("{} {} -> {}", name, was, now));
  };
  if (running.requirepass != next.requirepass) out.push_back("requirepass changed");
  setting("log_level", running.log_level, next.log_level);
  setting("log_format", running.log_format, next.log_format);
  setting("slowlog_log_slower_than", running.slowlog_log_slower_than_us,
          next.slowlog_log_slower_than_us);
  setting("slowlog_max_len", running.slowlog_max_len, next.slowlog_max_len);
  setting("shutdown_timeout_ms", running.shutdown_timeout_ms, next.shutdown_timeout_ms);
  setting("busy_poll", running.busy_poll_us, next.busy_poll_us);
  setting("maxclients", running.maxclients, next.maxclients);
  setting("timeout_ms", running.idle_timeout_ms, next.idle_timeout_ms);
  setting("max_pending_requests", running.max_pending_requests, next.max_pending_requests);
  setting("client_query_buffer_limit", running.query_buffer_limit, next.query_buffer_limit);
  setting("proto_max_bulk_len", running.parser.max_bulk, next.parser.max_bulk);
  setting("max_multibulk_len", running.parser.max_multibulk, next.parser.max_multibulk);
  setting("max_inline_len", running.parser.max_inline, next.parser.max_inline);
  setting("client_output_buffer_limit_normal", running.output_hard_limit_normal,
          next.output_hard_limit_normal);
  setting("client_output_buffer_limit_pubsub hard", running.output_hard_limit_pubsub,
          next.output_hard_limit_pubsub);
  setting("client_output_buffer_limit_pubsub soft", running.output_soft_limit_pubsub,
          next.output_soft_limit_pubsub);
  setting("client_output_buffer_limit_pubsub seconds", running.output_soft_seconds_pubsub,
          next.output_soft_seconds_pubsub);
  setting("negative_cache_entries", running.negative_cache_entries, next.negative_cache_entries);
  diffNamed("backend", running.backends, next.backends, &out);
  diffNamed("loader", running.loaders, next.loaders, &out);
  diffNamed("writer", running.writers, next.writers, &out);
  diffNamed("user", running.users, next.users, &out);
  return out;
}

struct ConfigReloader::Job {
  uv_work_t req;
  ConfigReloader* owner;
  ConfigSource source;
  std::string why;
  std::vector<Done> waiters;
  // Filled on the worker thread; the loop thread reads them only in the after-work callback.
  Config config;
  CacheRegistry* registry;  // made on the loop thread (registries are tracked there)
  bool ok = false;
  std::string error;
};

ConfigReloader::ConfigReloader(uv_loop_t* loop, ConfigSource source, const Config& running,
                               Apply apply)
    : loop_(loop), source_(std::move(source)), running_(running), apply_(std::move(apply)) {}

// The loop runs until a job's after-work callback has run, so none is left here.
ConfigReloader::~ConfigReloader() = default;

void ConfigReloader::reload(std::string why, Done done) {
  if (closed_) {
    log::info("{}: not reloading the configuration: readthru is shutting down", why);
    if (done) done("readthru is shutting down");
    return;
  }
  if (job_ != nullptr) {
    if (!again_) again_why_ = std::move(why);
    again_ = true;
    if (done) queued_.push_back(std::move(done));
    return;
  }
  again_why_ = std::move(why);
  if (done) queued_.push_back(std::move(done));
  startJob();
}

void ConfigReloader::startJob() {
  auto* job = new Job;
  job->req.data = job;
  job->owner = this;
  job->source = source_;
  job->why = std::move(again_why_);
  job->waiters.swap(queued_);
  job->registry = new CacheRegistry;
  again_ = false;
  again_why_.clear();
  log::info("{}: reloading the configuration{}", job->why,
            source_.path.empty() ? " (no --config: the defaults)" : " from " + source_.path);
  int rc = uv_queue_work(
      loop_, &job->req,
      [](uv_work_t* req) {
        // A worker thread: only the job's own objects are touched here.
        auto* j = static_cast<Job*>(req->data);
        j->ok = loadConfig(j->source, &j->config, &j->error) &&
                j->registry->prepare(j->config, &j->error);
      },
      [](uv_work_t* req, int) {
        auto* j = static_cast<Job*>(req->data);
        j->owner->finish(j);
      });
  job_ = job;
  if (rc != 0) {
    // The callbacks never run: finish here, as a rejected reload.
    job->error = fmt::format("cannot start the reload: {}", uv_strerror(rc));
    finish(job);
  }
}

void ConfigReloader::finish(Job* job) {
  std::unique_ptr<Job> owned(job);
  job_ = nullptr;
  RegistryRef registry(job->registry);  // frees it, unless the server takes it
  bool ok = job->ok;
  std::string error = std::move(job->error);
  if (closed_) {
    ok = false;
    error = "readthru is shutting down";
  }
  if (ok) ok = registry->start(loop_, &error);
  size_t loaders = registry->loaders().size();
  size_t writers = registry->writers().size();
  size_t backends = registry->backendCount();
  if (ok) {
    std::vector<std::string> restart = keepRestartSettings(running_, &job->config);
    std::vector<std::string> changes = describeChanges(running_, job->config);
    // What would stop a start stops a reload: no password on a listener beyond loopback.
    ok = checkProtectedMode(job->config, &error) &&
         apply_(std::move(job->config), std::move(registry), &error);
    if (ok) {
      for (const std::string& line : changes) log::info("reload: {}", line);
      for (const std::string& line : restart) log::warning("reload: {}", line);
    }
  }
  if (ok) {
    log::info("configuration reloaded ({} loaders, {} writers, {} backends)", loaders, writers,
              backends);
  } else {
    log::warning("reload rejected: {}; keeping the running configuration", error);
  }
  for (Done& d : job->waiters) {
    if (d) d(ok ? std::string() : error);
  }
  if (again_ && !closed_) startJob();
}

void ConfigReloader::close() {
  if (closed_) return;
  closed_ = true;
  again_ = false;
  std::vector<Done> queued;
  queued.swap(queued_);
  for (Done& d : queued) {
    if (d) d("readthru is shutting down");
  }
}

}  // namespace readthru
