#include "proxy/read_through.h"

#include "proxy/command_router.h"
#include "proxy/read_through_request.h"
#include "proxy/upstream_pool.h"
#include "proxy/write_behind.h"
#include "resp/flat_reply.h"
#include "resp/reply_encoder.h"

namespace readthru {
namespace {

size_t g_live_flights = 0;

struct Known {
  const resp::CommandInfo* get = resp::findCommand("get");
  const resp::CommandInfo* mget = resp::findCommand("mget");
  const resp::CommandInfo* hget = resp::findCommand("hget");
  const resp::CommandInfo* hmget = resp::findCommand("hmget");
  const resp::CommandInfo* hgetall = resp::findCommand("hgetall");
  const resp::CommandInfo* flushall = resp::findCommand("flushall");
  const resp::CommandInfo* flushdb = resp::findCommand("flushdb");
  const resp::CommandInfo* swapdb = resp::findCommand("swapdb");
};

// Refresh-ahead of a string: replaces the value only if it is still the one the refresh started
// from and still runs out within the refresh window (a value written since with a TTL of its
// own, or none, is not readthru's to reload).
// KEYS[1] the key; ARGV[1] the old value, ARGV[2] the new one, ARGV[3] its TTL in ms, ARGV[4] the
// window in ms.
constexpr std::string_view kRefreshScript =
    "local left = redis.call('PTTL', KEYS[1]) "
    "if redis.call('GET', KEYS[1]) == ARGV[1] and left > 0 and left <= tonumber(ARGV[4]) "
    "then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";

// Refresh-ahead of a hash, on the same conditions: the hash must hold exactly the fields and
// values the refresh read before loading, in any order (HGETALL's order may change when Redis
// rehashes the hash, with no write at all).
// KEYS[1] the key; ARGV[1] the window in ms, ARGV[2] the new TTL in ms, ARGV[3] n, then n old
// field/value pairs, then the new ones.
constexpr std::string_view kHashRefreshScript = R"lua(
local left = redis.call('PTTL', KEYS[1])
if left <= 0 or left > tonumber(ARGV[1]) then return 0 end
local n = tonumber(ARGV[3])
local cur = redis.call('HGETALL', KEYS[1])
if #cur ~= 2 * n then return 0 end
local old = {}
for i = 4, 3 + 2 * n, 2 do old[ARGV[i]] = ARGV[i + 1] end
for i = 1, #cur, 2 do
  if old[cur[i]] ~= cur[i + 1] then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4 + 2 * n))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
)lua";

const Known& known() {
  static const Known k;
  return k;
}

// Whether two loaders (the same one, or one each side of a reload) load a key the same way: a
// miss may then join the other's load, and what one remembered as absent stays absent.
bool sameLoad(const Loader& a, const Loader& b) {
  if (&a == &b) return true;
  const LoaderConfig& x = a.config();
  const LoaderConfig& y = b.config();
  return x.key == y.key && x.query == y.query && x.type == y.type &&
         a.backend()->options().path == b.backend()->options().path;
}

}  // namespace

// The reply to a fill (SET ... NX or the hash script): the flight stays findable until Redis has
// answered it, then it is released.
class ReadThrough::FillTarget final : public backends::ReplyTarget {
 public:
  FillTarget(ReadThrough* engine, Flight* f) : engine_(engine), flight_(f) {}
  void replyData(const char*, size_t) override {}
  bool replyDone(char) override {
    done();
    return false;
  }
  void replyFailed(std::string_view) override { done(); }

 private:
  void done() {
    engine_->onFilled(flight_);
    delete this;
  }
  ReadThrough* engine_;
  Flight* flight_;
};

// The HGETALL a hash's refresh starts from.
class ReadThrough::SnapshotTarget final : public backends::ReplyTarget {
 public:
  SnapshotTarget(ReadThrough* engine, const RegistryRef& registry, Loader* loader,
                 std::string_view key, uint64_t seq)
      : engine(engine), registry(registry), loader(loader), key(key), seq(seq) {}
  void replyData(const char* data, size_t len) override { reply.append(data, len); }
  bool replyDone(char) override {
    done();
    return false;
  }
  void replyFailed(std::string_view) override {
    reply.clear();
    done();
  }

  ReadThrough* engine;
  RegistryRef registry;  // owns `loader`
  Loader* loader;
  std::string key;
  uint64_t seq;
  std::string reply;  // empty when the connection failed

 private:
  void done() {
    engine->onSnapshot(this);
    delete this;
  }
};

size_t ReadThrough::liveCount() { return g_live_flights + ReadThroughRequest::liveCount(); }

