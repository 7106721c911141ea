#pragma once
// ClientConn: one client connection, and the life of its requests:
//
//   socket bytes --read--> RequestParser --Command--> routeCommand
//        local:  answered here, the slot completes at once (AUTH, HELLO, QUIT, CLIENT SETNAME...)
//        shared: UpstreamPool::shared(id, protocol)->send(raw bytes, slot)
//        pin:    this client's own UpstreamConn (transactions, pub/sub, blocking, SELECT n)
//   every request gets a ReplySlot at the tail of the queue when parsed;
//   slots fill in any order; flush() (once per loop turn) writes the filled prefix in one write.
//
// Ordering across connections: a client's requests in flight all go to one upstream connection.
// When the next request needs another one (the client pins, unpins, or switches protocol), the
// parser stops until the replies in flight are back, so Redis sees the requests in order.
//
// Lifetime: Server owns clients; close() asks for the end, the uv_close callback frees. Slots still
// awaiting upstream replies are left behind as orphans (see reply_slot.h).

#include <uv.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "backends/loop_flusher.h"
#include "backends/upstream_conn.h"
#include "proxy/client_list.h"
#include "proxy/command_router.h"
#include "proxy/reply_slot.h"
#include "proxy/write_plan.h"
#include "resp/byte_buffer.h"
#include "resp/request_parser.h"

namespace readthru {

class Acl;
class AclUser;
class Server;

class ClientConn final : public backends::Flushable, public backends::UpstreamConn::Listener {
 public:
  // `unix_socket`: the client came in on the unix socket listener, not TCP; nothing else differs.
  ClientConn(Server* server, uint64_t id, bool unix_socket = false);
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  // Starts reading; `reject` writes that error and closes (maxclients).
  void start(std::string_view reject = {});
  void close();
  // Stops reading new requests and closes once every reply owed has been written.
  void drainAndClose();
  void flush() override;
  uint64_t id() const { return id_; }
  // The id CLIENT ID answers and CLIENT LIST shows: a pinned client's is its dedicated
  // connection's id in Redis (the one CLIENT UNBLOCK and TRACKING REDIRECT take there) once
  // a CLIENT ID on that connection has told it, any other readthru's own.
  uint64_t reportedId() const;
  int protocol() const { return protocol_; }
  // Where this client's writes go upstream: its dedicated connection, or its shared one (also
  // when replies are switched off, since a write-through waits for Redis's answer).
  backends::UpstreamConn* writeConn();
  bool idleExempt() const;
  uint64_t lastActive() const { return last_active_; }
  bool pinned() const { return pinned_ != nullptr; }
  backends::UpstreamConn* pinnedConn() { return pinned_; }
  // "ip:port", "[ip6]:port" or "unix:<path>", as Redis's MONITOR names a client; "?" when
  // unknown.
  std::string peerAddress() const;
  bool closing() const { return closing_; }
  // A replica: SYNC or PSYNC made the connection a relay (startTunnel).
  bool replica() const { return tunnel_; }
  // What CLIENT LIST says of this client (client_list.h). `running`: the request this client is
  // running now, if it is the one asking (Redis counts it in qbuf until it has run).
  ClientSummary summary(const resp::Command* running = nullptr) const;
  // Delivers a frame nobody asked for (a MONITOR line, a pub/sub message) ahead of the next
  // reply the client is owed from `from` (nullptr: after everything it is owed).
  void pushUnsolicited(std::string&& frame, backends::UpstreamConn* from);
  // A reload replaced the users with `acl`'s: the client becomes the same user there. False
  // when that user was removed or changed (the caller closes the client, as Redis's ACL LOAD
  // does); a client that had not authenticated becomes acl's initial user, if there is one.
  bool rebindUser(const Acl& acl);

  // From ReplySlot.
  void slotProgress(ReplySlot* slot, size_t bytes);
  void slotBytesDropped(size_t bytes);
  // Fills a slot with a whole reply (readthru's own, a pushed message, an error).
  void completeSlot(ReplySlot* slot, std::string&& bytes);
  void slotFinished(ReplySlot* slot, bool failed);
  // Completes a slot an interceptor held (see slot_interceptor.h).
  void completeHeld(ReplySlot* slot, std::string&& bytes);
  // A watched GET answered nil: read-through's interceptor for its slot (nullptr: stream it).
  SlotInterceptor* interceptNil(RegistryRef registry, Loader* loader, std::string_view key,
                                int protocol);
  // Subscriptions of one kind ('c' channels, 'p' patterns, 's' shard channels) still open.
  size_t subscriptionsLeft(char kind) const;

  // UpstreamConn::Listener, for the pinned connection.
  void onUpstreamDown(backends::UpstreamConn* conn, std::string_view reason) override;
  bool onUpstreamFrame(backends::UpstreamConn* conn, std::string& frame) override;

  static size_t liveCount();

