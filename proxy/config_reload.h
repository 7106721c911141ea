#pragma once
// ConfigReload: reading the configuration again while readthru runs (SIGHUP, READTHRU RELOAD),
// without dropping a client or a load in flight.
//
//   reload() --> a libuv worker thread: read the file, apply the command line's overrides, open
//                a new CacheRegistry: its databases, every query and statement prepared (what a
//                start and --check-config do, off the event loop, which never waits for a disk)
//            --> the loop: start the registry's threads; settings only a restart can change
//                (listeners, upstream connections) keep their running values, and the log says
//                so; the server swaps the configuration and the registry in (Server::applyReload)
//            --> "configuration reloaded (N loaders, M writers, K backends)", or
//                "reload rejected: <reason>; keeping the running configuration"
//
// A bad file, a query that does not prepare, a database that does not open: the running
// configuration stays, whole. One reload runs at a time; triggers that come meanwhile are
// answered together by one more reload after it, which reads the file as it is then.

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/config.h"
#include "proxy/registry_ref.h"

namespace readthru {

// Where the configuration comes from: the file and the command line's overrides.
struct ConfigSource {
  std::string path;      // --config; empty: the defaults alone
  std::string listen;    // --listen HOST:PORT; empty: the file's
  std::string upstream;  // --upstream HOST:PORT; empty: the file's
};

// The defaults, then the file, then the overrides: how a start and a reload read the
// configuration. False with *error naming the file, line, column and key (or the bad override).
[[nodiscard]] bool loadConfig(const ConfigSource& source, Config* config, std::string* error);

// Settings a running readthru cannot change (listen, unixsocket, unixsocketperm, the [upstream]
// table): `next` gets `running`'s values back. Returns a line for each one `next` had changed,
// naming it (and its values, passwords apart) and saying it needs a restart.
std::vector<std::string> keepRestartSettings(const Config& running, Config* next);

// What `next` changes, a line each: "loader 'user' added", "writer 'cart' changed",
// "backend 'old' removed", "maxclients 10000 -> 500", "requirepass changed" (never a password).
std::vector<std::string> describeChanges(const Config& running, const Config& next);

class ConfigReloader {
 public:
  // Runs on the loop thread when the reload is over: `error` empty when the new configuration is
  // running, else why it was rejected.
  using Done = std::function<void(const std::string& error)>;
  // Swaps the new configuration (restart-only settings already kept) and its started registry in.
  // False with *error when it cannot (readthru is stopping): the registry is then freed.
  using Apply = std::function<bool(Config&& next, RegistryRef registry, std::string* error)>;

  // `running` is the configuration in force (read on the loop thread only).
  ConfigReloader(uv_loop_t* loop, ConfigSource source, const Config& running, Apply apply);
  ~ConfigReloader();
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Reloads; while a reload runs, one more is queued to follow it. `why` names the trigger in
  // the log. `done` (may be empty) runs once, later, or at once when readthru is stopping.
  void reload(std::string why, Done done);
  // Readthru is stopping: no reload starts any more; queued triggers and the one running (when
  // it ends: the loop runs until then) are answered with an error.
  void close();

 private:
  struct Job;
  void startJob();
  void finish(Job* job);

  uv_loop_t* loop_;
  ConfigSource source_;
  const Config& running_;
  Apply apply_;
  Job* job_ = nullptr;        // the reload on a worker thread, if any
  bool again_ = false;        // another trigger came meanwhile
  std::string again_why_;     // the first of those triggers
  std::vector<Done> queued_;  // their callbacks
  bool closed_ = false;
};

}  // namespace readthru