ReadThrough::ReadThrough(uv_loop_t* loop, const Config& config, CacheRegistry* registry,
                         UpstreamPool* pool)
    : loop_(loop),
      registry_(registry),
      pool_(pool),
      negative_(config.negative_cache_entries),
      slowlog_(config.slowlog_log_slower_than_us, config.slowlog_max_len),
      rng_(std::random_device{}()) {
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
}

SlotInterceptor* ReadThrough::intercept(const resp::Command& cmd, const resp::CommandInfo* info,
                                        int protocol, Loader** on_nil) {
  if (closed_ || info == nullptr) return nullptr;
  const Known& k = known();
  using Op = ReadThroughRequest::Op;
  Op op;
  bool hash;
  const auto& argv = cmd.argv;
  if (info == k.get && argv.size() == 2) {
    op = Op::kGet, hash = false;
  } else if (info == k.mget && argv.size() >= 2) {
    op = Op::kMget, hash = false;
  } else if (info == k.hget && argv.size() == 3) {
    op = Op::kHget, hash = true;
  } else if (info == k.hmget && argv.size() >= 3) {
    op = Op::kHmget, hash = true;
  } else if (info == k.hgetall && argv.size() == 2) {
    op = Op::kHgetall, hash = true;
  } else {
    return nullptr;
  }
  size_t last_key = op == Op::kMget ? argv.size() - 1 : 1;
  // Most commands name no loader's key: find that out before taking a request.
  size_t first = 0;
  Loader* first_loader = nullptr;
  for (size_t i = 1; i <= last_key && first_loader == nullptr; ++i) {
    Loader* l = registry_->find(argv[i]);
    if (l != nullptr && l->isHash() == hash) first = i, first_loader = l;
  }
  if (first_loader == nullptr) return nullptr;
  if (op == Op::kGet && on_nil != nullptr &&
      !(first_loader->config().refresh_ahead > 0 && refresh_.due(argv[1], uv_now(loop_)))) {
    *on_nil = first_loader;
    return nullptr;
  }
  ReadThroughRequest* req = takeRequest();
  req->start(op, protocol, RegistryRef(registry_));
  auto& keys = req->keys();
  keys.resize(last_key);
  for (size_t i = 1; i <= last_key; ++i) {
    Loader* l = nullptr;
    if (i == first) {
      l = first_loader;
    } else if (i > first) {
      l = registry_->find(argv[i]);
      if (l != nullptr && l->isHash() != hash) l = nullptr;  // GET of a hash template: plain
    }
    keys[i - 1].name.assign(argv[i]);
    keys[i - 1].loader = l;
  }
  auto& fields = req->fields();
  fields.clear();
  if (op == Op::kHget || op == Op::kHmget) {
    for (size_t i = 2; i < argv.size(); ++i) fields.emplace_back(argv[i]);
  }
  return req;
}

SlotInterceptor* ReadThrough::interceptNil(RegistryRef registry, Loader* loader,
                                           std::string_view key, int protocol) {
  if (closed_) return nullptr;
  ReadThroughRequest* req = takeRequest();
  req->start(ReadThroughRequest::Op::kGet, protocol, std::move(registry));
  auto& keys = req->keys();
  keys.resize(1);
  keys[0].name.assign(key);
  keys[0].loader = loader;
  req->fields().clear();
  return req;
}

ReadThroughRequest* ReadThrough::takeRequest() {
  if (spare_.empty()) return new ReadThroughRequest(this);
  ReadThroughRequest* req = spare_.back();
  spare_.pop_back();
  return req;
}

void ReadThrough::recycle(ReadThroughRequest* request) {
  // As many as a busy moment has in flight (50 clients x 16 pipelined is 800), so a steady
  // load allocates none; each costs a few hundred bytes.
  constexpr size_t kMaxSpare = 4096;
  if (spare_.size() < kMaxSpare) {
    spare_.push_back(request);
  } else {
    delete request;
  }
}

ReadThrough::~ReadThrough() {
  for (ReadThroughRequest* r : spare_) delete r;
}

void ReadThrough::setRegistry(CacheRegistry* registry, size_t negative_cache_entries) {
  const auto& before = registry_->loaders();
  const auto& after = registry->loaders();
  bool same = before.size() == after.size();
  for (size_t i = 0; same && i < before.size(); ++i) same = sameLoad(*before[i], *after[i]);
  if (!same) negative_.clear();
  negative_.setCapacity(negative_cache_entries);
  registry_ = registry;
}

void ReadThrough::noteKeyWritten(std::string_view key) {
  negative_.erase(key);
  forgetRefresh(key);
  if (Flight* f = flights_.find(key)) supersede(f);
}

