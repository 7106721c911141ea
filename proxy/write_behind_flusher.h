#pragma once
// WriteBehind::Flusher: one behind writer's flusher (write_behind.h has the whole picture).
//
//   every flush_interval, while this process holds the lease readthru:wb:<writer>:lease:
//   XAUTOCLAIM, then XREADGROUP, in chunks -> the keys' latest states from the pending hashes
//   -> one database transaction -> XACK -> at the cycle's end, one script trims the stream and
//   retires pending states in bulk

#include <uv.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proxy/registry_ref.h"
#include "proxy/upstream_call.h"
#include "proxy/upstream_pool.h"
#include "proxy/write_behind.h"
#include "resp/reply_reader.h"

namespace readthru {

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
  void start();

  // Stops after the cycle in progress (at once when none is), then starts `successor` (may be
  // null), handing it the per-key attempt counts, and frees itself through the owner.
  void retire(Flusher* successor);

  void close();

  void drain();
  void abandonDrain() { draining_ = false; }

  WriterQueueState queue() const { return queue_; }

 private:
  // An entry of the cycle's batch.
  struct Entry {
    std::string id;
    std::pair<uint64_t, uint64_t> parsed;  // parseId(id)
    int open = 0;                          // its keys not yet done
  };
  // What the flusher knows of a key it has read: its place in the batch being read, and how far
  // a write of this flusher covered its entries.
  struct Known {
    uint64_t batch = 0;  // the batch (batch_) `slot` is a place in keys_ of
    size_t slot = 0;
    // The stream's newest entry when the state this flusher wrote was read: the key's entries
    // up to there need no write. {0, 0}: none.
    std::pair<uint64_t, uint64_t> covered;
  };
  // A key of the cycle's batch, or (key null) an entry that names no key, only to be acknowledged.
  struct Key {
    const std::string* key;  // known_'s: its nodes stay put
    Known* known;
    // Its entries in the batch (places in entries_), oldest first: the first, then any others.
    uint32_t first;
    std::vector<uint32_t> later;
    // Its latest state, from the pending hashes (in lookup_replies_); nullopt: nothing to write (a
    // write of this flusher covered its entries, or the hashes no longer hold it).
    std::optional<std::string_view> state;
    uint32_t last() const { return later.empty() ? first : later.back(); }
  };

  // Not a shared connection: a batch's round trips must not wait behind clients' pipelines.
  backends::UpstreamConn* conn() { return owner_->pool_->service(); }

  void schedule(uint64_t delay_ms);

  // The end of a cycle: `more` when a full batch was read (go again at once).
  void done(bool more, bool failed);

  void endRetirement();

  // A retired flusher goes once nothing of it is pending: no cycle, no reply to come.
  void maybeFree();

  void cycle();

  void ensureGroup();

  // A cycle's batch is read in chunks, first the entries delivered before but never acknowledged
  // (a failed batch, a process that died), then new ones, until it names `batch` keys, holds
  // kWindow x `batch` writes, or the stream has no more. So a backlog of writes to a few keys (a
  // database that was down, or locked) coalesces into one transaction of a row per key, while a
  // transaction stays within about `batch` rows.
  static constexpr size_t kWindow = 32;
  // Keys remembered at most (each about 100 bytes).
  static constexpr size_t kMaxKnown = 1 << 18;

  // Another process may have written the keys meanwhile, or a batch failed: no key is covered.
  void forgetCovered();

  bool windowFull() const;

  // The COUNT of the next read: about as many entries as hold the writes that would fill the
  // batch's keys, judged by the writes per entry read so far.
  size_t nextCount() const;

  void readBatch();

  void claim(std::string cursor);

  void readNew();

  void startBatch();

  // Adds the entries [[id, [field, value, ...]], ...] that `r` reads next to the batch (their keys
  // as WriteBehind::forEachKey reads them); returns how many there were, or -1 when the reply is
  // not of that shape. An entry names every key one transaction queued (write_behind_batch.h),
  // each once or more.
  int64_t collect(resp::ReplyReader* r);

