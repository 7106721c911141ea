#include "proxy/write_behind.h"

#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <iterator>
#include <memory>
#include <random>

#include "proxy/command_router.h"
#include "proxy/log.h"
#include "proxy/upstream_call.h"
#include "proxy/upstream_pool.h"
#include "proxy/write_behind_flusher.h"
#include "resp/ascii_case.h"
#include "resp/reply_encoder.h"

namespace readthru {
namespace {

// KEYS: stream, pending hash, key (a triple per key the command writes).
// ARGV: the client's command. On success each key's new state is recorded and queued.
constexpr std::string_view kWrapScript = R"lua(
local r = redis.pcall(unpack(ARGV))
if type(r) == 'table' and r.err then return r end
for i = 1, #KEYS, 3 do
  local k = KEYS[i + 2]
  local t = redis.call('TYPE', k)['ok']
  local state
  if t == 'string' then
    state = 's' .. redis.call('GET', k)
  elseif t == 'hash' then
    local h = redis.call('HGETALL', k)
    local parts = {'h'}
    for j = 1, #h do parts[#parts + 1] = #h[j] .. ':' .. h[j] end
    state = table.concat(parts)
  elseif t == 'none' then
    state = 'd'
  end
  if state then
    redis.call('HSET', KEYS[i + 1], k, state)
    redis.call('XADD', KEYS[i], '*', 'k', k)
  end
end
return r
)lua";

// KEYS: the pending hash, the flushing hash. ARGV[1]: a key. Its latest pending state (the
// pending hash holds newer writes than the flushing one), or nil.
constexpr std::string_view kPendingStateScript = R"lua(
return redis.call('HGET', KEYS[1], ARGV[1]) or redis.call('HGET', KEYS[2], ARGV[1])
)lua";

}  // namespace

std::string WriteBehind::streamKey(std::string_view writer) {
  return "readthru:wb:" + std::string(writer);
}
std::string WriteBehind::pendingKey(std::string_view writer) {
  return streamKey(writer) + ":pending";
}
std::string WriteBehind::flushingKey(std::string_view writer) {
  return streamKey(writer) + ":flushing";
}

std::string WriteBehind::encodeState(const WriteState& s) {
  std::string out;
  appendState(s, &out);
  return out;
}

void WriteBehind::appendState(const WriteState& s, std::string* out) {
  switch (s.kind) {
    case WriteState::Kind::kString:
      out->push_back('s');
      out->append(s.value);
      return;
    case WriteState::Kind::kHash:
      out->push_back('h');
      for (const auto& [f, v] : s.fields) {
        fmt::format_to(std::back_inserter(*out), "{}:{}{}:{}", f.size(), f, v.size(), v);
      }
      return;
    case WriteState::Kind::kDeleted:
      break;
  }
  out->push_back('d');
}

void WriteBehind::appendKeyToList(std::string_view key, std::string* list) {
  char len[24];
  auto [end, ec] = std::to_chars(len, len + sizeof len, key.size());
  (void)ec;
  list->append(len, end);
  list->push_back(':');
  list->append(key);
}

bool WriteBehind::forEachKey(std::string_view field, std::string_view value,
                             const std::function<void(std::string_view key)>& fn) {
  if (field == "k") {
    fn(value);
    return true;
  }
  if (field != "ks") return true;  // not a key
  while (!value.empty()) {
    size_t colon = value.find(':');
    size_t len = 0;
    if (colon == std::string_view::npos ||
        std::from_chars(value.data(), value.data() + colon, len).ptr != value.data() + colon ||
        len > value.size() - colon - 1) {
      return false;
    }
    fn(value.substr(colon + 1, len));
    value.remove_prefix(colon + 1 + len);
  }
  return true;
}

std::optional<WriteState> WriteBehind::decodeState(std::string_view s) {
  WriteState st;
  if (s.empty()) return std::nullopt;
  if (s[0] == 'd' && s.size() == 1) return st;
  if (s[0] == 's') {
    st.kind = WriteState::Kind::kString;
    st.value = std::string(s.substr(1));
    return st;
  }
  if (s[0] != 'h') return std::nullopt;
  st.kind = WriteState::Kind::kHash;
  size_t pos = 1;
  std::vector<std::string> parts;
  while (pos < s.size()) {
    size_t colon = s.find(':', pos);
    if (colon == std::string_view::npos) return std::nullopt;
    size_t len = 0;
    auto [p, ec] = std::from_chars(s.data() + pos, s.data() + colon, len);
    if (ec != std::errc() || p != s.data() + colon || len > s.size() - (colon + 1)) {
      return std::nullopt;
    }
    parts.emplace_back(s.substr(colon + 1, len));
    pos = colon + 1 + len;
  }
  if (parts.size() % 2 != 0) return std::nullopt;
  for (size_t i = 0; i < parts.size(); i += 2) {
    st.fields.emplace_back(std::move(parts[i]), std::move(parts[i + 1]));
  }
  return st;
}

