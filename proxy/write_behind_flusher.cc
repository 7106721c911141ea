#include "proxy/write_behind_flusher.h"

#include <algorithm>
#include <charconv>
#include <memory>

#include "proxy/log.h"
#include "resp/flat_reply.h"
#include "resp/reply_encoder.h"
#include "resp/reply_reader.h"

namespace readthru {
namespace {

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

void WriteBehind::Flusher::start() {
  if (started_ || predecessor_ != nullptr || closed_) return;
  started_ = true;
  if (draining_) return cycle();
  schedule(0);
}

void WriteBehind::Flusher::retire(Flusher* successor) {
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

void WriteBehind::Flusher::close() {
  if (closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
}

void WriteBehind::Flusher::drain() {
  draining_ = true;
  if (!busy_ && started_) {
    uv_timer_stop(&timer_);
    cycle();
  }
}

void WriteBehind::Flusher::schedule(uint64_t delay_ms) {
  if (closed_) return;
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { static_cast<Flusher*>(t->data)->cycle(); }, delay_ms, 0);
}

void WriteBehind::Flusher::done(bool more, bool failed) {
  busy_ = false;
  for (std::string& r : lookup_replies_) keepReplyBuffer(&r);  // the batch's states: done with
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

void WriteBehind::Flusher::endRetirement() {
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

void WriteBehind::Flusher::maybeFree() {
  if (!finished_ || busy_ || calls_ > 0 || closed_) return;
  closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
    auto* self = static_cast<Flusher*>(h->data);
    self->owner_->freeRetired(self);
  });
}

void WriteBehind::Flusher::cycle() {
  if (closed_ || busy_ || retiring_) return;
  busy_ = true;
  idle_ = false;
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

void WriteBehind::Flusher::ensureGroup() {
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

bool WriteBehind::Flusher::windowFull() const {
  size_t batch = w_->config().batch;
  return keys_.size() >= batch || writes_read_ >= kWindow * batch;
}

size_t WriteBehind::Flusher::nextCount() const {
  size_t batch = w_->config().batch;
  size_t per_entry = read_ == 0 ? writes_per_entry_ : std::max<size_t>(1, writes_read_ / read_);
  size_t want = batch - std::min(batch, keys_.size());
  return std::max<size_t>(1, want / std::max<size_t>(1, per_entry));
}

void WriteBehind::Flusher::readBatch() {
  startBatch();
  claim("0-0");
}

void WriteBehind::Flusher::claim(std::string cursor) {
  std::string request;
  resp::ReplyEncoder::command(&request, {"XAUTOCLAIM", stream_, kGroup, me_, "0", cursor, "COUNT",
                                         std::to_string(nextCount())});
  readStep(request, [this](std::string* bytes) {
    // [next cursor, [entries], [ids of entries deleted meanwhile]]
    resp::ReplyReader r(*bytes);
    int64_t n = 0;
    std::string_view next;
    if (!r.array(&n) || n < 2 || !r.bulk(&next) || collect(&r) < 0) return done(false, true);
    int64_t gone = 0;
    std::vector<std::string_view> ids;
    if (n >= 3 && r.array(&gone)) {
      std::string_view id;
      for (int64_t i = 0; i < gone && r.bulk(&id); ++i) ids.push_back(id);
    }
    if (!r.ok()) return done(false, true);
    acknowledge(ids);
    if (windowFull()) return process(true);
    if (next != "0-0") return claim(std::string(next));
    readNew();
  });
}

void WriteBehind::Flusher::readNew() {
  size_t asked = nextCount();
  std::string request;
  resp::ReplyEncoder::command(&request, {"XREADGROUP", "GROUP", kGroup, me_, "COUNT",
                                         std::to_string(asked), "STREAMS", stream_, ">"});
  readStep(request, [this, asked](std::string* bytes) {
    // [[stream, [entries]]], or nil when there is nothing new.
    resp::ReplyReader r(*bytes);
    int64_t got = 0;
    if (!r.nil()) {
      int64_t streams = 0, parts = 0;
      std::string_view name;
      if (!r.array(&streams) || streams != 1 || !r.array(&parts) || parts != 2 || !r.bulk(&name) ||
          (got = collect(&r)) < 0) {
        return done(false, true);
      }
    }
    if (static_cast<size_t>(got) >= asked && !windowFull()) return readNew();
    if (read_ == 0) {
      idle_ = true;  // nothing queued: the reply buffers go (see keepReplyBuffer)
      updateQueue(false);
      return done(false, false);
    }
    process(static_cast<size_t>(got) >= asked);
  });
}

void WriteBehind::Flusher::startBatch() {
  keys_.clear();
  one_by_one_.clear();  // before the sweep: both point into known_
  entries_.clear();
  sweepKnown();
  ++batch_;
  read_ = 0;
  writes_read_ = 0;
  oldest_id_ms_ = 0;
}

int64_t WriteBehind::Flusher::collect(resp::ReplyReader* r) {
  int64_t n = 0;
  if (!r->array(&n)) return -1;
  size_t read_before = read_, writes_before = writes_read_;
  for (int64_t i = 0; i < n; ++i) {
    // [id, [field, value, ...]]; the fields are nil for an entry deleted since it was delivered.
    int64_t parts = 0, fields = 0;
    std::string_view id;
    if (!r->array(&parts)) return -1;
    if (parts < 2) {
      for (int64_t p = 0; p < parts; ++p) r->skip();
      continue;
    }
    if (!r->bulk(&id) || !r->array(&fields)) return -1;
    ++read_;
    auto entry = static_cast<uint32_t>(entries_.size());
    Entry& en = entries_.emplace_back(Entry{std::string(id), parseId(id), 0});
    if (oldest_id_ms_ == 0 || en.parsed.first < oldest_id_ms_) oldest_id_ms_ = en.parsed.first;
    newest_read_ = std::max(newest_read_, en.parsed);
    auto add = [this, entry, &en](std::string_view key) {
      ++writes_read_;
      auto [it, fresh] = known_.try_emplace(std::string(key));
      Known& kn = it->second;
      if (kn.batch != batch_) {
        kn.batch = batch_;
        kn.slot = keys_.size();
        keys_.push_back({&it->first, &kn, entry, {}, std::nullopt});
        ++en.open;
        return;
      }
      Key& k = keys_[kn.slot];
      if (k.last() != entry) {
        k.later.push_back(entry);
        ++en.open;
      }
    };
    for (int64_t j = 0; j + 1 < fields; j += 2) {
      std::string_view field, value;
      if (!r->bulk(&field) || !r->bulk(&value)) return -1;
      if (!forEachKey(field, value, add)) {
        log::warning("writer '{}': entry {} of {} has a malformed key list; its keys are skipped",
                     w_->name(), id, stream_);
      }
    }
    if (fields > 0 && fields % 2 != 0) r->skip();
    for (int64_t p = 2; p < parts; ++p) r->skip();
    if (en.open == 0) keys_.push_back({nullptr, nullptr, entry, {}, std::nullopt}), en.open = 1;
  }
  if (!r->ok()) return -1;
  if (read_ > read_before) {
    writes_per_entry_ = std::max<size_t>(1, (writes_read_ - writes_before) / (read_ - read_before));
  }
  return static_cast<int64_t>(read_ - read_before);
}

void WriteBehind::Flusher::process(bool more) {
  more_ = more;
  lookup_upto_ = {};
  auto asked = std::make_shared<std::vector<size_t>>();
  for (size_t i = 0; i < keys_.size(); ++i) {
    Key& k = keys_[i];
    if (k.key == nullptr) continue;
    if (entries_[k.last()].parsed <= k.known->covered) continue;
    asked->push_back(i);
  }
  if (asked->empty()) return writeBatch();
  uint64_t gen = ++lookup_gen_;
  lookup_ok_ = true;
  // Replies of a lookup given up (a request that could not be sent) are ignored.
  bool sent = callUpstream(
      conn(), {"XREVRANGE", stream_, "+", "-", "COUNT", "1"}, [this, gen](const redisReply* r) {
        if (gen != lookup_gen_) return;
        if (r == nullptr || r->type != REDIS_REPLY_ARRAY) {
          lookup_ok_ = false;
        } else if (r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
                   r->element[0]->elements > 0) {
          lookup_upto_ = parseId(replyString(r->element[0]->element[0]));
        }
      });
  if (!sent || !lookUp(0, std::move(asked), gen)) {
    ++lookup_gen_;
    done(false, true);
  }
}

bool WriteBehind::Flusher::lookUp(int hash, std::shared_ptr<std::vector<size_t>> asked,
                                  uint64_t gen) {
  std::string request;
  resp::ReplyEncoder e(&request, 2);
  e.arrayHeader(2 + asked->size());
  e.bulk("HMGET");
  e.bulk(hash == 0 ? pending_ : flushing_);
  for (size_t i : *asked) e.bulk(*keys_[i].key);
  auto cb = [this, gen, asked, hash](std::string* r) {
    if (gen != lookup_gen_) return keepReplyBuffer(r);
    std::vector<std::pair<size_t, size_t>> elements;
    if (r == nullptr || !lookup_ok_ || !resp::splitFlatReply(*r, &elements) ||
        elements.size() != asked->size()) {
      keepReplyBuffer(r);
      return done(false, true);
    }
    // The states are views of the reply, kept until the cycle ends.
    lookup_replies_[hash] = std::move(*r);
    std::string_view reply = lookup_replies_[hash];
    auto missing = std::make_shared<std::vector<size_t>>();
    for (size_t i = 0; i < asked->size(); ++i) {
      Key& k = keys_[(*asked)[i]];
      std::string_view state;
      if (resp::bulkPayload(reply.substr(elements[i].first, elements[i].second), &state)) {
        k.state = state;
      } else {
        missing->push_back((*asked)[i]);
      }
    }
    if (hash == 1 || missing->empty()) return writeBatch();
    if (!lookUp(1, std::move(missing), gen)) {
      ++lookup_gen_;
      done(false, true);
    }
  };
  return callUpstreamBytes(conn(), request, std::move(cb), replyBuffer());
}

void WriteBehind::Flusher::remember() {
  if (lookup_upto_ == std::pair<uint64_t, uint64_t>{}) return;
  for (const Key& k : keys_) {
    if (k.state) k.known->covered = lookup_upto_;
  }
}

void WriteBehind::Flusher::sweepKnown() {
  if (known_.size() < sweep_at_) return;
  std::erase_if(known_, [this](const auto& k) { return k.second.covered < newest_read_; });
  if (known_.size() > kMaxKnown) known_.clear();
  sweep_at_ = std::max<size_t>(4096, 2 * known_.size());
}

void WriteBehind::Flusher::forgetCovered() {
  for (auto& [key, kn] : known_) kn.covered = {};
}

void WriteBehind::Flusher::writeBatch() {
  std::vector<backends::SqlQuery> statements;
  statements.reserve(keys_.size());
  for (const Key& k : keys_) {
    if (!k.state) continue;
    std::optional<WriteState> s = decodeState(*k.state);
    if (s) statements.push_back(w_->statement(*k.key, std::move(*s)));
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

void WriteBehind::Flusher::oneByOne() {
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
  bool queued = w_->backend()->transaction(
      {w_->statement(*k.key, std::move(*s))}, [this, k](backends::SqlResult&& r) {
        ++one_by_one_at_;
        if (r.ok) {
          ++w_->stats().db_writes;
          ++w_->stats().batches;
          attempts_.erase(*k.key);
          finishBatch({k}, false);
        } else if (transient(r)) {
          one_by_one_transient_ = true;
        } else if (++attempts_[*k.key] >= w_->config().max_attempts) {
          deadLetter(k, r.error);
        }
        oneByOne();
      });
  if (!queued) done(false, true);
}

void WriteBehind::Flusher::deadLetter(const Key& k, const std::string& error) {
  attempts_.erase(*k.key);
  ++w_->stats().dead_letters;
  log::warning("writer '{}': {} failed {} times ({}); moved to {}:dead", w_->name(), *k.key,
               w_->config().max_attempts, error, stream_);
  callUpstream(conn(),
               {"XADD", stream_ + ":dead", "*", "k", *k.key, "state",
                std::string(k.state.value_or("")), "error", error},
               [](const redisReply*) {});
  finishBatch({k}, false);
}

void WriteBehind::Flusher::finishBatch(const std::vector<Key>& keys, bool end_cycle) {
  std::vector<std::string_view> ids;
  auto done_with = [this, &ids](uint32_t entry) {
    // An entry is acknowledged once every key it names is done: until then a crash leaves it
    // pending, to be claimed again.
    if (--entries_[entry].open == 0) ids.push_back(entries_[entry].id);
  };
  for (const Key& k : keys) {
    done_with(k.first);
    for (uint32_t entry : k.later) done_with(entry);
  }
  acknowledge(ids);
  if (!end_cycle) return;
  bool more = more_ || draining_;
  updateQueue(true);
  done(more, false);
}

void WriteBehind::Flusher::acknowledge(const std::vector<std::string_view>& ids) {
  if (ids.empty()) return;
  std::string request;
  resp::ReplyEncoder e(&request, 2);
  e.arrayHeader(3 + ids.size());
  e.bulk("XACK");
  e.bulk(stream_);
  e.bulk(kGroup);
  for (std::string_view id : ids) e.bulk(id);
  callUpstreamEncoded(conn(), request, [](const redisReply*) {});
}

void WriteBehind::Flusher::updateQueue(bool had_entries) {
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

void WriteBehind::Flusher::step(const std::vector<std::string>& argv, UpstreamReplyCallback cb) {
  if (!callUpstream(conn(), argv, std::move(cb))) done(false, true);
}

void WriteBehind::Flusher::readStep(std::string_view request, UpstreamBytesCallback cb) {
  auto read = [this, cb = std::move(cb)](std::string* bytes) {
    if (bytes == nullptr || bytes->starts_with("-")) {
      if (bytes != nullptr && bytes->starts_with("-NOGROUP")) group_ready_ = false;
      keepReplyBuffer(bytes);
      return done(false, true);
    }
    cb(bytes);
    // The flusher is freed only in a later uv_close callback: `this` outlives cb.
    keepReplyBuffer(bytes);
  };
  if (!callUpstreamBytes(conn(), request, std::move(read), replyBuffer())) done(false, true);
}

std::string WriteBehind::Flusher::replyBuffer() {
  if (spare_replies_.empty()) return {};
  std::string b = std::move(spare_replies_.back());
  spare_replies_.pop_back();
  return b;
}

void WriteBehind::Flusher::keepReplyBuffer(std::string* buffer) {
  // A few, none of a rare huge reply, and none once a cycle found nothing queued: an idle writer
  // holds no buffers.
  constexpr size_t kMaxSpares = 4, kMaxSpareBytes = 1 << 20;
  if (idle_) spare_replies_.clear();
  if (buffer == nullptr) return;
  if (!idle_ && spare_replies_.size() < kMaxSpares && buffer->capacity() <= kMaxSpareBytes &&
      buffer->capacity() > 0) {
    buffer->clear();
    spare_replies_.push_back(std::move(*buffer));
  }
  *buffer = std::string();
}

}  // namespace readthru
