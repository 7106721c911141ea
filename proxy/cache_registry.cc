#include "proxy/cache_registry.h"

#include <fmt/format.h>

#include <algorithm>

namespace readthru {

bool CacheRegistry::open(uv_loop_t* loop, const Config& config, std::string* error) {
  for (const BackendConfig& b : config.backends) {
    backends::SqliteOptions o;
    o.path = b.path;
    o.workers = b.workers;
    o.queue_limit = b.queue;
    std::string why;
    backends::SqliteBackend* sqlite = backends::SqliteBackend::open(loop, o, &why);
    if (sqlite == nullptr) {
      *error = fmt::format("{}: backend '{}': {}", b.where, b.name, why);
      close();
      return false;
    }
    backends_.push_back({&b, sqlite, nullptr});
    bool written = std::any_of(config.writers.begin(), config.writers.end(),
                               [&b](const WriterConfig& w) { return w.backend == b.name; });
    if (written) {
      o.read_write = true;
      o.workers = 1;
      o.max_rows = 0;
      backends::SqliteBackend* writer = backends::SqliteBackend::open(loop, o, &why);
      if (writer == nullptr) {
        *error = fmt::format("{}: backend '{}' (for writers): {}", b.where, b.name, why);
        close();
        return false;
      }
      backends_.back().writer = writer;
    }
  }
  for (const LoaderConfig& l : config.loaders) {
    auto fail = [&](const std::string& why) {
      *error = fmt::format("{}: loader '{}': {}", l.where, l.name, why);
      loaders_.clear();
      close();
      return false;
    };
    auto b = std::find_if(backends_.begin(), backends_.end(),
                          [&](const Backend& x) { return x.config->name == l.backend; });
    if (b == backends_.end()) return fail(fmt::format("unknown backend '{}'", l.backend));
    KeyTemplate tmpl;
    std::string why;
    if (!KeyTemplate::parse(l.key, &tmpl, &why)) {
      return fail(fmt::format("bad key template '{}': {}", l.key, why));
    }
    std::vector<std::string> params;
    if (!b->sqlite->validate(l.query, &params, &why)) {
      return fail(fmt::format("the query does not prepare: {}", why));
    }
    for (const std::string& p : params) {
      const auto& names = tmpl.captureNames();
      if (std::find(names.begin(), names.end(), std::string_view(p).substr(1)) == names.end()) {
        return fail(fmt::format("the query's parameter {} is not captured by the key template '{}'",
                                p, l.key));
      }
    }
    loaders_.push_back(std::make_unique<Loader>(l, std::move(tmpl), b->sqlite, params));
  }
  for (const WriterConfig& w : config.writers) {
    auto fail = [&](const std::string& why) {
      *error = fmt::format("{}: writer '{}': {}", w.where, w.name, why);
      loaders_.clear();
      writers_.clear();
      close();
      return false;
    };
    auto b = std::find_if(backends_.begin(), backends_.end(),
                          [&](const Backend& x) { return x.config->name == w.backend; });
    if (b == backends_.end()) return fail(fmt::format("unknown backend '{}'", w.backend));
    KeyTemplate tmpl;
    std::string why;
    if (!KeyTemplate::parse(w.key, &tmpl, &why)) {
      return fail(fmt::format("bad key template '{}': {}", w.key, why));
    }
    std::vector<std::string> upsert_params, delete_params;
    if (!b->writer->validate(w.upsert, &upsert_params, &why)) {
      return fail(fmt::format("the upsert does not prepare: {}", why));
    }
    if (!b->writer->validate(w.del, &delete_params, &why)) {
      return fail(fmt::format("the delete does not prepare: {}", why));
    }
    const auto& names = tmpl.captureNames();
    for (const std::string& p : delete_params) {
      if (std::find(names.begin(), names.end(), std::string_view(p).substr(1)) == names.end()) {
        return fail(fmt::format(
            "the delete's parameter {} is not captured by the key template '{}'", p, w.key));
      }
    }
    writers_.push_back(
        std::make_unique<Writer>(w, std::move(tmpl), b->writer, upsert_params, delete_params));
  }
  return true;
}

Writer* CacheRegistry::findWriter(std::string_view key) {
  for (auto& w : writers_) {
    if (w->match(key, &scratch_)) return w.get();
  }
  return nullptr;
}

void CacheRegistry::close(std::function<void()> done) {
  // The loaders stay: loads still in flight report to them until the backends have finished.
  size_t n = 0;
  for (Backend& b : backends_) n += b.writer != nullptr ? 2 : 1;
  auto left = std::make_shared<size_t>(n);
  if (n == 0 && done) done();
  for (Backend& b : backends_) {
    for (backends::SqliteBackend* s : {b.sqlite, b.writer}) {
      if (s == nullptr) continue;
      s->close([left, done] {
        if (--*left == 0 && done) done();
      });
    }
  }
  backends_.clear();
}

Loader* CacheRegistry::find(std::string_view key) {
  for (auto& l : loaders_) {
    if (l->match(key, &scratch_)) return l.get();
  }
  return nullptr;
}

}  // namespace readthru