std::string WriteBehind::wrap(const WritePlan& plan, const std::vector<std::string_view>& argv) {
  std::string out;
  resp::ReplyEncoder e(&out, 2);
  e.arrayHeader(3 + plan.items.size() * 3 + argv.size());
  e.bulk("EVAL");
  e.bulk(kWrapScript);
  e.bulk(std::to_string(plan.items.size() * 3));
  for (const auto& item : plan.items) {
    e.bulk(streamKey(*item.writer));
    e.bulk(pendingKey(*item.writer));
    e.bulk(item.key);
  }
  for (std::string_view a : argv) e.bulk(a);
  return out;
}

bool WriteBehind::batchable(const WritePlan& plan, const std::vector<std::string_view>& argv) {
  if (plan.op == WritePlan::Op::kHset || plan.op == WritePlan::Op::kHdel || plan.nx || plan.xx) {
    return false;
  }
  if (equalsIgnoreCase(argv[0], "set")) {
    for (size_t i = 3; i < argv.size(); ++i) {
      // SET ... GET answers the old value, and fails on a key of another type.
      if (equalsIgnoreCase(argv[i], "get")) return false;
    }
  }
  return true;
}

WriteBehind::WriteBehind(uv_loop_t* loop, CacheRegistry* registry, UpstreamPool* pool)
    : loop_(loop), registry_(registry), pool_(pool) {
  uv_timer_init(loop_, &drained_timer_);
  drained_timer_.data = this;
}

WriteBehind::~WriteBehind() = default;

void WriteBehind::start() {
  char host[256] = "host";
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  me_ = fmt::format("{}:{}:{:08x}", host, getpid(), rd());
  for (const auto& w : registry_->writers()) {
    if (!w->behind()) continue;
    flushers_.push_back(std::make_unique<Flusher>(this, RegistryRef(registry_), w.get(), me_));
    flushers_.back()->start();
  }
}

void WriteBehind::setRegistry(CacheRegistry* registry) {
  std::vector<std::unique_ptr<Flusher>> old;
  old.swap(flushers_);
  registry_ = registry;
  for (const auto& w : registry_->writers()) {
    if (!w->behind()) continue;
    flushers_.push_back(std::make_unique<Flusher>(this, RegistryRef(registry_), w.get(), me_));
  }
  for (auto& f : old) {
    Flusher* successor = nullptr;
    for (auto& n : flushers_) {
      if (n->writer().name() == f->writer().name()) successor = n.get();
    }
    if (successor == nullptr) {
      log::warning(
          "writer '{}' is no longer a write-behind writer: its flusher stops after its current "
          "cycle; writes still queued stay in the Redis stream {} until a readthru with that "
          "writer flushes them",
          f->writer().name(), streamKey(f->writer()));
    }
    Flusher* retiring = f.get();
    retiring_.push_back(std::move(f));
    retiring->retire(successor);  // may hand over at once
  }
  // Those with no predecessor begin now; the others once it has ended its cycle.
  for (auto& n : flushers_) n->start();
}

void WriteBehind::freeRetired(Flusher* f) {
  for (auto it = retiring_.begin(); it != retiring_.end(); ++it) {
    if (it->get() == f) {
      retiring_.erase(it);
      return;
    }
  }
}

void WriteBehind::pendingState(Writer* w, std::string_view key,
                               std::function<void(bool, std::optional<WriteState>)> cb) {
  std::vector<std::string> argv = {
      "EVAL",          std::string(kPendingStateScript), "2", pendingKey(*w), flushingKey(*w),
      std::string(key)};
  bool sent = callUpstream(pool_->shared(0, 2), argv, [cb](const redisReply* r) {
    if (r == nullptr || replyIsError(r)) return cb(false, std::nullopt);
    if (r->type != REDIS_REPLY_STRING) return cb(true, std::nullopt);
    cb(true, decodeState(replyString(r)));
  });
  if (!sent) cb(false, std::nullopt);
}

WriterQueueState WriteBehind::queue(const Writer& w) const {
  for (const auto& f : flushers_) {
    if (&f->writer() == &w) return f->queue();
  }
  return {};
}

void WriteBehind::drain(std::function<void()> done) {
  drain_done_ = std::move(done);
  draining_ = flushers_.size();
  if (draining_ == 0) {
    auto d = std::move(drain_done_);
    if (d) d();
    return;
  }
  for (auto& f : flushers_) f->drain();
}

void WriteBehind::flusherDrained() {
  if (draining_ == 0 || --draining_ > 0) return;
  // Not from here: a flusher is inside an upstream reply callback, and `done` may close the
  // upstream connections.
  uv_timer_start(
      &drained_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<WriteBehind*>(t->data);
        auto d = std::move(self->drain_done_);
        self->drain_done_ = nullptr;
        if (d) d();
      },
      0, 0);
}

void WriteBehind::abandonDrain() {
  for (auto& f : flushers_) f->abandonDrain();
  draining_ = 0;
  uv_timer_stop(&drained_timer_);
  auto d = std::move(drain_done_);
  drain_done_ = nullptr;
  if (d) d();
}

void WriteBehind::close() {
  for (auto& f : flushers_) f->close();
  // Retired ones still finishing a cycle: freed with this object (their requests fail as the
  // upstream connections close).
  for (auto& f : retiring_) f->close();
  uv_close(reinterpret_cast<uv_handle_t*>(&drained_timer_), nullptr);
}

}  // namespace readthru
