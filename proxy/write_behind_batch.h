#pragma once
// WriteBehindBatch: write-behind writes of many clients, made durable in one Redis transaction.
//
//   client A: SET user:1 a  ┐  on one shared upstream connection, in one loop turn:
//   client B: SET user:2 b  │    MULTI, MSET user:1 a user:2 b, DEL user:3             (joined)
//   client C: DEL user:3    ┘    HSET readthru:wb:user:pending user:1 sa user:2 sb user:3 d
//                                XADD readthru:wb:user * ks 6:user:16:user:26:user:3 (sealed)
//                                EXEC -> element i of its reply answers the members of command i
//
// Each write and its queue entry still commit together (the design's atomic step), and a client
// hears OK only after EXEC; what batching saves is Redis's per-command work: one HSET and one
// XADD per writer per batch instead of per write, one MULTI/EXEC for all, and one MSET for each
// run of consecutive plain SETs (SET key value, no option: MSET does to each key exactly what
// that SET does, in order, and answers OK as it does). So MONITOR, SLOWLOG and INFO commandstats
// of the upstream show an MSET where the clients sent those SETs.
//
// Ordering: the batch is open on its connection until any other request, a flush or a failure
// seals it (UpstreamConn::Batch), so nothing sent after a member can overtake it. Only writes
// whose arguments alone decide their outcome join (WriteBehind::batchable), so no member can make
// Redis refuse the transaction for the others; if Redis refuses it anyway (OOM, READONLY, ...),
// each member gets the error Redis gave for its own command, or else the batch's first one.
//
// Shared connections only: on a client's dedicated connection EXEC would end its WATCH.
//
// Ownership: created by join(), it owns itself; it is the reply target of every request it sent
// and recycles itself once the last (EXEC) is answered or failed, after answering every member:
// a few spare batches are kept with their storage, the rest freed.

#include <string>
#include <string_view>
#include <vector>

#include "backends/reply_target.h"
#include "backends/upstream_conn.h"
#include "proxy/write_plan.h"

namespace readthru {

class ReplySlot;
class Writer;

class WriteBehindBatch final : public backends::UpstreamConn::Batch, public backends::ReplyTarget {
 public:
  // Sends `request` (the client's command as Redis should run it) in `conn`'s open batch, opening
  // one if needed; `slot` gets the command's own reply.
  // `plain_set`: the request is SET key value with no option (the plan's one item).
  static void join(backends::UpstreamConn* conn, const WritePlan& plan, std::string_view request,
                   bool plain_set, ReplySlot* slot);

  // The requests that close a batch, built as its writes join: per writer, in order of first
  // appearance, one HSET of the states and one XADD of the keys. Kept with the batch's storage
  // when a batch is reused, so a batch like the last costs no allocation.
  class Closing {
   public:
    // The writer's name, not the Writer: a batch may stay open (its connection down) across a
    // reload that frees the Writer.
    void add(std::string_view writer, std::string_view key, const WriteState& state);
    size_t writes() const { return writes_; }
    // Calls `send` with each complete request, in order.
    template <typename Send>
    void requests(Send&& send) {
      for (size_t i = 0; i < used_; ++i) {
        build(parts_[i], true);
        send(std::string_view(request_));
        build(parts_[i], false);
        send(std::string_view(request_));
      }
    }
    void clear();

   private:
    struct Part {
      std::string writer;
      std::string pending_key;  // WriteBehind::pendingKey(writer)
      std::string stream_key;   // WriteBehind::streamKey(writer)
      size_t writes = 0;
      std::string states;  // the HSET's arguments after the key: key, state, ... (RESP bulks)
      std::string keys;    // the XADD's key list (WriteBehind::appendKeyToList)
    };
    void build(const Part& p, bool hset);

    std::vector<Part> parts_;  // parts_[used_...] are spare
    size_t used_ = 0;
    size_t writes_ = 0;
    std::string state_;    // a state being encoded
    std::string request_;  // the request being built
  };

  void seal(backends::UpstreamConn* conn) override;
  void replyData(const char* data, size_t len) override;
  bool replyDone(char type) override;
  void replyFailed(std::string_view error) override;

  static size_t liveCount();
  // Only for the spares, at exit: a batch in use frees (or recycles) itself.
  ~WriteBehindBatch();

 private:
  WriteBehindBatch();
  // Back to the pool of spare batches (or freed): the end of a batch's life.
  void recycle();
  void answered();
  void answerMembers();
  // Sends the run of plain SETs as one MSET, if there is one.
  void endRun(backends::UpstreamConn* conn);

  struct Member {
    ReplySlot* slot;
    size_t command;  // the client command (an MSET of a run counts once) that answers it
  };
  std::vector<Member> members_;
  size_t commands_ = 0;              // the members' commands sent or in the run
  std::vector<std::string> errors_;  // per command, Redis's queue-time error (empty: queued)
  std::string run_;                  // the run of plain SETs: key, value, ... (RESP bulks)
  size_t run_pairs_ = 0;
  Closing closing_;
  size_t requests_ = 1;  // sent so far (MULTI first); when sealed, EXEC included
  size_t replies_ = 0;   // answered or failed so far
  bool sealed_ = false;
  std::string reply_;   // the reply being read
  std::string exec_;    // EXEC's reply
  std::string failed_;  // the connection's error, when the requests were lost
};

}  // namespace readthru
