#include "proxy/config.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <toml++/toml.h>

#include <sys/un.h>

#include <charconv>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "proxy/acl.h"
#include "proxy/busy_poll.h"
#include "proxy/key_template.h"
#include "proxy/log.h"

namespace readthru {

bool parseDuration(std::string_view text, uint64_t* ms) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data()) return false;
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  uint64_t mult;
  if (unit == "ms") {
    mult = 1;
  } else if (unit == "s" || unit.empty()) {
    mult = 1000;
  } else if (unit == "m") {
    mult = 60 * 1000;
  } else if (unit == "h") {
    mult = 3600 * 1000;
  } else if (unit == "d") {
    mult = 86400 * 1000;
  } else {
    return false;
  }
  if (n > UINT64_MAX / mult) return false;
  *ms = n * mult;
  return true;
}

bool parseSize(std::string_view text, uint64_t* bytes) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data()) return false;
  std::string unit(end, static_cast<size_t>(text.data() + text.size() - end));
  for (auto& c : unit) c = static_cast<char>(tolower(c));
  static const std::map<std::string, uint64_t> kUnits = {
      {"", 1},           {"b", 1},
      {"k", 1000},       {"kb", 1024},
      {"m", 1000000},    {"mb", 1024 * 1024},
      {"g", 1000000000}, {"gb", 1024ull * 1024 * 1024},
  };
  auto it = kUnits.find(unit);
  if (it == kUnits.end() || n > UINT64_MAX / it->second) return false;
  *bytes = n * it->second;
  return true;
}

bool parseHostPort(std::string_view text, HostPort* out) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = 0;
  std::string_view p = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (ec != std::errc() || end != p.data() + p.size() || port < 0 || port > 65535) return false;
  out->host = std::string(host);
  out->port = port;
  return true;
}

namespace {

// 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104 (an IPv4 loopback address written as IPv6).
bool isLoopback(const std::string& host) {
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) != 1) return false;
  static const uint8_t kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(v6.s6_addr, kLoopback, 16) == 0 ||
         (std::memcmp(v6.s6_addr, kMapped, 12) == 0 && v6.s6_addr[12] == 127);
}

std::string where(const std::string& path, const toml::source_region& src) {
  return fmt::format("{}:{}:{}", path, src.begin.line, src.begin.column);
}

// Walks the parsed document against the known keys; each key knows how to read its value.
class ConfigReader {
 public:
  ConfigReader(const std::string& path, Config* c) : path_(path), c_(c) {}

