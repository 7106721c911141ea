#include "proxy/write_behind.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <random>
#include <unordered_map>

#include "proxy/command_router.h"
#include "proxy/log.h"
#include "proxy/upstream_call.h"
#include "proxy/upstream_pool.h"
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

// The end of a flusher's cycle. KEYS: a writer's stream, its pending hash, its flushing hash, the
// flushing hash's bound. ARGV[1]: the consumer group.
//
// Removes the entries the group is done with: those before its first pending (delivered,
// unacknowledged) entry or, with none pending, up to its last delivered one. One XTRIM per cycle
// instead of XDEL of each acknowledged entry: XDEL leaves tombstones inside the stream's nodes
// that later reads step over, and costs Redis about ten times as much per entry.
//
// Then retires pending states in bulk instead of one compare-and-delete per key: the pending hash
// is renamed to the flushing hash, its bound set to the stream's last entry (every state in it
// was queued by an entry up to there, in the same atomic step), and once the group is done with
// every entry up to the bound, the flushing hash is unlinked and the next rename can happen. A key
// is thus guarded against read-through from the database until its write is in the database.
constexpr std::string_view kTrimScript = R"lua(
local function older(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local min = redis.call('XPENDING', KEYS[1], ARGV[1])[2]
if not min then
  local last
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, delivered
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] end
      if g[i] == 'last-delivered-id' then delivered = g[i + 1] end
    end
    if name == ARGV[1] then last = delivered end
  end
  if not last then return 0 end
  local ms, seq = string.match(last, '^(%d+)-(%d+)$')
  if not ms then return 0 end
  min = ms .. '-' .. string.format('%d', tonumber(seq) + 1)
end
local trimmed = redis.call('XTRIM', KEYS[1], 'MINID', min)
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local bound = redis.call('GET', KEYS[4])
if not bound and redis.call('EXISTS', KEYS[3]) == 1 then
  -- A flushing hash without its bound (not left so by this script): bound it by everything now.
  bound = newest and newest[1] or '0-0'
  redis.call('SET', KEYS[4], bound)
end
if bound and older(bound, min) then
  redis.call('UNLINK', KEYS[3], KEYS[4])
  bound = nil
end
if not bound and redis.call('EXISTS', KEYS[2]) == 1 then
  if not newest then
    redis.call('UNLINK', KEYS[2])
  else
    redis.call('RENAME', KEYS[2], KEYS[3])
    redis.call('SET', KEYS[4], newest[1])
  end
end
return trimmed
)lua";

// KEYS[1]: the lease. ARGV: this process's id, the lease in ms. 1 when this process holds it.
constexpr std::string_view kLeaseScript = R"lua(
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
)lua";

constexpr std::string_view kGroup = "readthru";
constexpr uint64_t kMaxBackoffMs = 30000;

// A failure that only waiting cures (a locked, busy or read-only database): it does not count
// against an entry's max_attempts.
bool transient(const backends::SqlResult& r) {
  if (r.timed_out) return true;
  for (std::string_view word : {"locked", "busy", "readonly", "read-only", "disk I/O"}) {
    if (r.error.find(word) != std::string::npos) return true;
  }
  return false;
}

// A stream entry id "<ms>-<seq>" as a comparable pair; {0, 0} when malformed.
std::pair<uint64_t, uint64_t> parseId(std::string_view id) {
  size_t dash = id.find('-');
  uint64_t ms = 0, seq = 0;
  if (dash == std::string_view::npos ||
      std::from_chars(id.data(), id.data() + dash, ms).ec != std::errc() ||
      std::from_chars(id.data() + dash + 1, id.data() + id.size(), seq).ec != std::errc()) {
    return {0, 0};
  }
  return {ms, seq};
}

uint64_t wallMillis() {
  uv_timeval64_t tv;
  uv_gettimeofday(&tv);
  return static_cast<uint64_t>(tv.tv_sec) * 1000 + static_cast<uint64_t>(tv.tv_usec) / 1000;
}

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
  switch (s.kind) {
    case WriteState::Kind::kString:
      return "s" + s.value;
    case WriteState::Kind::kHash: {
      std::string out = "h";
      for (const auto& [f, v] : s.fields) {
        out += fmt::format("{}:", f.size()) + f;
        out += fmt::format("{}:", v.size()) + v;
      }
      return out;
    }
    case WriteState::Kind::kDeleted:
      break;
  }
  return "d";
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

