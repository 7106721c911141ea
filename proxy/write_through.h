#pragma once
// WriteThroughRequest: one write command on write-through keys, from dispatch to reply:
//
//   [pre-read]  SET NX/XX: EXISTS key (a failed condition writes nothing anywhere)
//               HSET/HDEL: HGETALL key, or the loader's row when Redis holds no hash, to work
//               out the whole new hash
//   database    the writers' statements, one transaction on the writers' backend
//               failure: -ERR writer '...' failed/timed out; Redis untouched
//   Redis       the client's command as it sent it; its reply is the client's reply
//               a Redis error after the database committed: DEL the keys (no stale value stays)
//               a hash Redis did not hold: the rest of the loader's row follows, in one HSET
//
// Write-behind hash writes (HSET, HDEL) on a key a hash loader serves come here too, with the
// command already wrapped (write_behind.h) and no database part: when Redis holds no hash, the
// loader's row is put in Redis first, so the state queued for the database is the whole row.
//
// The client's slot is held from dispatch, and the client sends nothing else upstream until this
// write's reply is in (ClientConn's ordering barrier), so a pipelined GET after it sees it.
// Ownership: owns itself, frees itself when done; a client that goes away meanwhile does not stop
// a write whose database part ran: Redis still gets it. It holds the registry its plan's writers
// (and the loader of a hash it reads) belong to, current when the write was dispatched, until it
// is done, whatever a reload makes current meanwhile.

#include <string>
#include <string_view>
#include <vector>

#include "backends/reply_target.h"
#include "backends/sqlite_backend.h"
#include "backends/upstream_conn.h"
#include "proxy/loader.h"
#include "proxy/registry_ref.h"
#include "proxy/slot_interceptor.h"
#include "proxy/write_plan.h"

namespace readthru {

class ReplySlot;
class Server;

class WriteThroughRequest final : public SlotInterceptor, public backends::ReplyTarget {
 public:
  // `request`: the client's command bytes, as they go upstream. `answer` false: the client
  // switched replies off (CLIENT REPLY), and gets nothing, error or not.
  WriteThroughRequest(Server* server, ReplySlot* slot, WritePlan plan, std::string request,
                      bool answer);
  void start();

  // SlotInterceptor: Redis's reply to the write.
  void onReply(ReplySlot* slot) override;

  // backends::ReplyTarget: the pre-read's reply, or the write's when the client has gone.
  void replyData(const char* data, size_t len) override;
  bool replyDone(char type) override;
  void replyFailed(std::string_view error) override;

  static size_t liveCount();

 private:
  enum class Phase : uint8_t { kPreRead, kLoadBase, kDatabase, kRedis };

  ~WriteThroughRequest() override;
  backends::UpstreamConn* conn();
  void preRead();
  void onPreRead(bool failed);
  void loadBase();
  void writeDatabase();
  void onDatabase(backends::SqlResult&& result);
  void writeRedis();
  // Ends before Redis got the write: the client gets `reply` (an encoded RESP reply).
  void finishEarly(std::string reply);
  void finishError(std::string_view message);
  void cleanUpAfter(std::string_view reply);

  Server* server_;
  RegistryRef registry_;
  ReplySlot* slot_;
  WritePlan plan_;
  std::string request_;
  Phase phase_ = Phase::kPreRead;
  std::string pre_read_;
  // HSET/HDEL on a hash Redis did not hold: the loader's row's other fields, which Redis gets
  // too, so it holds the whole row.
  std::vector<std::pair<std::string, std::string>> base_rest_;
  bool db_written_ = false;
  bool answer_;
  bool behind_;
  LoadedValue base_;  // write-behind: the loader's row, when Redis held no hash
};

}  // namespace readthru