  bool load(const toml::table& root, std::string* error) {
    using Setter = std::function<bool(const toml::node&)>;
    std::map<std::string, std::map<std::string, Setter>> keys;
    keys[""] = {
        {"listen", hostPort(&c_->listen)},
        {"requirepass", str(&c_->requirepass)},
        {"protected_mode",
         [this](const toml::node& n) {
           auto s = n.value<std::string>();
           if (n.is_boolean()) {
             c_->protected_mode = *n.value<bool>();
           } else if (s && n.is_string() && (*s == "yes" || *s == "no")) {
             c_->protected_mode = *s == "yes";
           } else {
             return bad(n, "must be \"yes\" or \"no\"");
           }
           return true;
         }},
        {"log_level",
         [this](const toml::node& n) {
           log::Level l;
           auto v = n.value<std::string>();
           if (!v || !log::parseLevel(*v, &l)) {
             return bad(n, "must be one of \"debug\", \"info\", \"warning\", \"error\"");
           }
           c_->log_level = *v;
           return true;
         }},
        {"log_format",
         [this](const toml::node& n) {
           log::Format f;
           auto v = n.value<std::string>();
           if (!v || !n.is_string() || !log::parseFormat(*v, &f)) {
             return bad(n, "must be \"text\" or \"json\"");
           }
           c_->log_format = *v;
           return true;
         }},
        {"slowlog_log_slower_than", integer(&c_->slowlog_log_slower_than_us, INT64_MIN, INT64_MAX)},
        {"slowlog_max_len", integer(&c_->slowlog_max_len, 0, 1000000)},
        {"shutdown_timeout", duration(&c_->shutdown_timeout_ms)},
        {"busy_poll", integer(&c_->busy_poll_us, 0, kMaxBusyPollUs)},
        {"unixsocket",
         [this](const toml::node& n) {
           if (!str(&c_->unixsocket)(n)) return false;
           // A longer path would not fit a socket address (libuv and Redis would cut it short).
           if (c_->unixsocket.size() >= sizeof(sockaddr_un::sun_path)) {
             return bad(n, fmt::format("is too long: a unix socket path must be under {} bytes",
                                       sizeof(sockaddr_un::sun_path)));
           }
           return true;
         }},
        {"unixsocketperm",
         [this](const toml::node& n) {
           // Written as in redis.conf (770 means 0770), or as a TOML octal number (0o770).
           const char* want = "must be permission bits in octal, e.g. 770 or 0o770";
           if (!n.is_integer()) return bad(n, want);
           int64_t v = *n.value<int64_t>();
           if (!!(n.as_integer()->flags() & toml::value_flags::format_as_octal)) {
             if (v < 0 || v > 0777) return bad(n, want);
             c_->unixsocketperm = static_cast<uint32_t>(v);
             return true;
           }
           if (v < 0 || v > 777) return bad(n, want);
           uint32_t perm = 0;
           for (int64_t rest = v, shift = 0; rest > 0; rest /= 10, shift += 3) {
             if (rest % 10 > 7) return bad(n, want);
             perm |= static_cast<uint32_t>(rest % 10) << shift;
           }
           c_->unixsocketperm = perm;
           return true;
         }},
    };
    keys["upstream"] = {
        {"address", hostPort(&c_->upstream)},
        {"username", str(&c_->upstream_username)},
        {"password", str(&c_->upstream_password)},
        {"connections", integer(&c_->upstream_connections, 1, 64)},
        {"connect_timeout", duration(&c_->connect_timeout_ms)},
        {"command_timeout", duration(&c_->command_timeout_ms)},
        {"tls", boolean(&c_->upstream_tls.enabled)},
        {"tls_ca_cert_file", tlsPath(&c_->upstream_tls.ca_cert_file)},
        {"tls_ca_cert_dir", tlsPath(&c_->upstream_tls.ca_cert_dir)},
        {"tls_cert_file", tlsPath(&c_->upstream_tls.cert_file)},
        {"tls_key_file", tlsPath(&c_->upstream_tls.key_file)},
        {"tls_server_name", str(&c_->upstream_tls.server_name)},
        {"tls_verify", boolean(&c_->upstream_tls.verify)},
    };
    keys["limits"] = {
        {"maxclients", integer(&c_->maxclients, 1, 1000000)},
        {"timeout", duration(&c_->idle_timeout_ms)},
        {"max_pending_requests", integer(&c_->max_pending_requests, 1, 1000000)},
        {"client_query_buffer_limit", size(&c_->query_buffer_limit)},
        {"proto_max_bulk_len", sizeSigned(&c_->parser.max_bulk)},
        {"max_multibulk_len", int64(&c_->parser.max_multibulk)},
        {"max_inline_len", sizeUnsigned(&c_->parser.max_inline)},
        {"client_output_buffer_limit_normal", size(&c_->output_hard_limit_normal)},
        {"negative_cache_entries", integer(&c_->negative_cache_entries, 0, 100000000)},
        {"client_output_buffer_limit_pubsub",
         [this](const toml::node& n) {
           // "hard soft seconds", as redis.conf's client-output-buffer-limit pubsub class.
           auto v = n.value<std::string>();
           if (!v) return bad(n, "must be a string \"<hard> <soft> <seconds>\"");
           std::string a, b, s;
           size_t p1 = v->find(' '), p2 = v->rfind(' ');
           if (p1 == std::string::npos || p1 == p2) {
             return bad(n, "must be \"<hard> <soft> <seconds>\", e.g. \"32mb 8mb 60\"");
           }
           a = v->substr(0, p1);
           b = v->substr(p1 + 1, p2 - p1 - 1);
           s = v->substr(p2 + 1);
           uint64_t secs = 0;
           if (!parseSize(a, &c_->output_hard_limit_pubsub) ||
               !parseSize(b, &c_->output_soft_limit_pubsub) || !parseSize(s, &secs)) {
             return bad(n, "must be \"<hard> <soft> <seconds>\", e.g. \"32mb 8mb 60\"");
           }
           c_->output_soft_seconds_pubsub = secs;
           return true;
         }},
    };
    keys["metrics"] = {
        {"listen",
         [this](const toml::node& n) {
           auto v = n.value<std::string>();
           MetricsConfig& m = c_->metrics;
           if (v && n.is_string() && v->empty()) {
             m.enabled = false;
             return true;
           }
           // The endpoint binds exactly what is written: a name would need a resolver at start.
           in6_addr ip;
           if (!v || !n.is_string() || !parseHostPort(*v, &m.listen) || m.listen.port == 0 ||
               (inet_pton(AF_INET, m.listen.host.c_str(), &ip) != 1 &&
                inet_pton(AF_INET6, m.listen.host.c_str(), &ip) != 1)) {
             return bad(n, "must be \"<ip>:<port>\", e.g. \"127.0.0.1:9121\", or \"\" (off)");
           }
           m.enabled = true;
           return true;
         }},
        {"idle_timeout",
         [this](const toml::node& n) {
           if (!duration(&c_->metrics.idle_timeout_ms)(n)) return false;
           // Unbounded, a peer could hold every metrics connection open for good.
           if (c_->metrics.idle_timeout_ms == 0) return bad(n, "must be more than 0");
           return true;
         }},
        {"max_connections", integer(&c_->metrics.max_connections, 1, 10000)},
    };
    for (auto&& [k, v] : root) {
      std::string key(k.str());
      if (key == "backends") {
        readBackends(k, v);
        if (!error_.empty()) break;
        continue;
      }
      if (key == "loaders") {
        readLoaders(k, v);
        if (!error_.empty()) break;
        continue;
      }
      if (key == "writers") {
        readWriters(k, v);
        if (!error_.empty()) break;
        continue;
      }
      if (key == "users") {
        readUsers(k, v);
        if (!error_.empty()) break;
        continue;
      }
      auto section = keys.find(key);
      if (section != keys.end() && key != "" && v.is_table()) {
        for (auto&& [k2, v2] : *v.as_table()) {
          std::string key2(k2.str());
          key_ = key + "." + key2;
          auto it = section->second.find(key2);
          if (it == section->second.end()) {
            fail(k2.source(), "unknown key '" + key_ + "'");
            break;
          }
          if (!it->second(v2)) break;
        }
      } else {
        key_ = key;
        auto it = keys[""].find(key);
        if (it == keys[""].end()) {
          fail(k.source(), section != keys.end() ? "'" + key + "' must be a table"
                                                 : "unknown key '" + key + "'");
        } else {
          it->second(v);
        }
      }
      if (!error_.empty()) break;
    }
    if (error_.empty()) checkLoaders();
    if (error_.empty()) checkUsers();
    if (error_.empty()) buildUpstreamTls(root);
    *error = error_;
    return error_.empty();
  }

