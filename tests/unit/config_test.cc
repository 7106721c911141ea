#include "proxy/config.h"

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "tests/unit/test_bad_config.h"
#include "tests/unit/test_temp_dir.h"

namespace readthru {
namespace {

using test::TempDir;

TEST_CASE("config: parseDuration") {
  struct Case {
    std::string_view text;
    uint64_t ms;
  };
  for (const Case& c :
       {Case{"250ms", 250}, Case{"0ms", 0}, Case{"30s", 30000}, Case{"0", 0}, Case{"15", 15000},
        Case{"2m", 120000}, Case{"1h", 3600000}, Case{"1d", 86400000}, Case{"10d", 864000000}}) {
    CAPTURE(c.text);
    uint64_t ms = 7;
    CHECK(parseDuration(c.text, &ms));
    CHECK(ms == c.ms);
  }
  for (std::string_view bad : {"", "s", "ms", "-1s", "+1s", " 1s", "1s ", "1 s", "1.5s", "1w",
                               "1sec", "1ms5", "1mss", "99999999999999999999999s"}) {
    CAPTURE(bad);
    uint64_t ms = 7;
    CHECK_FALSE(parseDuration(bad, &ms));
    CHECK(ms == 7);  // untouched on failure
  }
}

TEST_CASE("config: parseSize") {
  struct Case {
    std::string_view text;
    uint64_t bytes;
  };
  for (const Case& c :
       {Case{"100", 100}, Case{"0", 0}, Case{"2b", 2}, Case{"1k", 1000}, Case{"64kb", 65536},
        Case{"1m", 1000000}, Case{"512mb", 512ull * 1024 * 1024}, Case{"1g", 1000000000},
        Case{"1gb", 1024ull * 1024 * 1024}, Case{"4GB", 4ull * 1024 * 1024 * 1024},
        Case{"8Mb", 8ull * 1024 * 1024}, Case{"3K", 3000}}) {
    CAPTURE(c.text);
    uint64_t bytes = 7;
    CHECK(parseSize(c.text, &bytes));
    CHECK(bytes == c.bytes);
  }
  for (std::string_view bad : {"", "mb", "-1", "+1", "1 mb", " 1mb", "1.5mb", "1tb", "1kib", "1bb",
                               "99999999999999999999999"}) {
    CAPTURE(bad);
    uint64_t bytes = 7;
    CHECK_FALSE(parseSize(bad, &bytes));
    CHECK(bytes == 7);
  }
}

// A number that fits in 64 bits but whose product with the unit does not wraps around instead of
// being refused: "213503982335d" is 18446744073744000000 ms, stored as 34448384 (under 10 hours);
// "17179869184gb" is 2^64 bytes, stored as 0 (which means "no limit" for some keys).
TEST_CASE("config: durations and sizes that overflow 64 bits") {
  uint64_t ms = 7;
  CHECK_FALSE(parseDuration("213503982335d", &ms));
  uint64_t bytes = 7;
  CHECK_FALSE(parseSize("17179869184gb", &bytes));
}

TEST_CASE("config: parseHostPort") {
  struct Case {
    std::string_view text;
    std::string host;
    int port;
  };
  for (const Case& c :
       {Case{"127.0.0.1:6379", "127.0.0.1", 6379}, Case{"localhost:0", "localhost", 0},
        Case{"redis.internal:65535", "redis.internal", 65535}, Case{"[::1]:6380", "::1", 6380},
        Case{"0.0.0.0:1", "0.0.0.0", 1}}) {
    CAPTURE(c.text);
    HostPort hp;
    CHECK(parseHostPort(c.text, &hp));
    CHECK(hp.host == c.host);
    CHECK(hp.port == c.port);
  }
  for (std::string_view bad :
       {"", "localhost", ":6379", "localhost:", "localhost:65536", "localhost:-1", "localhost:+1",
        "localhost:63 79", "localhost:6379x", "[::1]", "localhost:99999999999"}) {
    CAPTURE(bad);
    HostPort hp{"untouched", 1};
    CHECK_FALSE(parseHostPort(bad, &hp));
    CHECK(hp.host == "untouched");
    CHECK(hp.port == 1);
  }
}

TEST_CASE("config: a file setting every key") {
  TempDir dir;
  std::string path = dir.write("readthru.toml", R"(# every key, none at its default
listen = "0.0.0.0:7000"
requirepass = "s3cret"
log_level = "warning"
shutdown_timeout = "5s"
busy_poll = 50

[upstream]
address = "[::1]:6390"
username = "proxy"
password = "hunter2"
connections = 4
connect_timeout = "250ms"
command_timeout = 60

[limits]
maxclients = 50
timeout = "2m"
max_pending_requests = 10
client_query_buffer_limit = "64mb"
proto_max_bulk_len = "1gb"
max_multibulk_len = 1000
max_inline_len = "16kb"
client_output_buffer_limit_normal = 0
client_output_buffer_limit_pubsub = "16mb 4mb 30"

[metrics]
listen = "[::1]:9200"
idle_timeout = "3s"
max_connections = 2
)");
  Config c;
  std::string error;
  REQUIRE(loadConfigFile(path, &c, &error));
  CHECK(error == "");
  CHECK(c.listen.host == "0.0.0.0");
  CHECK(c.listen.port == 7000);
  CHECK(c.requirepass == "s3cret");
  CHECK(c.log_level == "warning");
  CHECK(c.shutdown_timeout_ms == 5000);
  CHECK(c.busy_poll_us == 50);
  CHECK(c.upstream.host == "::1");
  CHECK(c.upstream.port == 6390);
  CHECK(c.upstream_username == "proxy");
  CHECK(c.upstream_password == "hunter2");
  CHECK(c.upstream_connections == 4);
  CHECK(c.connect_timeout_ms == 250);
  CHECK(c.command_timeout_ms == 60000);
  CHECK(c.maxclients == 50);
  CHECK(c.idle_timeout_ms == 120000);
  CHECK(c.max_pending_requests == 10);
  CHECK(c.query_buffer_limit == 64ull * 1024 * 1024);
  CHECK(c.parser.max_bulk == 1024ll * 1024 * 1024);
  CHECK(c.parser.max_multibulk == 1000);
  CHECK(c.parser.max_inline == 16 * 1024);
  CHECK(c.output_hard_limit_normal == 0);
  CHECK(c.output_hard_limit_pubsub == 16ull * 1024 * 1024);
  CHECK(c.output_soft_limit_pubsub == 4ull * 1024 * 1024);
  CHECK(c.output_soft_seconds_pubsub == 30);
  CHECK(c.metrics.enabled);
  CHECK(c.metrics.listen.host == "::1");
  CHECK(c.metrics.listen.port == 9200);
  CHECK(c.metrics.idle_timeout_ms == 3000);
  CHECK(c.metrics.max_connections == 2);
}

TEST_CASE("config: [metrics] is off by default and with listen = \"\"") {
  TempDir dir;
  for (std::string_view text : {"", "[metrics]\n", "[metrics]\nlisten = \"\"\n"}) {
    CAPTURE(text);
    Config c;
    std::string error;
    REQUIRE(loadConfigFile(dir.write("metrics.toml", text), &c, &error));
    CHECK_FALSE(c.metrics.enabled);
    CHECK(c.metrics.idle_timeout_ms == 10000);
    CHECK(c.metrics.max_connections == 16);
  }
}

TEST_CASE("config: refresh-ahead is on by default, and off for a loader without a TTL") {
  TempDir dir;
  const std::string head =
      "[backends.main]\nkind = \"sqlite\"\npath = \"app.db\"\n\n[[loaders]]\nname = \"u\"\n"
      "key = \"u:{id}\"\nbackend = \"main\"\nquery = \"SELECT 1\"\n";
  struct Case {
    std::string_view extra;
    double refresh_ahead;
  };
  for (const Case& c : {Case{"", LoaderConfig::kDefaultRefreshAhead}, Case{"ttl = \"0s\"\n", 0},
                        Case{"refresh_ahead = 0\n", 0}, Case{"refresh_ahead = 0.3\n", 0.3}}) {
    CAPTURE(c.extra);
    Config config;
    std::string error;
    REQUIRE_MESSAGE(
        loadConfigFile(dir.write("r.toml", head + std::string(c.extra)), &config, &error), error);
    REQUIRE(config.loaders.size() == 1);
    CHECK(config.loaders[0].refresh_ahead == c.refresh_ahead);
  }
  CHECK(LoaderConfig::kDefaultRefreshAhead == 0.1);
}

TEST_CASE("config: [upstream] tls keys; the files are read only with tls = true") {
  TempDir dir;
  std::string text = R"([upstream]
tls = false
tls_ca_cert_file = "certs/ca.pem"
tls_ca_cert_dir = "/etc/ssl/certs"
tls_cert_file = "../client.crt"
tls_key_file = "client.key"
tls_server_name = "redis.example"
tls_verify = false
)";
  Config c;
  std::string error;
  REQUIRE(loadConfigFile(dir.write("conf/readthru.toml", text), &c, &error));
  const std::string conf = (dir.path() / "conf").string();
  CHECK_FALSE(c.upstream_tls.enabled);
  CHECK(c.upstream_tls.ca_cert_file == conf + "/certs/ca.pem");
  CHECK(c.upstream_tls.ca_cert_dir == "/etc/ssl/certs");
  CHECK(c.upstream_tls.cert_file == dir.path().string() + "/client.crt");
  CHECK(c.upstream_tls.key_file == conf + "/client.key");
  CHECK(c.upstream_tls.server_name == "redis.example");
  CHECK_FALSE(c.upstream_tls.verify);
  CHECK(c.upstream_tls_context == nullptr);  // off: nothing read, nothing built