  ClientConn* next_ = nullptr;  // Server's client list
  ClientConn* prev_ = nullptr;

 private:
  struct PubsubState {
    std::set<std::string> channels, patterns, shard_channels;
    bool empty() const { return channels.empty() && patterns.empty() && shard_channels.empty(); }
  };
  struct WriteReq;

  ~ClientConn();
  void onRead(ssize_t nread, const uv_buf_t* buf);
  void processBuffered();
  void processFrom(const char* data, size_t len, size_t* consumed);
  // Returns false when the command must wait (ordering barrier); nothing was consumed then.
  bool dispatch(const resp::Command& cmd);
  // `interceptor` (may be null) sees the reply before the client; it is dropped when the request
  // gets no reply (CLIENT REPLY OFF/SKIP).
  // `on_nil`: a GET's loader, whose slot watches for a nil reply (ReplySlot::nil_loader_).
  void forward(const resp::Command& cmd, const RouteDecision& d, backends::UpstreamConn* conn,
               SlotInterceptor* interceptor = nullptr, Loader* on_nil = nullptr);
  // Read-through and INFO: what must see this command's reply first, or (read-through GETs,
  // when `on_nil` is given) the loader whose slot only a nil reply hands to read-through. Also
  // tells read-through about writes.
  SlotInterceptor* interceptorFor(const resp::Command& cmd, const RouteDecision& d,
                                  Loader** on_nil = nullptr);
  // Writes to the writers' keys (write_plan.h): taken care of, to be forwarded as usual, or to
  // wait (ordering barrier) until every earlier request of this client is answered.
  enum class WriteDispatch : uint8_t { kDone, kForward, kWait };
  WriteDispatch dispatchWrite(const resp::Command& cmd, const RouteDecision& d,
                              backends::UpstreamConn* target);
  // A write whose reply waits on more than Redis (write_through.h); `request` goes upstream.
  WriteDispatch startHeldWrite(const resp::Command& cmd, const RouteDecision& d, WritePlan&& plan,
                               std::string&& request);
  // Sends a request of readthru's own (HELLO, CLIENT SETNAME) to the pinned connection; its
  // reply, if Redis gives one, is dropped.
  void sendToPinned(std::string_view request);
  void answerLocal(const resp::Command& cmd, const RouteDecision& d, ReplySlot* slot);
  // READTHRU RELOAD: `slot` is answered (+OK or -ERR <reason>) once the reload is over.
  void awaitReload(ReplySlot* slot, bool expected);
  void answerAuth(const resp::Command& cmd, std::string* out);
  void answerHello(const resp::Command& cmd, std::string* out);
  void answerClient(const resp::Command& cmd, LocalCommand which, std::string* out);
  // `cmd` is a CLIENT command: if it is CLIENT UNBLOCK naming readthru's id of a client now
  // blocked on its dedicated connection, `out` is the command with that connection's id in
  // Redis instead.
  bool unblockByReadthruId(const resp::Command& cmd, std::vector<std::string>* out);
  // CLIENT LIST, INFO and KILL over the server's clients.
  void answerClientList(const resp::Command& cmd, LocalCommand which, std::string* out);
  // "ip:port", "[ip6]:port" or "<unixsocket>:0", as CLIENT LIST names either end of the socket.
  std::string socketAddress(bool local) const;
  void answerAcl(const resp::Command& cmd, LocalCommand which, std::string* out);
  // The client is now `user` (nullptr: not authenticated).
  void setUser(const AclUser* user);
  // Counts and logs a failed AUTH or HELLO AUTH (`how`), naming the user, never the password.
  void authFailed(std::string_view how, std::string_view user);
  // Answers a command the client's user may not run with `error`, as redis-server does (inside
  // MULTI the transaction fails too). False when it must wait (ordering barrier).
  bool refuseCommand(std::string_view error);
  // Before readthru answers a request itself: whether the client gets the reply (CLIENT REPLY),
  // keeping a pinned connection's SKIP in step.
  bool beginLocalReply();
  ReplySlot* newSlot();
  void appendSlot(ReplySlot* s);
  void insertSlotBefore(ReplySlot* s, ReplySlot* before);
  void protocolError(std::string_view message);
  // Enters or leaves MONITOR mode, and the server's MonitorFeed with it.
  void setMonitor(bool on);
  // SYNC or PSYNC: the client's connection becomes a relay of its dedicated upstream
  // connection, both ways, byte for byte, until either side closes.
  void startTunnel(const resp::Command& cmd, backends::UpstreamConn* conn);
  void relayToUpstream(const char* data, size_t len);
  // readthru has no users of its own (Acl::open): AUTH (unless it names readthru's own upstream
  // credentials), the ACL user commands and, for a client AUTHed upstream, ACL WHOAMI are
  // forwarded instead of answered.
  void passAuthUpstream(const resp::Command& cmd, RouteDecision* d);
  // Whether `user` and `password` are readthru's own [upstream] credentials (and the client is
  // on the shared connections, which use them).
  bool ownUpstreamCredentials(std::string_view user, std::string_view password) const;
  // Queues an error reply readthru writes itself.
  void replyError(std::string_view message);
  void pin();
  bool pinReleasable() const;
  void unpin();
  void resetState();
  void stopReading();
  void resumeReading();
  size_t outputBytes() const;
  void applyEffect(ReplySlot* slot, bool failed);
  // A request sent with its reply switched off (CLIENT REPLY OFF or SKIP): applyEffect() will
  // never see what it did.
  void noteSilencedEffect(StateEffect effect);
  void trackPubsub(std::string_view frame);
  // After an EXEC that ran queued (un)subscriptions: each confirmation among its elements.
  void trackPubsubInExec(std::string_view exec);
  bool inPubsub() const { return pubsub_ && !pubsub_->empty(); }