// One writer's flusher: a cycle every flush_interval while it holds the lease.
//
// A reload replaces every flusher (its Writer belongs to the registry the reload replaced): the
// old one is retired, finishes the cycle it is in, then hands over to its successor (the flusher
// of the writer of the same name in the new registry, if there is one) and frees itself. So one
// flusher at a time works a stream, and whatever it read but did not write stays pending in the
// stream's consumer group, where the successor claims it.
class WriteBehind::Flusher {
 public:
  Flusher(WriteBehind* owner, RegistryRef registry, Writer* w, std::string me)
      : owner_(owner),
        registry_(std::move(registry)),
        w_(w),
        me_(std::move(me)),
        stream_(streamKey(*w)),
        pending_(pendingKey(*w)),
        flushing_(flushingKey(*w)) {
    uv_timer_init(owner_->loop_, &timer_);
    timer_.data = this;
  }

  const Writer& writer() const { return *w_; }

  // The first cycle, now, or once the predecessor has ended its last one. Idempotent.
  void start() {
    if (started_ || predecessor_ != nullptr || closed_) return;
    started_ = true;
    if (draining_) return cycle();
    schedule(0);
  }

  // Stops after the cycle in progress (at once when none is), then starts `successor` (may be
  // null), handing it the per-key attempt counts, and frees itself through the owner.
  void retire(Flusher* successor) {
    retiring_ = true;
    if (predecessor_ != nullptr) {
      // Never started (its predecessor's cycle still runs): the successor waits for that one.
      predecessor_->successor_ = successor;
      if (successor != nullptr) successor->predecessor_ = predecessor_;
      predecessor_ = nullptr;
      return endRetirement();
    }
    successor_ = successor;
    if (successor != nullptr) successor->predecessor_ = this;
    if (!busy_) endRetirement();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  }

  void drain() {
    draining_ = true;
    if (!busy_ && started_) {
      uv_timer_stop(&timer_);
      cycle();
    }
  }
  void abandonDrain() { draining_ = false; }

  WriterQueueState queue() const { return queue_; }

 private:
  struct Key {
    std::string key;
    std::vector<std::string> ids;
    // Its latest state, from the pending hashes; nullopt: nothing to write (a write of this
    // flusher covered its entries, or the hashes no longer hold it).
    std::optional<std::string> state;
  };

  // Not a shared connection: a batch's round trips must not wait behind clients' pipelines.
  backends::UpstreamConn* conn() { return owner_->pool_->service(); }

