// readthru: a Redis-compatible caching proxy. See README.md for the life of a request.
//
// Exit codes: 0 clean stop (SIGTERM/SIGINT) or a good --check-config; 1 bad command line or
// config; 2 cannot start (listen address in use, unix socket, ...); 3 objects left alive at exit
// (a bug). --help prints them too; keep the README's list the same.

#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "backends/upstream_conn.h"
#include "proxy/busy_poll.h"
#include "proxy/cache_registry.h"
#include "proxy/client_conn.h"
#include "proxy/config.h"
#include "proxy/config_reload.h"
#include "proxy/log.h"
#include "proxy/read_through.h"
#include "proxy/server.h"

namespace {

// libuv puts a signal's default action back when the last watcher of it stops, so while the
// server's loop winds down (its watchers closed, the process about to exit 0) a second SIGTERM
// or SIGINT would kill it, and a SIGHUP too. Watchers on a loop that never runs and is never
// closed keep libuv's handler installed for the life of the process; what they catch is dropped.
void holdSignalHandlers() {
  static uv_loop_t idle_loop;
  static uv_signal_t watchers[3];
  static const int kSignals[3] = {SIGTERM, SIGINT, SIGHUP};
  uv_loop_init(&idle_loop);
  for (int i = 0; i < 3; ++i) {
    uv_signal_init(&idle_loop, &watchers[i]);
    uv_signal_start(
        &watchers[i], [](uv_signal_t*, int) {}, kSignals[i]);
  }
}

void usage(FILE* f) {
  fprintf(f,
          "Usage: readthru [--config FILE] [--listen HOST:PORT] [--upstream HOST:PORT]\n"
          "                [--check-config] [--version] [--help]\n"
          "\n"
          "  --config FILE         TOML configuration (see conf/readthru.toml)\n"
          "  --listen HOST:PORT    address for clients (default 127.0.0.1:6380)\n"
          "  --upstream HOST:PORT  the Redis to forward to (default 127.0.0.1:6379)\n"
          "  --check-config        validate the configuration and exit\n"
          "  --version             print the version and exit\n"
          "  --help                print this help and exit\n"
          "\n"
          "Exit status:\n"
          "  0  stopped by SIGTERM or SIGINT, or --check-config found the configuration good\n"
          "  1  bad command line or configuration (protected mode refusing to listen beyond\n"
          "     loopback without a password included)\n"
          "  2  cannot start (listen address in use, unix socket cannot be opened, ...)\n"
          "  3  objects left alive at exit (a bug in readthru)\n");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace readthru;
  Config config;
  ConfigSource source;
  std::string& config_path = source.path;
  std::string& listen = source.listen;
  std::string& upstream = source.upstream;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) {
        fprintf(stderr, "readthru: %s needs a value\n", a.c_str());
        return false;
      }
      *out = argv[++i];
      return true;
    };
    if (a == "--config" || a == "-c") {
      if (!value(&config_path)) return 1;
    } else if (a == "--listen") {
      if (!value(&listen)) return 1;
    } else if (a == "--upstream") {
      if (!value(&upstream)) return 1;
    } else if (a == "--check-config") {
      check_only = true;
    } else if (a == "--version" || a == "-v") {
      printf("readthru %s\n", READTHRU_VERSION);
      return 0;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "readthru: unknown option '%s'\n", a.c_str());
      usage(stderr);
      return 1;
    }
  }
  HostPort checked;
  if (!listen.empty() && !parseHostPort(listen, &checked)) {
    fprintf(stderr, "readthru: --listen '%s' is not HOST:PORT\n", listen.c_str());
    return 1;
  }
  if (!upstream.empty() && !parseHostPort(upstream, &checked)) {
    fprintf(stderr, "readthru: --upstream '%s' is not HOST:PORT\n", upstream.c_str());
    return 1;
  }
  // The same reading as a reload's (SIGHUP, READTHRU RELOAD): the file, then the overrides.
  std::string error;
  if (!loadConfig(source, &config, &error)) {
    fprintf(stderr, "readthru: bad config: %s\n", error.c_str());
    return 1;
  }
  log::Level level;
  log::parseLevel(config.log_level, &level);
  log::setLevel(level);
  log::Format format;
  log::parseFormat(config.log_format, &format);
  log::setFormat(format);
  if (!checkProtectedMode(config, &error)) {
    log::error("{}", error);
    return 1;
  }

  // A client that vanished must not kill the daemon on write: EPIPE is handled per connection.
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = 0;
  {
    // Opening the backends checks every loader's query against its database: part of the config.
    auto* registry = new CacheRegistry;
    if (!registry->open(&loop, config, &error) || check_only) {
      registry->close();
      uv_run(&loop, UV_RUN_DEFAULT);
      delete registry;
      uv_loop_close(&loop);
      if (!error.empty()) {
        fprintf(stderr, "readthru: bad config: %s\n", error.c_str());
        return 1;
      }
      printf("readthru: configuration OK\n");
      return 0;
    }
    holdSignalHandlers();
    Server server(&loop, config, registry, source);
    if (!server.start(&error)) {
      log::error("{}", error);
      server.shutdown("startup failure");
      rc = 2;
    }
    runEventLoop(&loop, &config.busy_poll_us);
  }
  if (uv_loop_close(&loop) != 0) {
    log::error("event loop still has open handles at exit");
    if (rc == 0) rc = 3;
  }
  if (ClientConn::liveCount() != 0 || backends::UpstreamConn::liveCount() != 0 ||
      ReadThrough::liveCount() != 0 || backends::SqliteBackend::liveCount() != 0 ||
      CacheRegistry::liveCount() != 0) {
    log::error(
        "objects alive at exit: {} clients, {} upstream connections, {} loads, {} backends, {} "
        "registries",
        ClientConn::liveCount(), backends::UpstreamConn::liveCount(), ReadThrough::liveCount(),
        backends::SqliteBackend::liveCount(), CacheRegistry::liveCount());
    if (rc == 0) rc = 3;
  }
  if (rc == 0) log::info("readthru stopped");
  return rc;
}
