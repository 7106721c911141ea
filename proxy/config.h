#pragma once
// Config: the TOML file (--config), overridden by --listen/--upstream, with defaults that work
// out of the box. Every key is documented in conf/readthru.toml. A bad file is rejected whole
// with file, line, column and key; the daemon never half-starts.

#include <cstdint>
#include <string>
#include <string_view>

#include "resp/request_parser.h"

namespace readthru {

struct HostPort {
  std::string host;
  int port = 0;
};

struct Config {
  HostPort listen{"127.0.0.1", 6380};
  std::string requirepass;
  std::string log_level = "info";
  uint64_t shutdown_timeout_ms = 10000;

  HostPort upstream{"127.0.0.1", 6379};
  std::string upstream_username;
  std::string upstream_password;
  int upstream_connections = 1;
  uint64_t connect_timeout_ms = 2000;
  uint64_t command_timeout_ms = 30000;

  int maxclients = 10000;
  uint64_t idle_timeout_ms = 0;     // redis.conf `timeout`; 0: never
  int max_pending_requests = 1024;  // per client; reading pauses beyond it
  uint64_t query_buffer_limit = 1024ull * 1024 * 1024;
  uint64_t output_hard_limit_normal = 1024ull * 1024 * 1024;  // 0: none
  uint64_t output_hard_limit_pubsub = 32ull * 1024 * 1024;
  uint64_t output_soft_limit_pubsub = 8ull * 1024 * 1024;
  uint64_t output_soft_seconds_pubsub = 60;
  resp::ParserLimits parser;
};

// Parses "1h", "30s", "250ms", "2m", "1d" (and a bare number of seconds) into milliseconds.
bool parseDuration(std::string_view text, uint64_t* ms);
// Parses redis.conf sizes: "512mb", "64kb", "1gb", "100" (bytes), "1k" (1000).
bool parseSize(std::string_view text, uint64_t* bytes);
bool parseHostPort(std::string_view text, HostPort* out);

// Loads `path` over the defaults in `config`. On failure returns false and sets `error` to a
// message naming the file, line, column and key.
bool loadConfigFile(const std::string& path, Config* config, std::string* error);

}  // namespace readthru