  void schedule(uint64_t delay_ms) {
    if (closed_) return;
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<Flusher*>(t->data)->cycle(); }, delay_ms, 0);
  }

  // The end of a cycle: `more` when a full batch was read (go again at once).
  void done(bool more, bool failed) {
    busy_ = false;
    if (failed) {
      failures_ = std::min(failures_ + 1, 16);
    } else {
      failures_ = 0;
    }
    if (retiring_) return endRetirement();
    if (draining_) {
      if (more) {
        cycle();
        return;
      }
      if (failed) {
        // Keep trying until the queue is written or the shutdown deadline abandons the drain.
        schedule(std::min<uint64_t>(w_->config().flush_interval_ms, 200));
        return;
      }
      draining_ = false;
      owner_->flusherDrained();
      if (closed_) return;
    }
    uint64_t interval = w_->config().flush_interval_ms;
    uint64_t delay = more ? 0 : interval;
    if (failures_ > 0) delay = std::min(kMaxBackoffMs, interval << std::min(failures_, 10));
    schedule(delay);
  }

  void endRetirement() {
    uv_timer_stop(&timer_);
    if (successor_ != nullptr) {
      Flusher* next = successor_;
      successor_ = nullptr;
      next->predecessor_ = nullptr;
      next->attempts_ = std::move(attempts_);
      next->queue_ = queue_;
      next->start();
    } else {
      log::info("writer '{}': its flusher has stopped; {} keeps what is still queued", w_->name(),
                stream_);
    }
    finished_ = true;
    maybeFree();
  }

  // A retired flusher goes once nothing of it is pending: no cycle, no reply to come.
  void maybeFree() {
    if (!finished_ || busy_ || calls_ > 0 || closed_) return;
    closed_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
      auto* self = static_cast<Flusher*>(h->data);
      self->owner_->freeRetired(self);
    });
  }

  void cycle() {
    if (closed_ || busy_ || retiring_) return;
    busy_ = true;
    uint64_t lease_ms = std::max<uint64_t>(3000, w_->config().flush_interval_ms * 6);
    bool sent = callUpstream(
        conn(),
        {"EVAL", std::string(kLeaseScript), "1", stream_ + ":lease", me_, std::to_string(lease_ms)},
        [this](const redisReply* r) {
          if (r == nullptr || r->type != REDIS_REPLY_INTEGER || r->integer != 1) {
            leader_ = false;
            forgetCovered();  // another process may write the keys meanwhile
            return done(false, r == nullptr);
          }
          leader_ = true;
          ensureGroup();
        });
    if (!sent) done(false, true);
  }

  void ensureGroup() {
    if (group_ready_) return readBatch();
    step({"XGROUP", "CREATE", stream_, std::string(kGroup), "0", "MKSTREAM"},
         [this](const redisReply* r) {
           if (r == nullptr) return done(false, true);
           // BUSYGROUP: it exists already.
           group_ready_ = !replyIsError(r) || replyString(r).starts_with("BUSYGROUP");
           if (!group_ready_) {
             log::warning("writer '{}': XGROUP CREATE {}: {}", w_->name(), stream_, replyString(r));
             return done(false, true);
           }
           readBatch();
         });
  }

  // A cycle's batch is read in chunks, first the entries delivered before but never acknowledged
  // (a failed batch, a process that died), then new ones, until it names `batch` keys, holds
  // kWindow x `batch` writes, or the stream has no more. So a backlog of writes to a few keys (a
  // database that was down, or locked) coalesces into one transaction of a row per key, while a
  // transaction stays within about `batch` rows.
  static constexpr size_t kWindow = 32;
  // Keys remembered as covered at most (each about 100 bytes).
  static constexpr size_t kMaxCovered = 1 << 18;

  void forgetCovered() { covered_.clear(); }

  bool windowFull() const {
    size_t batch = w_->config().batch;
    return keys_.size() >= batch || writes_read_ >= kWindow * batch;
  }

  // The COUNT of the next read: about as many entries as hold the writes that would fill the
  // batch's keys, judged by the writes per entry read so far.
  size_t nextCount() const {
    size_t batch = w_->config().batch;
    size_t per_entry = read_ == 0 ? writes_per_entry_ : std::max<size_t>(1, writes_read_ / read_);
    size_t want = batch - std::min(batch, keys_.size());
    return std::max<size_t>(1, want / std::max<size_t>(1, per_entry));
  }

  void readBatch() {
    startBatch();
    claim("0-0");
  }

  void claim(std::string cursor) {
    std::string count = std::to_string(nextCount());
    step({"XAUTOCLAIM", stream_, std::string(kGroup), me_, "0", cursor, "COUNT", count},
         [this](const redisReply* r) {
           if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
             if (r != nullptr && replyString(r).starts_with("NOGROUP")) {
               group_ready_ = false;
             }
             return done(false, true);
           }
           std::vector<std::string> gone;
           if (r->elements >= 3 && r->element[2]->type == REDIS_REPLY_ARRAY) {
             for (size_t i = 0; i < r->element[2]->elements; ++i) {
               gone.emplace_back(replyString(r->element[2]->element[i]));
             }
           }
           if (!gone.empty()) acknowledge(gone);
           collect(r->element[1]);
           std::string next(replyString(r->element[0]));
           if (windowFull()) return process(true);
           if (next != "0-0") return claim(std::move(next));
           readNew();
         });
  }

  void readNew() {
    size_t asked = nextCount();
    step({"XREADGROUP", "GROUP", std::string(kGroup), me_, "COUNT", std::to_string(asked),
          "STREAMS", stream_, ">"},
         [this, asked](const redisReply* r) {
           if (r == nullptr || replyIsError(r)) {
             if (r != nullptr && replyString(r).starts_with("NOGROUP")) {
               group_ready_ = false;
             }
             return done(false, true);
           }
           // [[stream, [entries]]], or nil when there is nothing new.
           size_t got = 0;
           if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
               r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements >= 2) {
             got = collect(r->element[0]->element[1]);
           }
           if (got >= asked && !windowFull()) return readNew();
           if (read_ == 0) {
             updateQueue(false);
             return done(false, false);
           }
           process(got >= asked);
         });
  }

  void startBatch() {
    keys_.clear();
    index_.clear();
    open_keys_.clear();
    read_ = 0;
    writes_read_ = 0;
    oldest_id_ms_ = 0;
  }

  // Adds entries [[id, [k, key, k, key...]], ...] to the batch; returns how many there were. An
  // entry names every key one transaction queued (write_behind_batch.h), each once or more.
  size_t collect(const redisReply* entries) {
    if (entries == nullptr || entries->type != REDIS_REPLY_ARRAY) return 0;
    size_t read_before = read_, writes_before = writes_read_;
    for (size_t i = 0; i < entries->elements; ++i) {
      const redisReply* e = entries->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
      std::string_view id = replyString(e->element[0]);
      ++read_;
      std::pair<uint64_t, uint64_t> parsed = parseId(id);
      if (oldest_id_ms_ == 0 || parsed.first < oldest_id_ms_) oldest_id_ms_ = parsed.first;
      newest_read_ = std::max(newest_read_, parsed);
      const redisReply* fields = e->element[1];
      int& open = open_keys_[std::string(id)];
      if (fields != nullptr && fields->type == REDIS_REPLY_ARRAY) {
        for (size_t j = 0; j + 1 < fields->elements; j += 2) {
          if (replyString(fields->element[j]) != "k") continue;
          ++writes_read_;
          std::string_view key = replyString(fields->element[j + 1]);
          auto [it, fresh] = index_.try_emplace(std::string(key), keys_.size());
          if (fresh) keys_.push_back({std::string(key), {}, std::nullopt});
          Key& k = keys_[it->second];
          if (k.ids.empty() || k.ids.back() != id) {
            k.ids.emplace_back(id);
            ++open;
          }
        }
      }
      if (open == 0) keys_.push_back({"", {std::string(id)}, std::nullopt}), open = 1;  // ack it
    }
    if (read_ > read_before) {
      writes_per_entry_ =
          std::max<size_t>(1, (writes_read_ - writes_before) / (read_ - read_before));
    }
    return read_ - read_before;
  }

  // The batch is read: `more` when entries may wait behind it (the next cycle starts at once).
  // Keys whose entries a write of this flusher covered need no write. The others' latest states
  // come from the pending hashes, after the stream's newest entry id, so every entry up to that
  // id is covered by the states written: XREVRANGE, HMGET of the pending hash, HMGET of the
  // flushing hash (which counts for the keys the first did not hold), sent together and run by
  // Redis in that order.
  // Only this flusher's own cycle-end script moves states from one hash to the other, so a state
  // missing from the pending hash is in the flushing one when the second HMGET runs. (Not a
  // script: Lua's copies of 500 states in and out cost Redis more than the HMGETs themselves.)
  void process(bool more) {
    more_ = more;
    lookup_upto_ = {};
    auto asked = std::make_shared<std::vector<size_t>>();
    for (size_t i = 0; i < keys_.size(); ++i) {
      Key& k = keys_[i];
      if (k.key.empty()) continue;
      auto c = covered_.find(k.key);
      if (c != covered_.end() && parseId(k.ids.back()) <= c->second) continue;
      asked->push_back(i);
    }
    if (asked->empty()) return writeBatch();
    uint64_t gen = ++lookup_gen_;
    lookup_ok_ = true;
    // Replies of a lookup given up (a request that could not be sent) are ignored.
    auto fresh = [this, gen](const redisReply* r) {
      if (gen != lookup_gen_) return false;
      if (r == nullptr || r->type != REDIS_REPLY_ARRAY) lookup_ok_ = false;
      return true;
    };
    bool sent = callUpstream(conn(), {"XREVRANGE", stream_, "+", "-", "COUNT", "1"},
                             [this, fresh](const redisReply* r) {
                               if (!fresh(r) || !lookup_ok_) return;
                               if (r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
                                   r->element[0]->elements > 0) {
                                 lookup_upto_ = parseId(replyString(r->element[0]->element[0]));
                               }
                             });
    for (const std::string* hash : {&pending_, &flushing_}) {
      std::vector<std::string> argv = {"HMGET", *hash};
      for (size_t i : *asked) argv.push_back(keys_[i].key);
      bool last = hash == &flushing_;
      sent = sent && callUpstream(conn(), argv, [this, fresh, asked, last](const redisReply* r) {
               if (!fresh(r)) return;
               if (lookup_ok_ && r->elements == asked->size()) {
                 for (size_t i = 0; i < asked->size(); ++i) {
                   Key& k = keys_[(*asked)[i]];
                   const redisReply* e = r->element[i];
                   if (!k.state && e->type == REDIS_REPLY_STRING)
                     k.state = std::string(replyString(e));
                 }
               } else {
                 lookup_ok_ = false;
               }
               if (!last) return;
               if (!lookup_ok_) return done(false, true);
               writeBatch();
             });
    }
    if (!sent) {
      ++lookup_gen_;
      done(false, true);
    }
  }

  // After a committed batch: its keys' entries up to lookup_upto_ need no more writes. A key is
  // forgotten once the reads have passed its bound (the stream holds no more entries it covers
  // but ones claimed again, which are simply written again), in sweeps as the map doubles, or
  // wholesale past kMaxCovered.
  void remember() {
    if (lookup_upto_ == std::pair<uint64_t, uint64_t>{}) return;
    if (covered_.size() >= sweep_at_) {
      std::erase_if(covered_, [this](const auto& c) { return c.second < newest_read_; });
      if (covered_.size() > kMaxCovered) covered_.clear();
      sweep_at_ = std::max<size_t>(4096, 2 * covered_.size());
    }
    for (const Key& k : keys_) {
      if (k.state) covered_.insert_or_assign(k.key, lookup_upto_);
    }
  }

  void writeBatch() {
    std::vector<backends::SqlQuery> statements;
    for (const Key& k : keys_) {
      if (!k.state) continue;
      std::optional<WriteState> s = decodeState(*k.state);
      if (s) statements.push_back(w_->statement(k.key, *s));
    }
    if (statements.empty()) {
      w_->stats().coalesced += writes_read_;
      return finishBatch(keys_);
    }
    size_t n = statements.size();
    std::string why;
    bool queued = w_->backend()->transaction(
        std::move(statements),
        [this, n](backends::SqlResult&& r) {
          if (r.ok) {
            remember();
            w_->stats().db_writes += n;
            ++w_->stats().batches;
            // Every entry of the batch without a row write of its own: a later write to its key
            // (in this batch, or already written by an earlier one) absorbed it.
            w_->stats().coalesced += writes_read_ - n;
            return finishBatch(keys_);
          }
          ++(r.timed_out ? w_->stats().timeouts : w_->stats().errors);
          ++w_->stats().retries;
          if (transient(r)) {
            log::warning("writer '{}': database busy ({}); retrying", w_->name(), r.error);
            updateQueue(true);
            return done(false, true);
          }
          // Find the entries at fault: each key alone.
          forgetCovered();
          one_by_one_ = keys_;
          one_by_one_at_ = 0;
          one_by_one_transient_ = false;
          oneByOne();
        },
        &why);
    if (!queued) done(false, true);
  }

  void oneByOne() {
    while (one_by_one_at_ < one_by_one_.size() && !one_by_one_[one_by_one_at_].state) {
      finishBatch({one_by_one_[one_by_one_at_++]}, false);
    }
    if (one_by_one_at_ >= one_by_one_.size()) {
      updateQueue(true);
      // Back off only while the database itself is unwell; a bad entry is retried at the usual
      // pace until it has used its attempts.
      return done(false, one_by_one_transient_);
    }
    Key k = one_by_one_[one_by_one_at_];
    std::optional<WriteState> s = decodeState(*k.state);
    if (!s) s = WriteState{};
    bool queued =
        w_->backend()->transaction({w_->statement(k.key, *s)}, [this, k](backends::SqlResult&& r) {
          ++one_by_one_at_;
          if (r.ok) {
            ++w_->stats().db_writes;
            ++w_->stats().batches;
            attempts_.erase(k.key);
            finishBatch({k}, false);
          } else if (transient(r)) {
            one_by_one_transient_ = true;
          } else if (++attempts_[k.key] >= w_->config().max_attempts) {
            deadLetter(k, r.error);
          }
          oneByOne();
        });
    if (!queued) done(false, true);
  }

  void deadLetter(const Key& k, const std::string& error) {
    attempts_.erase(k.key);
    ++w_->stats().dead_letters;
    log::warning("writer '{}': {} failed {} times ({}); moved to {}:dead", w_->name(), k.key,
                 w_->config().max_attempts, error, stream_);
    callUpstream(
        conn(),
        {"XADD", stream_ + ":dead", "*", "k", k.key, "state", k.state.value_or(""), "error", error},
        [](const redisReply*) {});
    finishBatch({k}, false);
  }

  // The keys are in the database (or dead-lettered): acknowledge their entries. Their pending
  // states go in bulk, at the end of a later cycle (kTrimScript).
  void finishBatch(const std::vector<Key>& keys, bool end_cycle = true) {
    std::vector<std::string> ids;
    for (const Key& k : keys) {
      // An entry is acknowledged once every key it names is done: until then a crash leaves it
      // pending, to be claimed again.
      for (const std::string& id : k.ids) {
        auto it = open_keys_.find(id);
        if (it == open_keys_.end() || --it->second <= 0) {
          ids.push_back(id);
          if (it != open_keys_.end()) open_keys_.erase(it);
        }
      }
    }
    acknowledge(ids);
    if (!end_cycle) return;
    bool more = more_ || draining_;
    updateQueue(true);
    done(more, false);
  }

  // The entries leave the stream at the cycle's end (updateQueue).
  void acknowledge(const std::vector<std::string>& ids) {
    if (ids.empty()) return;
    std::vector<std::string> ack = {"XACK", stream_, std::string(kGroup)};
    ack.insert(ack.end(), ids.begin(), ids.end());
    callUpstream(conn(), ack, [](const redisReply*) {});
  }

  // The end of a cycle: trims what was acknowledged, then reads the queue's length.
  void updateQueue(bool had_entries) {
    queue_.oldest_pending_ms =
        had_entries && oldest_id_ms_ > 0 ? wallMillis() - std::min(wallMillis(), oldest_id_ms_) : 0;
    callUpstream(conn(),
                 {"EVAL", std::string(kTrimScript), "4", stream_, pending_, flushing_,
                  flushing_ + "-upto", std::string(kGroup)},
                 [stream = stream_](const redisReply* r) {
                   // No `this`: a retired flusher may be gone when the reply comes.
                   if (r != nullptr && replyIsError(r)) {
                     log::warning("trimming {}: {}", stream, replyString(r));
                   }
                 });
    // Outlives the cycle: counted, so that a retired flusher waits for it.
    ++calls_;
    bool sent = callUpstream(conn(), {"XLEN", stream_}, [this](const redisReply* r) {
      --calls_;
      if (r != nullptr && r->type == REDIS_REPLY_INTEGER) {
        queue_.length = static_cast<uint64_t>(r->integer);
      }
      maybeFree();
    });
    if (!sent) --calls_;
  }

  // One request of the cycle; the cycle ends (failed) when it cannot be sent, since the callback
  // would never run.
  void step(const std::vector<std::string>& argv, UpstreamReplyCallback cb) {
    if (!callUpstream(conn(), argv, std::move(cb))) done(false, true);
  }

  WriteBehind* owner_;
  RegistryRef registry_;  // owns w_
  Writer* w_;
  std::string me_;
  std::string stream_;
  std::string pending_;
  std::string flushing_;
  uv_timer_t timer_;
  bool closed_ = false;
  bool started_ = false;
  bool retiring_ = false;
  bool finished_ = false;           // retired, and the last cycle is over
  Flusher* predecessor_ = nullptr;  // the flusher this one waits for before its first cycle
  Flusher* successor_ = nullptr;    // the flusher this retiring one hands over to
  size_t calls_ = 0;                // requests still to be answered outside a cycle
  bool busy_ = false;
  bool draining_ = false;
  bool leader_ = false;
  // Per key, the stream's newest entry when the state this flusher wrote was read: the key's
  // entries up to there need no write.
  std::unordered_map<std::string, std::pair<uint64_t, uint64_t>> covered_;
  size_t sweep_at_ = 4096;                     // covered_'s size at which remember() sweeps it
  std::pair<uint64_t, uint64_t> lookup_upto_;  // of the batch being written; {0, 0}: unknown
  uint64_t lookup_gen_ = 0;                    // the lookup whose replies count
  bool lookup_ok_ = false;                     // its replies so far were as expected
  std::pair<uint64_t, uint64_t> newest_read_;  // the newest entry read so far
  bool group_ready_ = false;
  bool more_ = false;  // this cycle's batch did not take every entry there was
  int failures_ = 0;
  std::vector<Key> keys_;
  std::unordered_map<std::string, size_t> index_;  // key -> its place in keys_
  size_t read_ = 0;                                // entries in this cycle's batch
  size_t writes_read_ = 0;                         // the writes they name
  size_t writes_per_entry_ = 1;                    // in the last chunk read
  std::map<std::string, int> open_keys_;           // entry id -> its keys not yet done
  uint64_t oldest_id_ms_ = 0;
  std::vector<Key> one_by_one_;
  size_t one_by_one_at_ = 0;
  bool one_by_one_transient_ = false;
  std::map<std::string, int> attempts_;  // failures per key, for max_attempts
  WriterQueueState queue_;
};

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
