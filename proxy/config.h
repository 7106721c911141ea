#pragma once
// Config: the TOML file (--config), overridden by --listen/--upstream, with defaults that work
// out of the box. Every key is documented in conf/readthru.toml. A bad file is rejected whole
// with file, line, column and key; the daemon never half-starts.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/tls_context.h"
#include "resp/request_parser.h"

namespace readthru {

struct HostPort {
  std::string host;
  int port = 0;
};

// [backends.<name>]: a database the loaders read from.
struct BackendConfig {
  std::string name;
  std::string where;  // "file:line:column" of the table, for errors found after parsing
  std::string kind = "sqlite";
  std::string path;  // resolved against the config file's directory
  size_t workers = 2;
  size_t queue = 1024;
  uint64_t cache_size = 0;  // bytes of page cache per connection; 0: SQLite's default (2 MB)
  int nice = 0;             // the workers' nice level (SqliteOptions::nice)
};

// How a loader turns its row into a Redis value.
enum class LoaderType : uint8_t {
  kString,  // the first column as is
  kJson,    // the row as a JSON object
  kHash,    // columns -> hash fields (NULL columns omitted)
};

// [[loaders]]: the read-through rule for one key template.
struct LoaderConfig {
  std::string name;
  std::string where;  // "file:line:column" of the table
  std::string key;    // the key template, e.g. "user:{id}"
  std::string backend;
  std::string query;
  LoaderType type = LoaderType::kString;
  uint64_t ttl_ms = 3600 * 1000;         // 0: no expiry
  uint64_t jitter_ms = 0;                // the stored TTL is uniform in ttl +/- jitter
  uint64_t negative_ttl_ms = 30 * 1000;  // 0: absent rows are not remembered
  uint64_t timeout_ms = 2000;            // from when the load is queued
  // Refresh-ahead: once less than this fraction of a value's TTL is left, the next read that
  // hits it reloads it in the background. 0: off. On by default, so a hot key's readers never
  // wait for its load; 0 for a loader without a TTL unless set (then it is a config error).
  static constexpr double kDefaultRefreshAhead = 0.1;
  double refresh_ahead = kDefaultRefreshAhead;
};

enum class WriteMode : uint8_t {
  kThrough,  // the database first, then Redis, then the reply
  kBehind,   // Redis and a durable queue entry at once; the database later, in batches
};

// [[writers]]: the write rule for one key template.
struct WriterConfig {
  std::string name;
  std::string where;  // "file:line:column" of the table
  std::string key;
  std::string backend;
  WriteMode mode = WriteMode::kThrough;
  std::string upsert;
  std::string del;                   // the `delete` statement
  uint64_t timeout_ms = 5000;        // one database write or batch
  uint64_t flush_interval_ms = 500;  // behind
  size_t batch = 500;                // behind: about this many writes per flush
  int max_attempts = 10;             // behind: then the dead-letter stream
};

// [metrics]: the HTTP endpoint for Prometheus (GET /metrics) and health checks (GET /healthz).
struct MetricsConfig {
  bool enabled = false;              // listen = "" (the default): no endpoint
  HostPort listen;                   // an IP address and a port above 0
  uint64_t idle_timeout_ms = 10000;  // a request must arrive whole within this, or the
                                     // connection is closed
  int max_connections = 16;          // more are answered 503 and closed
};

// [[users]]: one of readthru's own users (AUTH <name> <password>); see proxy/acl.h.
struct UserConfig {
  std::string name;
  std::string where;  // "file:line:column" of the table
  bool enabled = true;
  bool has_password = false;
  std::string password;               // plain text; kept only as its SHA-256 once readthru runs
  std::string password_sha256;        // 64 hex digits, or empty
  std::vector<std::string> commands;  // ACL command rules, in order ("+@all", "-keys")
  std::vector<std::string> keys;      // key patterns ("~user:*", "%R~product:*")
  std::vector<std::string> deny_commands;  // each applied as "-<name>" after `commands`
};

struct Config {
  HostPort listen{"127.0.0.1", 6380};
  std::string requirepass;
  // Refuse to start when listening beyond loopback while the default user has no password.
  bool protected_mode = true;
  std::string log_level = "info";
  std::string log_format = "text";  // "text" (redis-server's line format) or "json"
  uint64_t shutdown_timeout_ms = 10000;
  // After an event, poll for the next one this many microseconds before blocking, while few
  // clients are active (busy_poll.h); 0: never. Up to kMaxBusyPollUs.
  uint64_t busy_poll_us = 0;
  // A unix socket clients can connect to besides `listen`, as redis.conf's unixsocket; empty:
  // none. A relative path is relative to the working directory, as with redis-server.
  std::string unixsocket;
  // Its permission bits (0700 ...), as redis.conf's unixsocketperm; 0: what the umask leaves.
  uint32_t unixsocketperm = 0;

  HostPort upstream{"127.0.0.1", 6379};
  std::string upstream_username;
  std::string upstream_password;
  int upstream_connections = 1;
  uint64_t connect_timeout_ms = 2000;
  uint64_t command_timeout_ms = 30000;
  backends::TlsOptions upstream_tls;  // [upstream] tls, tls_*; paths resolved
  // Built by loadConfigFile when upstream_tls.enabled (every file read and checked then); null:
  // plain TCP. Shared by every upstream connection.
  std::shared_ptr<const backends::TlsContext> upstream_tls_context;

  int maxclients = 10000;
  uint64_t idle_timeout_ms = 0;     // redis.conf `timeout`; 0: never
  int max_pending_requests = 1024;  // per client; reading pauses beyond it
  uint64_t query_buffer_limit = 1024ull * 1024 * 1024;
  uint64_t output_hard_limit_normal = 1024ull * 1024 * 1024;  // 0: none
  uint64_t output_hard_limit_pubsub = 32ull * 1024 * 1024;
  uint64_t output_soft_limit_pubsub = 8ull * 1024 * 1024;
  uint64_t output_soft_seconds_pubsub = 60;
  resp::ParserLimits parser;
  size_t negative_cache_entries = 100000;

  MetricsConfig metrics;
  // The loader slowlog (READTHRU SLOWLOG), as redis.conf's slowlog-log-slower-than and
  // slowlog-max-len: loads taking at least this many microseconds are kept (0: every load;
  // negative: none), the newest slowlog_max_len of them.
  int64_t slowlog_log_slower_than_us = 10000;
  size_t slowlog_max_len = 128;

  std::vector<BackendConfig> backends;
  std::vector<LoaderConfig> loaders;
  std::vector<WriterConfig> writers;
  std::vector<UserConfig> users;
};

// Parses "1h", "30s", "250ms", "2m", "1d" (and a bare number of seconds) into milliseconds.
bool parseDuration(std::string_view text, uint64_t* ms);
// Parses redis.conf sizes: "512mb", "64kb", "1gb", "100" (bytes), "1k" (1000).
bool parseSize(std::string_view text, uint64_t* bytes);
bool parseHostPort(std::string_view text, HostPort* out);

// Protected mode (as redis-server's, but at start): false with `error` set when `config`
// listens on an address beyond loopback (127.0.0.0/8, ::1) while the default user needs no
// password and protected_mode is on.
bool checkProtectedMode(const Config& config, std::string* error);

// Loads `path` over the defaults in `config`. On failure returns false and sets `error` to a
// message naming the file, line, column and key.
bool loadConfigFile(const std::string& path, Config* config, std::string* error);

}  // namespace readthru