 private:
  using Setter = std::function<bool(const toml::node&)>;

  // Reads one table's keys with `setters`; the error names `context` (a backend or loader).
  void readTable(const toml::table& t, const std::map<std::string, Setter>& setters) {
    for (auto&& [k, v] : t) {
      key_ = std::string(k.str());
      auto it = setters.find(key_);
      if (it == setters.end()) {
        fail(k.source(), "unknown key '" + key_ + "'");
        return;
      }
      if (!it->second(v)) return;
    }
  }

  void readBackends(const toml::key& k, const toml::node& v) {
    if (!v.is_table()) {
      fail(k.source(), "'backends' must hold tables, e.g. [backends.main]");
      return;
    }
    for (auto&& [name, t] : *v.as_table()) {
      context_ = fmt::format("backend '{}': ", name.str());
      if (!t.is_table()) {
        fail(name.source(), "must be a table, e.g. [backends.main]");
        return;
      }
      BackendConfig& b = c_->backends.emplace_back();
      b.name = std::string(name.str());
      b.where = where(path_, t.source());
      std::string path;
      bool has_path = false;
      readTable(*t.as_table(), {
                                   {"kind",
                                    [this, &b](const toml::node& n) {
                                      auto s = n.value<std::string>();
                                      if (!s || !n.is_string() || *s != "sqlite") {
                                        return bad(n, "must be \"sqlite\" (the only kind so far)");
                                      }
                                      b.kind = *s;
                                      return true;
                                    }},
                                   {"path",
                                    [this, &path, &has_path](const toml::node& n) {
                                      has_path = true;
                                      return str(&path)(n);
                                    }},
                                   {"workers", integer(&b.workers, 1, 64)},
                                   {"queue", integer(&b.queue, 1, 1000000)},
                                   {"cache_size", size(&b.cache_size)},
                                   {"nice", integer(&b.nice, -20, 19)},
                               });
      if (!error_.empty()) return;
      if (!has_path || path.empty()) {
        fail(t.source(), "'path' is required: the database file");
        return;
      }
      b.path = resolve(path);
    }
    context_.clear();
  }

