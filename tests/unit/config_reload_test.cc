// The pure parts of a configuration reload: reading (file, then overrides), the settings only a
// restart can change, and the description of what a new configuration changes.

#include "proxy/config_reload.h"

#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/unit/test_temp_dir.h"

namespace readthru {
namespace {

using test::TempDir;

LoaderConfig loader(std::string name, std::string query) {
  LoaderConfig l;
  l.name = std::move(name);
  l.key = l.name + ":{id}";
  l.backend = "main";
  l.query = std::move(query);
  return l;
}

bool has(const std::vector<std::string>& lines, const std::string& line) {
  for (const std::string& l : lines) {
    if (l == line) return true;
  }
  return false;
}

TEST_CASE("config reload: the file is read first, then the command line's overrides") {
  TempDir dir;
  std::string path = dir.write("r.toml",
                               "listen = \"127.0.0.1:7000\"\n"
                               "[upstream]\naddress = \"127.0.0.1:7001\"\n"
                               "[limits]\nmaxclients = 5\n");
  Config c;
  std::string error;
  REQUIRE_MESSAGE(loadConfig({path, "", ""}, &c, &error), error);
  CHECK(c.listen.port == 7000);
  CHECK(c.upstream.port == 7001);
  CHECK(c.maxclients == 5);

  Config o;
  REQUIRE_MESSAGE(loadConfig({path, "127.0.0.1:8000", "10.0.0.1:8001"}, &o, &error), error);
  CHECK(o.listen.port == 8000);
  CHECK(o.upstream.host == "10.0.0.1");
  CHECK(o.upstream.port == 8001);
  CHECK(o.maxclients == 5);

  Config defaults;
  REQUIRE(loadConfig({}, &defaults, &error));
  CHECK(defaults.listen.port == 6380);

  Config bad;
  CHECK_FALSE(loadConfig({path, "nonsense", ""}, &bad, &error));
  CHECK(error == "--listen 'nonsense' is not HOST:PORT");
  CHECK_FALSE(
      loadConfig({dir.write("bad.toml", "maxclients = 1\n[limits\n"), "", ""}, &bad, &error));
  CHECK(error.find("bad.toml:2:") != std::string::npos);
}

TEST_CASE("config reload: restart-only settings keep their running values, each one told") {
  Config running;
  running.listen = {"127.0.0.1", 6380};
  running.unixsocket = "/run/a.sock";
  running.unixsocketperm = 0770;
  running.upstream_password = "secret1";
  Config next = running;
  CHECK(keepRestartSettings(running, &next).empty());

  next.listen = {"0.0.0.0", 7000};
  next.unixsocket = "/run/b.sock";
  next.unixsocketperm = 0777;
  next.upstream = {"10.0.0.9", 6379};
  next.upstream_username = "app";
  next.upstream_password = "secret2";
  next.upstream_connections = 4;
  next.connect_timeout_ms = 5000;
  next.command_timeout_ms = 0;
  // Reloadable ones are left as the new file has them.
  next.maxclients = 7;
  next.requirepass = "pw";
  next.loaders.push_back(loader("user", "SELECT 1"));

  std::vector<std::string> lines = keepRestartSettings(running, &next);
  CHECK(lines.size() == 9);
  CHECK(has(lines,
            "'listen' changed (127.0.0.1:6380 -> 0.0.0.0:7000): needs a restart; keeping "
            "127.0.0.1:6380"));
  CHECK(has(lines,
            "'unixsocket' changed (\"/run/a.sock\" -> \"/run/b.sock\"): needs a restart; keeping "
            "\"/run/a.sock\""));
  CHECK(has(lines, "'unixsocketperm' changed (770 -> 777): needs a restart; keeping 770"));
  CHECK(has(lines,
            "'upstream.address' changed (127.0.0.1:6379 -> 10.0.0.9:6379): needs a restart; "
            "keeping 127.0.0.1:6379"));
  CHECK(has(lines, "'upstream.password' changed: needs a restart; keeping the running value"));
  CHECK(has(lines, "'upstream.connections' changed (1 -> 4): needs a restart; keeping 1"));
  CHECK(has(lines,
            "'upstream.command_timeout' changed (30000ms -> 0ms): needs a restart; keeping "
            "30000ms"));
  for (const std::string& l : lines) CHECK(l.find("secret") == std::string::npos);

  CHECK(next.listen.host == "127.0.0.1");
  CHECK(next.listen.port == 6380);
  CHECK(next.unixsocket == "/run/a.sock");
  CHECK(next.unixsocketperm == 0770);
  CHECK(next.upstream.host == "127.0.0.1");
  CHECK(next.upstream_username.empty());
  CHECK(next.upstream_password == "secret1");
  CHECK(next.upstream_connections == 1);
  CHECK(next.connect_timeout_ms == 2000);
  CHECK(next.command_timeout_ms == 30000);
  CHECK(next.maxclients == 7);
  CHECK(next.requirepass == "pw");
  CHECK(next.loaders.size() == 1);
  CHECK(keepRestartSettings(running, &next).empty());
}

TEST_CASE("config reload: the changes are told by name, secrets never shown") {
  Config running;
  running.requirepass = "old-secret";
  running.loaders = {loader("user", "SELECT 1"), loader("gone", "SELECT 2"),
                     loader("same", "SELECT 3")};
  WriterConfig w;
  w.name = "cart";
  running.writers = {w};
  BackendConfig b;
  b.name = "main";
  b.path = "/a.db";
  running.backends = {b};

  Config next = running;
  CHECK(describeChanges(running, next).empty());

  next.requirepass = "new-secret";
  next.maxclients = 50;
  next.log_level = "debug";
  next.loaders = {loader("user", "SELECT 1"), loader("same", "SELECT 3"),
                  loader("added", "SELECT 4")};
  next.loaders[0].ttl_ms = 5000;
  next.writers[0].mode = WriteMode::kBehind;
  next.backends[0].path = "/b.db";
  std::vector<std::string> lines = describeChanges(running, next);
  CHECK(lines == std::vector<std::string>{
                     "requirepass changed",
                     "log_level info -> debug",
                     "maxclients 10000 -> 50",
                     "backend 'main' changed",
                     "loader 'user' changed",
                     "loader 'added' added",
                     "loader 'gone' removed",
                     "writer 'cart' changed",
                 });
  for (const std::string& l : lines) CHECK(l.find("secret") == std::string::npos);

  // A backend whose page cache alone changes is changed too.
  Config cached = running;
  cached.backends[0].cache_size = 64 << 20;
  CHECK(describeChanges(running, cached) == std::vector<std::string>{"backend 'main' changed"});
  // And one whose workers' nice level alone does.
  Config niced = running;
  niced.backends[0].nice = -5;
  CHECK(describeChanges(running, niced) == std::vector<std::string>{"backend 'main' changed"});
}

}  // namespace
}  // namespace readthru