  Server* server_;
  uint64_t id_;
  // The socket. Everything but TCP_NODELAY goes through the uv_stream_t both begin with, so the
  // code names tcp_ for either.
  union {
    uv_tcp_t tcp_;
    uv_pipe_t pipe_;
  };
  resp::RequestParser parser_;
  resp::ByteBuffer in_;         // unparsed input (empty when idle: no per-client buffer)
  bool in_handed_off_ = false;  // in_ went upstream whole (a large request, no copy)
  std::string out_;             // reply bytes ready to write
  size_t slot_bytes_ = 0;       // reply bytes waiting in slots, not yet moved to out_
  WriteReq* write_ = nullptr;   // the uv_write in flight, if any
  ReplySlot* head_ = nullptr;
  ReplySlot* tail_ = nullptr;
  size_t slots_ = 0;
  size_t inflight_ = 0;  // slots awaiting an upstream reply
  backends::UpstreamConn* inflight_conn_ = nullptr;
  backends::UpstreamConn* pinned_ = nullptr;
  std::unique_ptr<PubsubState> pubsub_;
  std::string name_;
  uint64_t created_ = 0;  // uv_now() at accept, for CLIENT LIST's age
  uint64_t last_active_ = 0;
  uint64_t busy_window_ = 0;  // ActiveClients::note's mark
  // The command dispatched last, for CLIENT LIST's cmd= (its subcommand, lowercase, if any).
  const resp::CommandInfo* last_cmd_ = nullptr;
  std::string last_sub_;
  int64_t multi_queued_ = 0;  // commands sent inside the current MULTI
  uint64_t read_at_ns_ = 0;   // uv_hrtime() of the last read, for CommandMetrics
  CommandClass command_class_ = CommandClass::kNone;  // of the command being dispatched
  uint64_t soft_limit_since_ = 0;  // pubsub output over the soft limit since (ms), 0: not over
  int64_t db_ = 0;
  uint8_t protocol_ = 2;
  bool unix_socket_;               // tcp_ is pipe_
  const AclUser* user_ = nullptr;  // who the client is (proxy/acl.h); nullptr: not authenticated
  bool unrestricted_ = false;      // user_ may run anything: no per-command check
  bool reading_ = false;
  bool paused_ = false;   // reading stopped: too many replies pending, or waiting on a barrier
  bool blocked_ = false;  // the next command waits for the replies in flight
  bool closing_ = false;
  bool close_after_flush_ = false;
  bool in_multi_ = false;
  // A (P|S)(UN)SUBSCRIBE was queued in the current transaction: EXEC's reply carries its
  // confirmations, which change the subscriptions as if they had come alone.
  bool multi_pubsub_ = false;
  bool exec_ran_pubsub_ = false;  // such an EXEC ran on the pinned connection (sticky_ too)
  bool watching_ = false;
  bool tunnel_ = false;  // startTunnel() ran: nothing the client sends is parsed any more
  // Without users of readthru's own, a client's AUTH goes to the upstream on a dedicated
  // connection: upstream_user_ once it succeeded (the client keeps the connection until RESET),
  // auth_forwarded_ once one was sent (the connection never serves anyone else).
  bool upstream_user_ = false;
  bool auth_forwarded_ = false;
  bool monitor_ = false;  // in MONITOR mode; then also in the server's MonitorFeed
  bool sticky_ = false;   // pinned by state readthru does not track
  enum class ReplyMode : uint8_t { kOn, kOff, kSkipNext };
  ReplyMode reply_mode_ = ReplyMode::kOn;  // CLIENT REPLY
  // Requests Redis does not answer were sent since the last reply: nothing tells when they ran,
  // so the client stays on its connection until a later reply proves they did.
  bool unanswered_ = false;
  // Whether the request being dispatched gets a reply (CLIENT REPLY OFF/SKIP say no); advances
  // the SKIP state.
  bool takeReplyExpected();
};

}  // namespace readthru