void ReadThrough::noteWrite(const std::vector<std::string_view>& argv,
                            const resp::CommandInfo* info) {
  const Known& k = known();
  auto touch = [this](std::string_view key) { noteKeyWritten(key); };
  if (info == k.flushall || info == k.flushdb || info == k.swapdb) {
    negative_.clear();
    refresh_.clear();
    snapshots_.clear();
    std::vector<Flight*> all;
    flights_.forEach([&all](Flight* f) { all.push_back(f); });
    for (Flight* f : all) supersede(f);
    return;
  }
  int n = static_cast<int>(argv.size());
  if (info->flags & resp::kFlagMovableKeys) {
    // Where the keys are depends on the arguments (EVAL's numkeys, ...): treat every argument as
    // a possible key. Superseding a load needlessly costs one more load later, nothing else.
    for (int i = 1; i < n; ++i) touch(argv[i]);
    return;
  }
  if (info->first_key <= 0) return;
  int last = info->last_key < 0 ? n + info->last_key : info->last_key;
  int step = info->key_step > 0 ? info->key_step : 1;
  for (int i = info->first_key; i <= last && i < n; i += step) touch(argv[i]);
}

void ReadThrough::supersede(Flight* f) {
  flights_.remove(f);
  if (!f->loaded && !f->superseded && !f->abandoned) {
    f->superseded = true;
    ++f->loader->stats().superseded;
  }
}

void ReadThrough::miss(ReadThroughRequest* request, size_t index, Loader* loader,
                       std::string_view key) {
  LoaderStats& stats = loader->stats();
  ++stats.misses;
  if (negative_.contains(key, uv_now(loop_))) {
    ++stats.negative_hits;
    request->onLoaded(index, LoadedValue{});
    return;
  }
  Flight* f = flights_.find(key);
  if (f != nullptr && !closed_ && !sameLoad(*f->loader, *loader)) {
    // Started under a configuration a reload replaced, and that loads this key another way: its
    // waiters get its result, but Redis gets this load's.
    supersede(f);
    f = nullptr;
  }
  if (f != nullptr) {
    ++stats.coalesced;
    f->refresh = false;  // the value expired meanwhile: an ordinary fill, for everyone
    if (f->loaded) {
      request->onLoaded(index, f->result);  // being filled: Redis may not have it yet
    } else {
      f->waiters.push_back({request, index});
    }
    return;
  }
  if (closed_) {
    LoadedValue v;
    v.kind = LoadedValue::Kind::kError;
    v.error = loader->rejectedError("is closing");
    ++stats.rejected;
    request->onLoaded(index, v);
    return;
  }
  f = newFlight(request->registry(), loader, key);
  f->waiters.push_back({request, index});
  Writer* w = write_behind_ != nullptr ? registry_->findWriter(key) : nullptr;
  if (w == nullptr || !w->behind()) return startQuery(f);
  // A write still queued for the database is newer than its row: serve that instead.
  write_behind_->pendingState(w, key, [this, f](bool, std::optional<WriteState> state) {
    if (f->abandoned || closed_) {
      f->loaded = true;
      release(f);
      return;
    }
    if (!state) return startQuery(f);
    LoadedValue v;
    switch (state->kind) {
      case WriteState::Kind::kString:
        v.kind = LoadedValue::Kind::kValue;
        v.value = std::move(state->value);
        break;
      case WriteState::Kind::kHash:
        v.kind = LoadedValue::Kind::kValue;
        v.fields = std::move(state->fields);
        break;
      case WriteState::Kind::kDeleted:
        break;
    }
    complete(f, std::move(v));
  });
}

Flight* ReadThrough::newFlight(const RegistryRef& registry, Loader* loader, std::string_view key) {
  auto* f = new Flight;
  ++g_live_flights;
  f->loader = loader;
  f->registry = registry;
  f->key = std::string(key);
  f->queued_us = nowUs();
  flights_.insert(f);
  f->deadline = deadlines_.emplace(uv_now(loop_) + loader->config().timeout_ms, f);
  f->has_deadline = true;
  if (f->deadline == deadlines_.begin()) armTimer();
  return f;
}

void ReadThrough::startQuery(Flight* f) {
  Loader* loader = f->loader;
  std::string why;
  bool queued = loader->backend()->query(
      loader->query(f->key), [this, f](backends::SqlResult&& r) { onLoaded(f, std::move(r)); },
      &why);
  if (!queued) {
    ++loader->stats().rejected;
    LoadedValue v;
    v.kind = LoadedValue::Kind::kError;
    v.error = loader->rejectedError(why.find("full") != std::string::npos ? "queue is full" : why);
    if (f->has_deadline) {
      deadlines_.erase(f->deadline);
      f->has_deadline = false;
    }
    flights_.remove(f);
    f->loaded = true;
    answer(f, v);
    release(f);
    return;
  }
  ++loader->stats().loads;
}