  // A relative path is relative to the config file's directory.
  std::string resolve(const std::string& path) const {
    std::filesystem::path p(path);
    if (p.is_relative()) p = std::filesystem::path(path_).parent_path() / p;
    return p.lexically_normal().string();
  }

  // The required, non-empty `name` of a [[loaders]] or [[writers]] table; from here on every
  // error names it ("loader 'user': ...").
  bool readName(const toml::table& t, std::string_view what, std::string* name) {
    const toml::node* n = t.get("name");
    if (n == nullptr) {
      fail(t.source(), fmt::format("{} without 'name'", what));
      return false;
    }
    key_ = "name";
    if (!str(name)(*n)) return false;
    if (name->empty()) return bad(*n, "must not be empty");
    context_ = fmt::format("{} '{}': ", what, *name);
    return true;
  }

  void readLoaders(const toml::key& k, const toml::node& v) {
    if (!v.is_array_of_tables()) {
      fail(k.source(), "'loaders' must be an array of tables: write each as [[loaders]]");
      return;
    }
    for (auto&& el : *v.as_array()) {
      const toml::table& t = *el.as_table();
      LoaderConfig& l = c_->loaders.emplace_back();
      l.where = where(path_, t.source());
      context_.clear();
      if (!readName(t, "loader", &l.name)) return;
      readTable(t,
                {
                    {"name", [](const toml::node&) { return true; }},
                    {"key", str(&l.key)},
                    {"backend", str(&l.backend)},
                    {"query", str(&l.query)},
                    {"type",
                     [this, &l](const toml::node& n) {
                       auto s = n.value<std::string>();
                       if (s && n.is_string() && *s == "string") {
                         l.type = LoaderType::kString;
                       } else if (s && n.is_string() && *s == "json") {
                         l.type = LoaderType::kJson;
                       } else if (s && n.is_string() && *s == "hash") {
                         l.type = LoaderType::kHash;
                       } else {
                         return bad(n, "must be \"string\", \"json\" or \"hash\"");
                       }
                       return true;
                     }},
                    {"ttl", duration(&l.ttl_ms)},
                    {"jitter", duration(&l.jitter_ms)},
                    {"negative_ttl", duration(&l.negative_ttl_ms)},
                    {"timeout", duration(&l.timeout_ms)},
                    {"refresh_ahead",
                     [this, &l](const toml::node& n) {
                       auto v = n.value<double>();
                       if (!v || !(n.is_floating_point() || n.is_integer()) || *v < 0 || *v >= 1) {
                         return bad(n, "must be a fraction of the TTL, from 0 (off) to below 1");
                       }
                       l.refresh_ahead = *v;
                       return true;
                     }},
                });
      if (!error_.empty()) return;
      for (const char* required : {"key", "backend", "query"}) {
        if (t.get(required) == nullptr) {
          fail(t.source(), fmt::format("'{}' is required", required));
          return;
        }
      }
      KeyTemplate tmpl;
      std::string why;
      if (!KeyTemplate::parse(l.key, &tmpl, &why)) {
        fail(t.get("key")->source(), fmt::format("bad key template '{}': {}", l.key, why));
        return;
      }
      if (l.ttl_ms == 0 && l.jitter_ms > 0) {
        fail(t.get("jitter")->source(), "'jitter' needs a 'ttl' (ttl = \"0s\" means no expiry)");
        return;
      }
      // Redis refuses expiry times past 2^63 ms; stay far below it.
      constexpr uint64_t kMaxTtlMs = uint64_t{1} << 50;  // about 35,000 years
      if (l.ttl_ms > kMaxTtlMs || l.jitter_ms > kMaxTtlMs) {
        const char* which = l.ttl_ms > kMaxTtlMs ? "ttl" : "jitter";
        fail(t.get(which)->source(), fmt::format("'{}' is too large", which));
        return;
      }
      if (l.ttl_ms > 0 && l.jitter_ms >= l.ttl_ms) {
        fail(t.get("jitter")->source(), "'jitter' must be less than 'ttl'");
        return;
      }
      if (l.timeout_ms == 0) {
        fail(t.get("timeout")->source(), "'timeout' must be more than 0");
        return;
      }
      if (l.refresh_ahead > 0 && l.ttl_ms == 0) {
        if (t.get("refresh_ahead") == nullptr) {
          l.refresh_ahead = 0;  // the default: a value without expiry never needs a reload
        } else {
          fail(t.get("refresh_ahead")->source(),
               "'refresh_ahead' needs a 'ttl' (a value without expiry never needs a reload)");
          return;
        }
      }
    }
    context_.clear();
  }

