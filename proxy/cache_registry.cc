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
    backends_.push_back({&b, sqlite});
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
  return true;
}

void CacheRegistry::close(std::function<void()> done) {
  // The loaders stay: loads still in flight report to them until the backends have finished.
  auto left = std::make_shared<size_t>(backends_.size());
  if (backends_.empty() && done) done();
  for (Backend& b : backends_) {
    b.sqlite->close([left, done] {
      if (--*left == 0 && done) done();
    });
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