void ReadThrough::answer(Flight* f, const LoadedValue& v) {
  std::vector<Flight::Waiter> waiters;
  waiters.swap(f->waiters);
  for (const Flight::Waiter& w : waiters) w.request->onLoaded(w.index, v);
}

void ReadThrough::onLoaded(Flight* f, backends::SqlResult&& result) {
  uint64_t us = nowUs() - f->queued_us;
  if (f->abandoned) {  // its waiters already had the timeout error
    if (slowlog_.wants(us)) slowlog_.add(us, f->loader->name(), f->key, f->loader->timeoutError());
    f->loaded = true;
    release(f);
    return;
  }
  f->loader->stats().latency.record(us);
  LoadedValue v = f->loader->decode(std::move(result));
  if (slowlog_.wants(us)) {
    using Kind = LoadedValue::Kind;
    slowlog_.add(us, f->loader->name(), f->key,
                 v.kind == Kind::kValue    ? "value"
                 : v.kind == Kind::kAbsent ? "absent"
                                           : std::string_view(v.error));
  }
  complete(f, std::move(v));
}

void ReadThrough::complete(Flight* f, LoadedValue&& value) {
  if (f->has_deadline) {
    deadlines_.erase(f->deadline);
    f->has_deadline = false;
  }
  f->loaded = true;
  LoaderStats& stats = f->loader->stats();
  f->result = std::move(value);
  const LoadedValue& v = f->result;
  if (v.kind == LoadedValue::Kind::kError) {
    ++(v.timed_out ? stats.timeouts : stats.errors);
    flights_.remove(f);  // the next request tries again
  }
  answer(f, v);
  if (f->superseded || closed_) {
    release(f);
    return;
  }
  if (f->refresh && v.kind != LoadedValue::Kind::kValue) {
    // The row is gone (or the load failed): the cached value simply expires as it would have.
    release(f);
    return;
  }
  if (v.kind == LoadedValue::Kind::kAbsent && f->loader->config().negative_ttl_ms > 0) {
    negative_.insert(f->key, uv_now(loop_) + f->loader->config().negative_ttl_ms);
  }
  if (v.kind == LoadedValue::Kind::kValue) {
    fill(f);
    return;
  }
  release(f);
}

void ReadThrough::fill(Flight* f) {
  backends::UpstreamConn* conn = pool_->shared(fill_seq_++, 2);
  if (conn == nullptr) {
    release(f);  // the waiters have their value; the next miss loads again
    return;
  }
  std::string request;
  uint64_t ttl = f->loader->pickTtlMs(rng_);
  if (f->refresh) {
    encodeRefresh(f, ttl, &request);
    ++f->loader->stats().refreshes;
  } else {
    f->loader->encodeFill(f->key, f->result, ttl, &request);
    ++f->loader->stats().fills;
  }
  if (f->loader->config().refresh_ahead > 0) {
    refresh_.track(f->key, uv_now(loop_), ttl, f->loader->config().refresh_ahead);
  }
  f->filling = true;
  conn->send(request, new FillTarget(this, f));
}

void ReadThrough::encodeRefresh(const Flight* f, uint64_t ttl, std::string* out) const {
  const LoaderConfig& lc = f->loader->config();
  // A fill's TTL is at most ttl + jitter; one second more for the time the reload took.
  auto window =
      static_cast<uint64_t>(static_cast<double>(lc.ttl_ms + lc.jitter_ms) * lc.refresh_ahead) +
      1000;
  resp::ReplyEncoder e(out, 2);
  if (!f->loader->isHash()) {
    e.arrayHeader(8);
    e.bulk("EVAL");
    e.bulk(kRefreshScript);
    e.bulk("1");
    e.bulk(f->key);
    e.bulk(f->old);
    e.bulk(f->result.value);
    e.bulk(std::to_string(ttl));
    e.bulk(std::to_string(window));
    return;
  }
  e.arrayHeader(7 + 2 * (f->old_fields.size() + f->result.fields.size()));
  e.bulk("EVAL");
  e.bulk(kHashRefreshScript);
  e.bulk("1");
  e.bulk(f->key);
  e.bulk(std::to_string(window));
  e.bulk(std::to_string(ttl));
  e.bulk(std::to_string(f->old_fields.size()));
  for (const auto& fields : {&f->old_fields, &f->result.fields}) {
    for (const auto& [field, value] : *fields) {
      e.bulk(field);
      e.bulk(value);
    }
  }
}

