#pragma once
// WriteBehind: writers in mode "behind" (design.md, "Write-through and write-behind").
//
//   client: SET user:1 v  ->  in one transaction with other clients' writes
//                             (write_behind_batch.h): SET user:1 v, HSET
//                             readthru:wb:user:pending user:1 <state> and an entry
//                             XADD readthru:wb:user * k user:1 [k <key> ...]  ->  the reply
//           (NX, XX, GET, hashes: EVAL <script> runs the command and, if it wrote, queues it)
//   flusher (write_behind_flusher.h; every flush_interval, one active per writer across readthru
//   processes: the holder of the lease key readthru:wb:<writer>:lease)
//     XAUTOCLAIM (entries left pending: earlier failures, a crashed process), then XREADGROUP
//     (new), in chunks until the batch names `batch` keys
//     -> coalesce by key: the key's latest state from the pending hashes (XREVRANGE for the
//        stream's newest entry id, HMGET pending, HMGET flushing), so the last write wins and a
//        delete after a write is a delete; the flusher remembers that the write covered the
//        key's entries up to that id
//     -> one database transaction -> XACK; at the cycle's end, one script: XTRIM MINID of what
//        the group is done with, and the pending states retired in bulk (the pending hash
//        renamed to readthru:wb:<writer>:flushing, unlinked once the entries it covers are done)
//     a failed batch: each key alone; a key that keeps failing (not a locked or read-only
//     database, which is only waited out) goes to readthru:wb:<writer>:dead after max_attempts
//   read-through miss on a key with a pending state (pending hash, else flushing hash):
//   answered (and Redis refilled) from it
//   SIGTERM: what is queued is flushed before exit, up to the shutdown deadline
//
// A stream entry names its keys as forEachKey() reads them. A state is "s<value>" (a string), "h"
// followed by "<len>:<bytes>" for each field and value (a hash), or "d" (deleted). Ownership: the
// server owns this object; flushers close their timers in close() and are freed with it. A flusher
// a reload replaced (setRegistry) frees itself once its last cycle and the requests it sent are
// over.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/cache_registry.h"
#include "proxy/config.h"
#include "proxy/write_plan.h"

namespace readthru {

class UpstreamPool;

struct WriterQueueState {
  uint64_t length = 0;             // entries in the writer's stream
  uint64_t oldest_pending_ms = 0;  // age of the oldest entry in the last batch read
};

class WriteBehind {
 public:
  WriteBehind(uv_loop_t* loop, CacheRegistry* registry, UpstreamPool* pool);
  ~WriteBehind();
  WriteBehind(const WriteBehind&) = delete;
  WriteBehind& operator=(const WriteBehind&) = delete;

  void start();
  // A reload: the behind writers of `registry` get flushers. Each flusher of the registry it
  // replaces ends the cycle it is in first, then hands over to the new flusher of its writer's
  // name (if any; else its stream waits in Redis, and the log says so). Nothing queued is lost:
  // entries stay in their stream until a flusher has written them.
  void setRegistry(CacheRegistry* registry);
  // The request that runs the client's command `argv` and queues the plan's keys, atomically;
  // its reply is the command's own.
  static std::string wrap(const WritePlan& plan, const std::vector<std::string_view>& argv);
  // Whether the write's outcome depends on its arguments alone (SET without NX, XX or GET;
  // SETEX; PSETEX; MSET; DEL; UNLINK): such a write may run in a transaction shared with other
  // clients' writes (write_behind_batch.h), since Redis cannot refuse to queue it. Others run in
  // the script of wrap().
  static bool batchable(const WritePlan& plan, const std::vector<std::string_view>& argv);
  // The state a key has pending for its writer's database, if any (nullopt when none, or when
  // Redis could not be asked: `asked` false).
  void pendingState(Writer* w, std::string_view key,
                    std::function<void(bool asked, std::optional<WriteState>)> cb);

  WriterQueueState queue(const Writer& w) const;
  // Flushes what is queued (the flushers that hold their lease), then runs `done`.
  void drain(std::function<void()> done);
  // Ends a drain now (the shutdown deadline passed).
  void abandonDrain();
  // Closes the handles; call once, as the server stops (also when start() never ran).
  void close();

  // readthru:wb:<writer>, readthru:wb:<writer>:pending and readthru:wb:<writer>:flushing, by
  // the writer or its name. The flushing hash's bound is its name plus "-upto".
  static std::string streamKey(const Writer& w) { return streamKey(w.name()); }
  static std::string pendingKey(const Writer& w) { return pendingKey(w.name()); }
  static std::string flushingKey(const Writer& w) { return flushingKey(w.name()); }
  static std::string streamKey(std::string_view writer);
  static std::string pendingKey(std::string_view writer);
  static std::string flushingKey(std::string_view writer);
  static std::string encodeState(const WriteState& s);
  static void appendState(const WriteState& s, std::string* out);  // encodeState, appended
  // A stream entry's keys: in field "k", one key each (the queueing script's entries), or all in
  // one field "ks" as "<len>:<key>" after one another (a shared transaction's entry: Redis stores
  // and sends two elements instead of two per key). False when a key list is malformed.
  static void appendKeyToList(std::string_view key, std::string* list);
  static bool forEachKey(std::string_view field, std::string_view value,
                         const std::function<void(std::string_view key)>& fn);
  static std::optional<WriteState> decodeState(std::string_view s);

 private:
  class Flusher;
  void flusherDrained();
  void freeRetired(Flusher* f);

  uv_loop_t* loop_;
  CacheRegistry* registry_;  // the current one
  UpstreamPool* pool_;
  std::string me_;  // this process's consumer name and lease holder id, the same across reloads
  std::vector<std::unique_ptr<Flusher>> flushers_;  // one per behind writer of registry_
  std::vector<std::unique_ptr<Flusher>> retiring_;  // replaced by a reload, ending their cycle
  std::function<void()> drain_done_;
  uv_timer_t drained_timer_;  // runs drain_done_ on a fresh stack
  size_t draining_ = 0;
};

}  // namespace readthru