  void readWriters(const toml::key& k, const toml::node& v) {
    if (!v.is_array_of_tables()) {
      fail(k.source(), "'writers' must be an array of tables: write each as [[writers]]");
      return;
    }
    for (auto&& el : *v.as_array()) {
      const toml::table& t = *el.as_table();
      WriterConfig& w = c_->writers.emplace_back();
      w.where = where(path_, t.source());
      context_.clear();
      if (!readName(t, "writer", &w.name)) return;
      readTable(t, {
                       {"name", [](const toml::node&) { return true; }},
                       {"key", str(&w.key)},
                       {"backend", str(&w.backend)},
                       {"upsert", str(&w.upsert)},
                       {"delete", str(&w.del)},
                       {"mode",
                        [this, &w](const toml::node& n) {
                          auto s = n.value<std::string>();
                          if (s && n.is_string() && *s == "through") {
                            w.mode = WriteMode::kThrough;
                          } else if (s && n.is_string() && *s == "behind") {
                            w.mode = WriteMode::kBehind;
                          } else {
                            return bad(n, "must be \"through\" or \"behind\"");
                          }
                          return true;
                        }},
                       {"timeout", duration(&w.timeout_ms)},
                       {"flush_interval", duration(&w.flush_interval_ms)},
                       {"batch", integer(&w.batch, 1, 100000)},
                       {"max_attempts", integer(&w.max_attempts, 1, 1000000)},
                   });
      if (!error_.empty()) return;
      for (const char* required : {"key", "backend", "upsert", "delete"}) {
        if (t.get(required) == nullptr) {
          fail(t.source(), fmt::format("'{}' is required", required));
          return;
        }
      }
      KeyTemplate tmpl;
      std::string why;
      if (!KeyTemplate::parse(w.key, &tmpl, &why)) {
        fail(t.get("key")->source(), fmt::format("bad key template '{}': {}", w.key, why));
        return;
      }
      if (w.timeout_ms == 0) {
        fail(t.get("timeout")->source(), "'timeout' must be more than 0");
        return;
      }
      if (w.flush_interval_ms == 0) {
        fail(t.get("flush_interval")->source(), "'flush_interval' must be more than 0");
        return;
      }
    }
    context_.clear();
  }