void ReadThrough::forgetRefresh(std::string_view key) {
  refresh_.forget(key);
  if (!snapshots_.empty()) {
    auto it = snapshots_.find(key);
    if (it != snapshots_.end()) snapshots_.erase(it);
  }
}

bool ReadThrough::refreshDue(std::string_view key) {
  return refresh_.claim(key, uv_now(loop_)) && flights_.find(key) == nullptr;
}

void ReadThrough::hit(const RegistryRef& registry, Loader* loader, std::string_view key,
                      std::string_view value) {
  if (closed_ || loader->config().refresh_ahead <= 0 || refresh_.empty()) return;
  if (!refreshDue(key)) return;
  Flight* f = newFlight(registry, loader, key);
  f->refresh = true;
  f->old = std::string(value);
  startQuery(f);
}

void ReadThrough::hashHit(const RegistryRef& registry, Loader* loader, std::string_view key) {
  if (closed_ || loader->config().refresh_ahead <= 0 || refresh_.empty()) return;
  if (!refreshDue(key) || snapshots_.count(key) > 0) return;
  backends::UpstreamConn* conn = pool_->shared(fill_seq_++, 2);
  if (conn == nullptr) return;  // it expires and is loaded on its next miss
  uint64_t seq = ++snapshot_seq_;
  snapshots_[std::string(key)] = seq;
  std::string request;
  resp::ReplyEncoder e(&request, 2);
  e.arrayHeader(2);
  e.bulk("HGETALL");
  e.bulk(key);
  conn->send(request, new SnapshotTarget(this, registry, loader, key, seq));
}

void ReadThrough::onSnapshot(SnapshotTarget* t) {
  auto it = snapshots_.find(t->key);
  if (it == snapshots_.end() || it->second != t->seq) return;  // a write came meanwhile
  snapshots_.erase(it);
  if (closed_ || flights_.find(t->key) != nullptr) return;
  // An empty array: the hash is gone (it expired, or was deleted) and loads on its next miss.
  std::vector<std::pair<size_t, size_t>> spans;
  std::string_view reply = t->reply;
  if (reply.empty() || reply[0] != '*' || !resp::splitFlatReply(reply, &spans) || spans.empty() ||
      spans.size() % 2 != 0) {
    return;
  }
  std::vector<std::pair<std::string, std::string>> old;
  for (size_t i = 0; i < spans.size(); i += 2) {
    std::string_view field, value;
    if (!resp::bulkPayload(reply.substr(spans[i].first, spans[i].second), &field) ||
        !resp::bulkPayload(reply.substr(spans[i + 1].first, spans[i + 1].second), &value)) {
      return;
    }
    old.emplace_back(field, value);
  }
  Flight* f = newFlight(t->registry, t->loader, t->key);
  f->refresh = true;
  f->old_fields = std::move(old);
  startQuery(f);
}

void ReadThrough::onFilled(Flight* f) {
  f->filling = false;
  release(f);
}

void ReadThrough::release(Flight* f) {
  flights_.remove(f);
  if (!f->loaded || f->filling) return;  // the backend's callback or the fill reply is to come
  delete f;
  --g_live_flights;
}

void ReadThrough::armTimer() {
  if (closed_) return;
  if (deadlines_.empty()) {
    uv_timer_stop(&timer_);
    return;
  }
  uint64_t now = uv_now(loop_);
  uint64_t at = deadlines_.begin()->first;
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<ReadThrough*>(t->data)->onTimer(); },
      at > now ? at - now : 0, 0);
}

void ReadThrough::onTimer() {
  uint64_t now = uv_now(loop_);
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    Flight* f = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    f->has_deadline = false;
    // The query may still be queued or running; its result, when it comes, is dropped.
    f->abandoned = true;
    flights_.remove(f);
    ++f->loader->stats().timeouts;
    LoadedValue v;
    v.kind = LoadedValue::Kind::kError;
    v.timed_out = true;
    v.error = f->loader->timeoutError();
    answer(f, v);
  }
  armTimer();
}

bool ReadThrough::sendExists(std::string_view key, backends::ReplyTarget* target) {
  if (closed_) return false;
  backends::UpstreamConn* conn = pool_->shared(fill_seq_++, 2);
  if (conn == nullptr) return false;
  std::string request;
  resp::ReplyEncoder e(&request, 2);
  e.arrayHeader(2);
  e.bulk("EXISTS");
  e.bulk(key);
  conn->send(request, target);
  return true;
}

void ReadThrough::close() {
  if (closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

}  // namespace readthru
