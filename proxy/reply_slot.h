#pragma once
// ReplySlot: the place in a client's reply queue that one request's reply will fill. Every request
// gets a slot when it is parsed, so replies leave in request order however they are produced:
// by an upstream connection, by readthru itself, or (later) by a loader.
//
// Ownership: a slot belongs to its client's queue until the client goes away. Slots then still
// waiting for an upstream reply become orphans owned by that connection's FIFO entry; they drop
// their reply bytes and free themselves when the reply ends (replyDone without more, or
// replyFailed). A slot is never freed while an upstream entry points at it. Likewise a held slot
// (an interceptor decides its reply, e.g. while a loader runs) becomes an orphan owned by its
// interceptor, and is freed by finishHeld().

#include <cstdint>
#include <string>

#include "backends/reply_target.h"
#include "proxy/command_metrics.h"
#include "proxy/command_router.h"
#include "proxy/registry_ref.h"
#include "proxy/slot_interceptor.h"

namespace readthru {

class ClientConn;
class Loader;

class ReplySlot final : public backends::ReplyTarget {
 public:
  explicit ReplySlot(ClientConn* client) : client_(client) {}

  // Every request takes a slot and gives it back once answered, hundreds of thousands of times a
  // second: a finished slot goes to a pool (the loop thread's; slots are never used elsewhere)
  // with the capacity of its buffers, and make() hands it out again as if new. recycle() takes
  // only a slot nothing points at any more; others are deleted as before. Sanitizer builds do
  // not pool, so a stale pointer to a finished slot stays a use-after-free AddressSanitizer
  // reports.
  static ReplySlot* make(ClientConn* client);
  static void recycle(ReplySlot* s);

  void replyData(const char* data, size_t len) override;
  void replyFrame(std::string& frame) override;
  bool replyDone(char type) override;
  void replyFailed(std::string_view error) override;

  // Completes the slot with a reply readthru wrote itself.
  void complete(std::string&& bytes) {
    data_ = std::move(bytes);
    done_ = true;
  }
  // Ends the hold of an interceptor with the reply the client gets; frees an orphan.
  void finishHeld(std::string&& bytes);

  // For a slot watching for a nil (nil_loader_): false while the bytes so far cannot tell, or
  // once the nil made it intercepted; true when the reply is not a nil and streams from now on.
  bool resolveNilWatch();

  ClientConn* client_;         // nullptr: orphan
  ReplySlot* next_ = nullptr;  // the client's queue, oldest first
  ReplySlot* prev_ = nullptr;
  std::string data_;  // reply bytes not yet handed to the client's output
  bool done_ = false;
  bool awaiting_ = false;  // an upstream FIFO entry points at this slot
  bool streamed_ = false;  // part of the reply already went to the client's output
  bool held_ = false;      // an interceptor has the whole reply and decides what the client gets
  SlotInterceptor* interceptor_ = nullptr;  // sees the reply before the client (owned by itself)
  // A GET of a key a loader serves (and not due for refresh-ahead), not intercepted up front so
  // that a hit costs what forwarding costs: the reply streams as usual unless its first bytes are a
  // nil, which hands the slot to read-through (ClientConn::interceptNil) before any byte of it
  // reaches the client.
  Loader* nil_loader_ = nullptr;
  RegistryRef nil_registry_;  // owns nil_loader_ while the watch lasts (registry_ref.h)
  std::string nil_key_;
  int nil_protocol_ = 2;  // the client's protocol when it asked
  StateEffect effect_ = StateEffect::kNone;
  bool proves_unanswered_ = false;  // sent after requests Redis does not answer: its reply
                                    // shows they ran
  int frames_left_ = 1;        // replies still expected; -1: bare UNSUBSCRIBE (until none left)
  char unsubscribe_kind_ = 0;  // 'c', 'p' or 's' for the bare UNSUBSCRIBE family
  int64_t select_db_ = 0;      // SELECT's db; for kUpstreamHello, the protocol version asked for
  CommandClass class_ = CommandClass::kNone;  // a client command's, timed until answered
  uint64_t taken_at_ns_ = 0;                  // uv_hrtime() of the read that completed it
};

}  // namespace readthru
