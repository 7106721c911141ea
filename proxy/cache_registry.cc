#include "proxy/cache_registry.h"

#include <fmt/format.h>

#include <algorithm>

#include "proxy/log.h"

namespace readthru {
namespace {

// Every registry alive (loop thread): registries are made on it, even those a reload fills in
// on a worker thread.
CacheRegistry* g_live_head = nullptr;
size_t g_live = 0;

}  // namespace

void RegistryRef::acquire() {
  if (registry_ != nullptr) ++registry_->refs_;
}

void RegistryRef::release(CacheRegistry* registry) { registry->release(); }

CacheRegistry::CacheRegistry() {
  next_live_ = g_live_head;
  if (g_live_head != nullptr) g_live_head->prev_live_ = this;
  g_live_head = this;
  ++g_live;
}

CacheRegistry::~CacheRegistry() {
  if (prev_live_ != nullptr) {
    prev_live_->next_live_ = next_live_;
  } else {
    g_live_head = next_live_;
  }
  if (next_live_ != nullptr) next_live_->prev_live_ = prev_live_;
  --g_live;
}

size_t CacheRegistry::liveCount() { return g_live; }

void CacheRegistry::closeAll() {
  // Those in use: not one a reload is still filling in on a worker thread (nothing refers to it
  // yet), which its reload frees.
  std::vector<CacheRegistry*> all;
  for (CacheRegistry* r = g_live_head; r != nullptr; r = r->next_live_) {
    if (r->refs_ > 0) all.push_back(r);
  }
  // Closing only starts here (it ends in the backends' close callbacks), so none is freed yet.
  for (CacheRegistry* r : all) r->close();
}

void CacheRegistry::release() {
  if (--refs_ > 0) return;
  // Nothing refers to a loader or writer any more, so no callback of the backends does either.
  close([this] { delete this; });
}

bool CacheRegistry::open(uv_loop_t* loop, const Config& config, std::string* error) {
  return prepare(config, error) && start(loop, error);
}

bool CacheRegistry::prepare(const Config& config, std::string* error) {
  backend_configs_ = config.backends;  // Backend::config points here from now on
  for (const BackendConfig& b : backend_configs_) {
    backends::SqliteOptions o;
    o.path = b.path;
    o.workers = b.workers;
    o.queue_limit = b.queue;
    o.cache_bytes = b.cache_size;
    o.thread_name = "sql:" + b.name;
    o.nice = b.nice;
    o.warn = [name = b.name](const std::string& what) {
      log::warning("backend '{}': {}", name, what);
    };
    std::string why;
    backends::SqliteBackend* sqlite = backends::SqliteBackend::create(o, &why);
    if (sqlite == nullptr) {
      *error = fmt::format("{}: backend '{}': {}", b.where, b.name, why);
      fail();
      return false;
    }
    backends_.push_back({&b, sqlite, nullptr});
    bool written = std::any_of(config.writers.begin(), config.writers.end(),
                               [&b](const WriterConfig& w) { return w.backend == b.name; });
    if (written) {
      o.read_write = true;
      o.thread_name = "sqlw:" + b.name;
      o.workers = 1;
      o.max_rows = 0;
      backends::SqliteBackend* writer = backends::SqliteBackend::create(o, &why);
      if (writer == nullptr) {
        *error = fmt::format("{}: backend '{}' (for writers): {}", b.where, b.name, why);
        fail();
        return false;
      }
      backends_.back().writer = writer;
    }
  }
  for (const LoaderConfig& l : config.loaders) {
    auto fail = [&](const std::string& why) {
      *error = fmt::format("{}: loader '{}': {}", l.where, l.name, why);
      this->fail();
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
      this->fail();
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

bool CacheRegistry::start(uv_loop_t* loop, std::string* error) {
  for (Backend& b : backends_) {
    for (backends::SqliteBackend** s : {&b.sqlite, &b.writer}) {
      if (*s == nullptr) continue;
      std::string why;
      if (!(*s)->start(loop, &why)) {
        *s = nullptr;  // closing itself already
        *error = fmt::format("{}: backend '{}': {}", b.config->where, b.config->name, why);
        fail();
        return false;
      }
    }
  }
  return true;
}

// A failed open: nothing of it is kept, and what was opened closes.
void CacheRegistry::fail() {
  loaders_.clear();
  writers_.clear();
  close();
}

void CacheRegistry::adoptStats(const CacheRegistry& previous) {
  for (auto& l : loaders_) {
    for (const auto& old : previous.loaders_) {
      if (old->name() == l->name()) l->shareStats(*old);
    }
  }
  for (auto& w : writers_) {
    for (const auto& old : previous.writers_) {
      if (old->name() == w->name()) w->shareStats(*old);
    }
  }
  for (Backend& b : backends_) {
    for (const Backend& old : previous.backends_) {
      if (old.config->name != b.config->name) continue;
      b.sqlite->continueCounters(*old.sqlite);
      if (b.writer != nullptr && old.writer != nullptr) b.writer->continueCounters(*old.writer);
    }
  }
}

Writer* CacheRegistry::findWriter(std::string_view key) {
  for (auto& w : writers_) {
    if (w->match(key, &scratch_)) return w.get();
  }
  return nullptr;
}

void CacheRegistry::close(std::function<void()> done) {
  if (done) close_waiters_.push_back(std::move(done));
  if (close_started_) {
    if (closed_) closeFinished();
    return;
  }
  close_started_ = true;
  // The loaders stay: loads still in flight report to them until the backends have finished.
  size_t n = 0;
  for (Backend& b : backends_) n += (b.sqlite != nullptr) + (b.writer != nullptr);
  closing_left_ = n;
  std::vector<Backend> closing;
  closing.swap(backends_);
  for (Backend& b : closing) {
    for (backends::SqliteBackend* s : {b.sqlite, b.writer}) {
      if (s == nullptr) continue;
      // A backend never started frees itself at once; the others from their close callbacks.
      s->close([this] {
        if (--closing_left_ == 0) closeFinished();
      });
    }
  }
  if (n == 0) closeFinished();
}

void CacheRegistry::closeFinished() {
  closed_ = true;
  std::vector<std::function<void()>> waiters;
  waiters.swap(close_waiters_);
  // A waiter may free the registry: nothing of it is touched after the first one runs.
  for (auto& w : waiters) w();
}

Loader* CacheRegistry::find(std::string_view key) {
  for (auto& l : loaders_) {
    if (l->match(key, &scratch_)) return l.get();
  }
  return nullptr;
}

}  // namespace readthru