  text.replace(text.find("tls = false"), 11, "tls = true");
  Config on;
  std::string path = dir.write("conf/readthru.toml", text);
  CHECK_FALSE(loadConfigFile(path, &on, &error));
  CHECK(error == path + ":3:20: 'upstream.tls_ca_cert_file': cannot read " + conf +
                     "/certs/ca.pem: No such file or directory");

  Config defaults;
  REQUIRE(loadConfigFile(dir.write("plain.toml", "[upstream]\ntls = false\n"), &defaults, &error));
  CHECK(defaults.upstream_tls.verify);
  CHECK(defaults.upstream_tls.ca_cert_file.empty());
  CHECK(defaults.upstream_tls_context == nullptr);
}

TEST_CASE("config: keys absent from the file keep their defaults") {
  TempDir dir;
  const Config defaults;
  for (std::string_view text :
       {"", "# nothing\n", "[upstream]\n", "[upstream]\nconnections = 8\n"}) {
    CAPTURE(text);
    Config c;
    std::string error;
    REQUIRE(loadConfigFile(dir.write("partial.toml", text), &c, &error));
    CHECK(c.listen.host == defaults.listen.host);
    CHECK(c.listen.port == defaults.listen.port);
    CHECK(c.upstream.port == defaults.upstream.port);
    CHECK(c.upstream_connections ==
          (text.find("8") != std::string_view::npos ? 8 : defaults.upstream_connections));
    CHECK(c.command_timeout_ms == defaults.command_timeout_ms);
    CHECK(c.parser.max_bulk == defaults.parser.max_bulk);
    CHECK(c.parser.max_inline == defaults.parser.max_inline);
    CHECK(c.parser.unauth_max_bulk == 16384);
    CHECK(c.output_hard_limit_pubsub == defaults.output_hard_limit_pubsub);
  }
}

TEST_CASE("config: a bad file is refused with file:line:column and the key") {
  const test::BadConfig cases[] = {
      {"[upstream]\nconnections = 100\n", "2:15: 'upstream.connections' must be between 1 and 64"},
      {"[upstream]\nconnections = \"4\"\n", "2:15: 'upstream.connections' must be an integer"},
      {"[upstream]\ntls = 1\n", "2:7: 'upstream.tls' must be true or false"},
      {"[upstream]\ntls_verify = \"no\"\n", "2:14: 'upstream.tls_verify' must be true or false"},
      {"[upstream]\ntls_ca_cert_file = \"\"\n",
       "2:20: 'upstream.tls_ca_cert_file' must not be empty (leave the key out instead)"},
      {"[upstream]\ntls = true\ntls_key_file = \"k.pem\"\n",
       "3:16: 'upstream.tls_key_file' needs 'upstream.tls_cert_file' too"},
      {"listen = \"127.0.0.1:6380\"\n\nbogus = 1\n", "3:1: unknown key 'bogus'"},
      {"[limits]\nmaxclients = 5\nmaxclient = 5\n", "3:1: unknown key 'limits.maxclient'"},
      {"listen = 6380\n", "1:10: 'listen' must be \"host:port\", e.g. \"127.0.0.1:6380\""},
      {"listen = \"localhost\"\n", "1:10: 'listen' must be \"host:port\", e.g. \"127.0.0.1:6380\""},
      {"[upstream]\naddress = \"h:70000\"\n",
       "2:11: 'upstream.address' must be \"host:port\", e.g. \"127.0.0.1:6380\""},
      {"requirepass = 5\n", "1:15: 'requirepass' must be a string"},
      {"log_level = \"loud\"\n",
       "1:13: 'log_level' must be one of \"debug\", \"info\", \"warning\", \"error\""},
      {"shutdown_timeout = \"5 seconds\"\n",
       "1:20: 'shutdown_timeout' must be a duration such as \"250ms\", \"30s\", \"5m\", \"1h\""},
      {"busy_poll = 1001\n", "1:13: 'busy_poll' must be between 0 and 1000"},
      {"busy_poll = \"50us\"\n", "1:13: 'busy_poll' must be an integer"},
      {"[upstream]\ncommand_timeout = -1\n",
       "2:19: 'upstream.command_timeout' must not be negative"},
      {"[limits]\nclient_query_buffer_limit = \"12 parsecs\"\n",
       "2:29: 'limits.client_query_buffer_limit' must be a size such as \"64kb\", \"512mb\", "
       "\"1gb\""},
      {"[limits]\nmax_inline_len = -5\n", "2:18: 'limits.max_inline_len' must not be negative"},
      {"[limits]\nmax_multibulk_len = 0\n",
       "2:21: 'limits.max_multibulk_len' must be between 1 and 9223372036854775807"},
      {"[limits]\nclient_output_buffer_limit_pubsub = \"32mb\"\n",
       "2:37: 'limits.client_output_buffer_limit_pubsub' must be \"<hard> <soft> <seconds>\", "
       "e.g. \"32mb 8mb 60\""},
      {"[limits]\nclient_output_buffer_limit_pubsub = \"32mb 8mb sixty\"\n",
       "2:37: 'limits.client_output_buffer_limit_pubsub' must be \"<hard> <soft> <seconds>\", "
       "e.g. \"32mb 8mb 60\""},
      {"upstream = \"127.0.0.1:6379\"\n", "1:1: 'upstream' must be a table"},
      // One problem is reported (keys are visited in name order, here also the file's).
      {"[upstream]\nbogus = 1\nconnections = 0\n", "2:1: unknown key 'upstream.bogus'"},
      {"[upstream]\n  password = 5\n", "2:14: 'upstream.password' must be a string"},
      {"[metrics]\nlisten = \"localhost:9121\"\n",
       "2:10: 'metrics.listen' must be \"<ip>:<port>\", e.g. \"127.0.0.1:9121\", or \"\" (off)"},
      {"[metrics]\nlisten = \"127.0.0.1:0\"\n",
       "2:10: 'metrics.listen' must be \"<ip>:<port>\", e.g. \"127.0.0.1:9121\", or \"\" (off)"},
      {"[metrics]\nlisten = 9121\n",
       "2:10: 'metrics.listen' must be \"<ip>:<port>\", e.g. \"127.0.0.1:9121\", or \"\" (off)"},
      {"[metrics]\nidle_timeout = \"0s\"\n", "2:16: 'metrics.idle_timeout' must be more than 0"},
      {"[metrics]\nmax_connections = 0\n",
       "2:19: 'metrics.max_connections' must be between 1 and 10000"},
      {"[metrics]\nport = 9121\n", "2:1: unknown key 'metrics.port'"},
      {"metrics = \"127.0.0.1:9121\"\n", "1:1: 'metrics' must be a table"},
  };
  test::checkRefused(cases);
}

TEST_CASE("config: a TOML syntax error names the file, line and column") {
  TempDir dir;
  struct Case {
    std::string text;
    std::string position;  // "line:column:"
  };
  for (const Case& c : {Case{"listen = \"127.0.0.1:6380\n", "1:"},
                        Case{"# ok\n[upstream\naddress = \"h:1\"\n", "2:"},
                        Case{"[limits]\nmaxclients = = 5\n", "2:"},
                        Case{"listen = \"a:1\"\nlisten = \"b:2\"\n", "2:"}}) {
    CAPTURE(c.text);
    std::string path = dir.write("syntax.toml", c.text);
    Config config;
    std::string error;
    CHECK_FALSE(loadConfigFile(path, &config, &error));
    CHECK(error.rfind(path + ":" + c.position, 0) == 0);
    // line:column: then toml++'s description
    std::string rest = error.substr(path.size() + c.position.size());
    CHECK(rest.find(':') != std::string::npos);
    CHECK(rest.size() > rest.find(':') + 2);
  }
}

TEST_CASE("config: a missing file is an error naming it") {
  TempDir dir;
  Config config;
  std::string error;
  std::string path =
      (std::filesystem::temp_directory_path() / "readthru-no-such-dir" / "x.toml").string();
  CHECK_FALSE(loadConfigFile(path, &config, &error));
  CHECK(error.rfind(path + ":", 0) == 0);
}

}  // namespace
}  // namespace readthru