  // The batch is read: `more` when entries may wait behind it (the next cycle starts at once).
  // Keys whose entries a write of this flusher covered need no write. The others' latest states
  // come from the pending hashes, after the stream's newest entry id, so every entry up to that
  // id is covered by the states written: XREVRANGE, HMGET of the pending hash, then HMGET of
  // the flushing hash for the keys the first did not hold (lookUp).
  // Only this flusher's own cycle-end script moves states from one hash to the other, so a state
  // missing from the pending hash is in the flushing one when the second HMGET runs. (Not a
  // script: Lua's copies of 500 states in and out cost Redis more than the HMGETs themselves.)
  void process(bool more);
  // HMGET of the pending hash (`hash` 0) or the flushing hash (1) for the keys_ at `asked`, as
  // lookup `gen`: their states, then writeBatch(). False when it could not be sent.
  bool lookUp(int hash, std::shared_ptr<std::vector<size_t>> asked, uint64_t gen);

  // After a committed batch: its keys' entries up to lookup_upto_ need no more writes.
  void remember();
  // Between batches: a key is forgotten once the reads have passed its bound (the stream holds
  // no more entries it covers but ones claimed again, which are simply written again), in sweeps
  // as known_ doubles, or wholesale past kMaxKnown.
  void sweepKnown();

  void writeBatch();

  void oneByOne();

  void deadLetter(const Key& k, const std::string& error);

  // The keys are in the database (or dead-lettered): acknowledge their entries. Their pending
  // states go in bulk, at the end of a later cycle (kTrimScript).
  void finishBatch(const std::vector<Key>& keys, bool end_cycle = true);

  // The entries leave the stream at the cycle's end (updateQueue).
  void acknowledge(const std::vector<std::string_view>& ids);

  // The end of a cycle: trims what was acknowledged, then reads the queue's length.
  void updateQueue(bool had_entries);

  // One request of the cycle; the cycle ends (failed) when it cannot be sent, since the callback
  // would never run.
  void step(const std::vector<std::string>& argv, UpstreamReplyCallback cb);
  // The same for a stream read, whose reply is read in place (resp/reply_reader.h); `cb` runs
  // only with a reply that is not an error (NOGROUP: the group is created again next cycle).
  void readStep(std::string_view request, UpstreamBytesCallback cb);
  // Reply buffers kept with their capacity between requests (see callUpstreamBytes): a cycle's
  // stream reads and HMGETs are tens of KB each.
  std::string replyBuffer();
  void keepReplyBuffer(std::string* buffer);

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
  std::unordered_map<std::string, Known> known_;
  size_t sweep_at_ = 4096;                     // known_'s size at which sweepKnown() sweeps
  std::pair<uint64_t, uint64_t> lookup_upto_;  // of the batch being written; {0, 0}: unknown
  uint64_t lookup_gen_ = 0;                    // the lookup whose replies count
  // Its replies so far were as expected. The XREVRANGE's callback records a failure here rather
  // than ending the cycle: the HMGETs pipelined behind it are still to be answered, and a cycle
  // that ended could free a retiring flusher before their callbacks run.
  bool lookup_ok_ = false;
  std::pair<uint64_t, uint64_t> newest_read_;  // the newest entry read so far
  bool group_ready_ = false;
  bool more_ = false;  // this cycle's batch did not take every entry there was
  int failures_ = 0;
  uint64_t batch_ = 0;  // counts batches, so known_ needs no clearing between them
  std::vector<Key> keys_;
  std::vector<Entry> entries_;
  std::string lookup_replies_[2];  // HMGET of the pending and the flushing hash: Key::state
  std::vector<std::string> spare_replies_;
  bool idle_ = false;            // this cycle found nothing queued
  size_t read_ = 0;              // entries in this cycle's batch
  size_t writes_read_ = 0;       // the writes they name
  size_t writes_per_entry_ = 1;  // in the last chunk read
  uint64_t oldest_id_ms_ = 0;
  std::vector<Key> one_by_one_;
  size_t one_by_one_at_ = 0;
  bool one_by_one_transient_ = false;
  std::map<std::string, int> attempts_;  // failures per key, for max_attempts
  WriterQueueState queue_;
};

}  // namespace readthru