  // A list of strings, each checked by `check` (an ACL rule), so an error points at the element.
  Setter ruleList(std::vector<std::string>* out, bool (*check)(std::string_view, std::string*)) {
    return [this, out, check](const toml::node& n) {
      const toml::array* a = n.as_array();
      if (a == nullptr) return bad(n, "must be an array of strings");
      for (const toml::node& el : *a) {
        auto s = el.value<std::string>();
        if (!s || !el.is_string()) return bad(el, "must hold strings only");
        std::string why;
        if (!check(*s, &why)) {
          fail(el, fmt::format("'{}': {}", key_, why));
          return false;
        }
        out->push_back(*s);
      }
      return true;
    };
  }

  void readUsers(const toml::key& k, const toml::node& v) {
    if (!v.is_array_of_tables()) {
      fail(k.source(), "'users' must be an array of tables: write each as [[users]]");
      return;
    }
    for (auto&& el : *v.as_array()) {
      const toml::table& t = *el.as_table();
      UserConfig& u = c_->users.emplace_back();
      u.where = where(path_, t.source());
      context_.clear();
      if (!readName(t, "user", &u.name)) return;
      for (char c : u.name) {
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
          bad(*t.get("name"), "must not contain spaces or control characters");
          return;
        }
      }
      readTable(t, {
                       {"name", [](const toml::node&) { return true; }},
                       {"enabled",
                        [this, &u](const toml::node& n) {
                          if (!n.is_boolean()) return bad(n, "must be true or false");
                          u.enabled = *n.value<bool>();
                          return true;
                        }},
                       {"password",
                        [this, &u](const toml::node& n) {
                          u.has_password = true;
                          return str(&u.password)(n);
                        }},
                       {"password_sha256",
                        [this, &u](const toml::node& n) {
                          PasswordHash h;
                          auto s = n.value<std::string>();
                          if (!s || !n.is_string() || !parsePasswordHash(*s, &h)) {
                            return bad(n, "must be 64 hex digits (the SHA-256 of the password)");
                          }
                          u.password_sha256 = *s;
                          return true;
                        }},
                       {"commands", ruleList(&u.commands, aclCheckCommandRule)},
                       {"keys", ruleList(&u.keys, aclCheckKeyRule)},
                       {"deny_commands", ruleList(&u.deny_commands, aclCheckDenyCommand)},
                   });
      if (!error_.empty()) return;
      if (u.name != "default" && !u.has_password && u.password_sha256.empty()) {
        fail(t.source(), "'password' or 'password_sha256' is required");
        return;
      }
    }
    context_.clear();
  }

  void checkUsers() {
    std::set<std::string> names;
    for (const UserConfig& u : c_->users) {
      context_ = fmt::format("user '{}': ", u.name);
      if (!names.insert(u.name).second) {
        error_ = fmt::format("{}: {}the name is used by another user", u.where, context_);
        return;
      }
      std::vector<PasswordHash> hashes = configuredPasswordHashes(u);
      if (u.name == "default" && !c_->requirepass.empty() && !hashes.empty()) {
        PasswordHash required = sha256(c_->requirepass);
        bool same = false;
        for (const PasswordHash& h : hashes) same = same || hashesEqual(h, required);
        if (!same) {
          error_ = fmt::format(
              "{}: {}its password differs from requirepass, which is the default user's "
              "password too: set it in one place, or the same in both",
              u.where, context_);
          return;
        }
      }
    }
    context_.clear();
  }

  // What needs every table read first: names, references between tables.
  void checkLoaders() {
    std::set<std::string> names, keys;
    for (const LoaderConfig& l : c_->loaders) {
      context_ = fmt::format("loader '{}': ", l.name);
      bool found = false;
      for (const BackendConfig& b : c_->backends) found = found || b.name == l.backend;
      if (!found) {
        error_ = fmt::format("{}: {}unknown backend '{}' (define it as [backends.{}])", l.where,
                             context_, l.backend, l.backend);
        return;
      }
      if (!names.insert(l.name).second) {
        error_ = fmt::format("{}: {}the name is used by another loader", l.where, context_);
        return;
      }
      if (!keys.insert(l.key).second) {
        error_ =
            fmt::format("{}: {}another loader has the key template '{}'", l.where, context_, l.key);
        return;
      }
    }
    names.clear();
    keys.clear();
    for (const WriterConfig& w : c_->writers) {
      context_ = fmt::format("writer '{}': ", w.name);
      bool found = false;
      for (const BackendConfig& b : c_->backends) found = found || b.name == w.backend;
      if (!found) {
        error_ = fmt::format("{}: {}unknown backend '{}' (define it as [backends.{}])", w.where,
                             context_, w.backend, w.backend);
        return;
      }
      if (!names.insert(w.name).second) {
        error_ = fmt::format("{}: {}the name is used by another writer", w.where, context_);
        return;
      }
      if (!keys.insert(w.key).second) {
        error_ =
            fmt::format("{}: {}another writer has the key template '{}'", w.where, context_, w.key);
        return;
      }
    }
    context_.clear();
  }

  // [upstream] tls = true: builds the TLS context now, so a file that is missing, unreadable or
  // not what its key says stops readthru at start, naming the key.
  void buildUpstreamTls(const toml::table& root) {
    const backends::TlsOptions& o = c_->upstream_tls;
    if (!o.enabled) return;
    const toml::table* t = root["upstream"].as_table();
    auto at = [&](const std::string& option) -> const toml::node& {
      const toml::node* n = t->get("tls_" + option);
      return n != nullptr ? *n : *t->get("tls");
    };
    if (o.cert_file.empty() != o.key_file.empty()) {
      std::string given = o.cert_file.empty() ? "key_file" : "cert_file";
      std::string missing = o.cert_file.empty() ? "cert_file" : "key_file";
      fail(at(given), fmt::format("'upstream.tls_{}' needs 'upstream.tls_{}' too", given, missing));
      return;
    }
    backends::TlsContext::Error e;
    c_->upstream_tls_context = backends::TlsContext::create(o, &e);
    if (c_->upstream_tls_context == nullptr) {
      std::string key = e.option.empty() ? "upstream.tls" : "upstream.tls_" + e.option;
      fail(at(e.option), fmt::format("'{}': {}", key, e.message));
    }
  }

  void fail(const toml::node& n, const std::string& what) { fail(n.source(), what); }
  void fail(const toml::source_region& src, const std::string& what) {
    error_ = fmt::format("{}: {}{}", where(path_, src), context_, what);
  }
  bool bad(const toml::node& n, const std::string& what) {
    fail(n, "'" + key_ + "' " + what);
    return false;
  }
  std::function<bool(const toml::node&)> str(std::string* out) {
    return [this, out](const toml::node& n) {
      auto v = n.value<std::string>();
      if (!v || !n.is_string()) return bad(n, "must be a string");
      *out = *v;
      return true;
    };
  }
  std::function<bool(const toml::node&)> boolean(bool* out) {
    return [this, out](const toml::node& n) {
      if (!n.is_boolean()) return bad(n, "must be true or false");
      *out = *n.value<bool>();
      return true;
    };
  }
  // A file or directory of [upstream]'s TLS settings; read when the TLS context is built.
  std::function<bool(const toml::node&)> tlsPath(std::string* out) {
    return [this, out](const toml::node& n) {
      std::string path;
      if (!str(&path)(n)) return false;
      if (path.empty()) return bad(n, "must not be empty (leave the key out instead)");
      *out = resolve(path);
      return true;
    };
  }
  std::function<bool(const toml::node&)> hostPort(HostPort* out) {
    return [this, out](const toml::node& n) {
      auto v = n.value<std::string>();
      if (!v || !n.is_string() || !parseHostPort(*v, out)) {
        return bad(n, "must be \"host:port\", e.g. \"127.0.0.1:6380\"");
      }
      return true;
    };
  }
  std::function<bool(const toml::node&)> duration(uint64_t* out) {
    return [this, out](const toml::node& n) {
      if (n.is_integer()) {
        int64_t s = *n.value<int64_t>();
        if (s < 0) return bad(n, "must not be negative");
        if (static_cast<uint64_t>(s) > UINT64_MAX / 1000) return bad(n, "is too large");
        *out = static_cast<uint64_t>(s) * 1000;
        return true;
      }
      auto v = n.value<std::string>();
      if (!v || !n.is_string() || !parseDuration(*v, out)) {
        return bad(n, "must be a duration such as \"250ms\", \"30s\", \"5m\", \"1h\"");
      }
      return true;
    };
  }
  template <typename T>
  std::function<bool(const toml::node&)> integer(T* out, int64_t lo, int64_t hi) {
    return [this, out, lo, hi](const toml::node& n) {
      if (!n.is_integer()) return bad(n, "must be an integer");
      int64_t v = *n.value<int64_t>();
      if (v < lo || v > hi) return bad(n, fmt::format("must be between {} and {}", lo, hi));
      *out = static_cast<T>(v);
      return true;
    };
  }
  std::function<bool(const toml::node&)> int64(int64_t* out) { return integer(out, 1, INT64_MAX); }
  std::function<bool(const toml::node&)> size(uint64_t* out) {
    return [this, out](const toml::node& n) {
      if (n.is_integer()) {
        int64_t v = *n.value<int64_t>();
        if (v < 0) return bad(n, "must not be negative");
        *out = static_cast<uint64_t>(v);
        return true;
      }
      auto v = n.value<std::string>();
      if (!v || !n.is_string() || !parseSize(*v, out)) {
        return bad(n, "must be a size such as \"64kb\", \"512mb\", \"1gb\"");
      }
      return true;
    };
  }
  std::function<bool(const toml::node&)> sizeSigned(int64_t* out) {
    return [this, out](const toml::node& n) {
      uint64_t v = 0;
      if (!size(&v)(n)) return false;
      *out = static_cast<int64_t>(v);
      return true;
    };
  }
  std::function<bool(const toml::node&)> sizeUnsigned(size_t* out) {
    return [this, out](const toml::node& n) {
      uint64_t v = 0;
      if (!size(&v)(n)) return false;
      *out = static_cast<size_t>(v);
      return true;
    };
  }

  const std::string& path_;
  Config* c_;
  std::string key_;
  std::string context_;  // "loader 'user': " while reading a loader, for every error in it
  std::string error_;
};

}  // namespace

bool checkProtectedMode(const Config& config, std::string* error) {
  if (!config.protected_mode) return true;
  bool open = config.requirepass.empty();
  for (const UserConfig& u : config.users) {
    if (u.name == "default") {
      open = open && u.enabled && !u.has_password && u.password_sha256.empty();
    }
  }
  if (!open || isLoopback(config.listen.host)) return true;
  *error = fmt::format(
      "refusing to start: protected mode is on, and readthru would listen on {}:{}, beyond "
      "loopback, with no password for the default user, so anyone who can reach that address "
      "could use it. Either set requirepass (or give the default user a password in "
      "[[users]]), or listen on 127.0.0.1, or, if every client that can reach the address may "
      "use readthru, set protected_mode = \"no\" in the config",
      config.listen.host, config.listen.port);
  return false;
}

bool loadConfigFile(const std::string& path, Config* config, std::string* error) {
  toml::table root;
  try {
    // toml++ reports syntax errors by exception; this runs once at start, off the data path.
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& src = e.source();
    *error = fmt::format("{}:{}:{}: {}", path, src.begin.line, src.begin.column, e.description());
    return false;
  }
  ConfigReader reader(path, config);
  return reader.load(root, error);
}

}  // namespace readthru
