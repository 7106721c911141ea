#include "proxy/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <charconv>
#include <functional>
#include <map>

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

// Walks the parsed document against the known keys; each key knows how to read its value.
class Loader {
 public:
  Loader(const std::string& path, Config* c) : path_(path), c_(c) {}

  bool load(const toml::table& root, std::string* error) {
    using Setter = std::function<bool(const toml::node&)>;
    std::map<std::string, std::map<std::string, Setter>> keys;
    keys[""] = {
        {"listen", hostPort(&c_->listen)},
        {"requirepass", str(&c_->requirepass)},
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
        {"shutdown_timeout", duration(&c_->shutdown_timeout_ms)},
    };
    keys["upstream"] = {
        {"address", hostPort(&c_->upstream)},
        {"username", str(&c_->upstream_username)},
        {"password", str(&c_->upstream_password)},
        {"connections", integer(&c_->upstream_connections, 1, 64)},
        {"connect_timeout", duration(&c_->connect_timeout_ms)},
        {"command_timeout", duration(&c_->command_timeout_ms)},
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
    for (auto&& [k, v] : root) {
      std::string key(k.str());
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
    *error = error_;
    return error_.empty();
  }

 private:
  void fail(const toml::node& n, const std::string& what) { fail(n.source(), what); }
  void fail(const toml::source_region& src, const std::string& what) {
    error_ = fmt::format("{}:{}:{}: {}", path_, src.begin.line, src.begin.column, what);
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
  std::string error_;
};

}  // namespace

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
  Loader loader(path, config);
  return loader.load(root, error);
}

}  // namespace readthru
