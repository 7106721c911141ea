#include "proxy/client_conn.h"

#include <fmt/format.h>

#include <cstring>

#include "proxy/acl.h"
#include "proxy/busy_poll.h"
#include "proxy/log.h"
#include "proxy/password_hash.h"
#include "proxy/readthru_command.h"
#include "proxy/redis_int.h"
#include "proxy/server.h"
#include "proxy/write_behind_batch.h"
#include "proxy/write_plan.h"
#include "proxy/write_through.h"
#include "resp/ascii_case.h"
#include "resp/errors.h"
#include "resp/pubsub_frame.h"
#include "resp/reply_encoder.h"
#include "resp/reply_framer.h"

namespace readthru {
namespace {

// The CLIENT command's entry in the command table.
const resp::CommandInfo* clientCommand() {
  static const resp::CommandInfo* const kClient = resp::findCommand("client");
  return kClient;
}

size_t g_live = 0;
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kHandOffBytes = 1024 * 1024;
// Past this many reply bytes queued behind the head slot, the output limits are checked at once.
constexpr size_t kOutputCheckBytes = 1024 * 1024;
// A tunnel stops reading its upstream connection while this much output waits for the client,
// and starts again once it is down to the low mark.
constexpr size_t kTunnelHighWater = 1024 * 1024;
constexpr size_t kTunnelLowWater = 256 * 1024;
// Reads land here when the client has no partial request buffered; what a read leaves unparsed
// is copied to the client's own buffer, so idle clients hold no buffer at all.
char g_read_buffer[kReadChunk];
// The command being dispatched; only one is in flight at a time on the loop thread.
resp::Command g_command;

// A client-chosen name for a log line: at most 64 bytes (the log escapes what would break a line).
std::string shortName(std::string_view s) {
  if (s.size() <= 64) return std::string(s);
  return std::string(s.substr(0, 64)) + "...";
}

// A command readthru sends inside MULTI in place of one the user may not run: Redis refuses
// it as unknown, which fails the transaction's EXEC as the refusal would have.
constexpr std::string_view kRefusedInMulti = "*1\r\n$24\r\nreadthru-refused-command\r\n";

bool validNameChars(std::string_view s) {
  for (char c : s) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

// MONITOR lines look like "+1700000000.123456 [0 127.0.0.1:5000] "GET" "k"".
bool isMonitorLine(const std::string& frame) {
  if (frame.size() < 4 || frame[0] != '+') return false;
  size_t i = 1;
  while (i < frame.size() && frame[i] >= '0' && frame[i] <= '9') ++i;
  return i > 1 && i < frame.size() && frame[i] == '.';
}

// An inline request goes upstream in multibulk form.
void encodeInline(const resp::Command& cmd, std::string* req) {
  resp::ReplyEncoder e(req, 2);
  e.arrayHeader(cmd.argv.size());
  for (auto a : cmd.argv) e.bulk(a);
}

// The command's bytes as they go upstream.
std::string request(const resp::Command& cmd) {
  std::string out;
  if (cmd.is_inline) {
    encodeInline(cmd, &out);
  } else {
    out.assign(cmd.raw);
  }
  return out;
}

// Replaces the upstream's reply with readthru's own (see kRefusedInMulti).
class ReplaceReply final : public SlotInterceptor {
 public:
  explicit ReplaceReply(std::string reply) : reply_(std::move(reply)) {}
  void onReply(ReplySlot* slot) override {
    slot->data_.clear();
    slot->finishHeld(std::move(reply_));
    delete this;
  }

 private:
  std::string reply_;
};

}  // namespace

struct ClientConn::WriteReq {
  uv_write_t req;
  std::string buf;
};

size_t ClientConn::liveCount() { return g_live; }

ClientConn::ClientConn(Server* server, uint64_t id, bool unix_socket)
    : server_(server), id_(id), parser_(&server->config().parser), unix_socket_(unix_socket) {
  ++g_live;
  if (unix_socket_) {
    uv_pipe_init(server_->loop(), &pipe_, 0);
  } else {
    uv_tcp_init(server_->loop(), &tcp_);
  }
  stream()->data = this;
  setUser(server_->acl().initialUser());
  last_active_ = created_ = uv_now(server_->loop());
}

ClientConn::~ClientConn() { --g_live; }

void ClientConn::start(std::string_view reject) {
  if (!unix_socket_) uv_tcp_nodelay(&tcp_, 1);
  if (!reject.empty()) {
    replyError(reject);
    close_after_flush_ = true;
    return;
  }
  resumeReading();
}

void ClientConn::resumeReading() {
  if (reading_ || closing_ || close_after_flush_) return;
  reading_ = true;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<ClientConn*>(h->data);
        if (self->in_.empty()) {
          *buf = uv_buf_init(g_read_buffer, kReadChunk);
          return;
        }
        // A partial request is buffered: read straight behind it, with room reserved once for
        // the whole of a large bulk.
        size_t want = self->parser_.bytesWanted();
        size_t have = self->in_.size();
        size_t room = want > have ? want - have : kReadChunk;
        char* p = self->in_.prepareAppend(std::max(room, kReadChunk));
        size_t n = std::min<size_t>(self->in_.tailroom(), 1u << 30);
        *buf = uv_buf_init(p, static_cast<unsigned>(n));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        static_cast<ClientConn*>(s->data)->onRead(nread, buf);
      });
}

void ClientConn::stopReading() {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void ClientConn::onRead(ssize_t nread, const uv_buf_t* buf) {
  bool into_own = buf->base != nullptr && buf->base != g_read_buffer;
  if (into_own && nread > 0) in_.commit(static_cast<size_t>(nread));
  if (nread < 0) {
    // The client went away (or broke): like redis-server, drop it and whatever it was owed.
    close();
    return;
  }
  if (nread == 0) return;
  last_active_ = uv_now(server_->loop());
  activeClients().note(last_active_, &busy_window_);
  read_at_ns_ = uv_hrtime();
  if (tunnel_) {
    if (into_own) {
      relayToUpstream(in_.data(), in_.size());
      in_.consume(in_.size());
    } else {
      relayToUpstream(g_read_buffer, static_cast<size_t>(nread));
    }
    return;
  }
  if (!into_own) {
    // Parse straight from the shared buffer; keep only the unparsed rest.
    size_t consumed = 0;
    processFrom(g_read_buffer, static_cast<size_t>(nread), &consumed);
    if (closing_) return;
    in_.append(g_read_buffer + consumed, static_cast<size_t>(nread) - consumed);
  } else {
    processBuffered();
  }
  if (closing_) return;
  if (in_.size() > server_->config().query_buffer_limit) {
    log::warning("closing client id={}: query buffer over client_query_buffer_limit", id_);
    close();
  }
}

void ClientConn::processBuffered() {
  size_t consumed = 0;
  processFrom(in_.data(), in_.size(), &consumed);
  if (closing_) return;
  if (in_handed_off_) {
    in_handed_off_ = false;  // in_ was emptied by the hand-off
    return;
  }
  in_.consume(consumed);
  if (in_.empty() && in_.capacity() > kReadChunk) in_.release();
}

void ClientConn::processFrom(const char* data, size_t len, size_t* consumed) {
  *consumed = 0;
  const size_t max_pending = static_cast<size_t>(server_->config().max_pending_requests);
  while (!closing_ && !close_after_flush_ && !blocked_) {
    if (slots_ >= max_pending) {
      // A fast pipeliner is paused, not dropped: reading resumes once replies drain.
      paused_ = true;
      stopReading();
      break;
    }
    size_t used = 0;
    resp::ParseStatus st =
        parser_.parse(data + *consumed, len - *consumed, &used, &g_command, user_ != nullptr);
    if (st == resp::ParseStatus::kNeedMore) {
      *consumed += used;
      break;
    }
    if (st == resp::ParseStatus::kError) {
      protocolError(parser_.error());
      break;
    }
    ReplySlot* before = tail_;
    if (!dispatch(g_command)) {
      // Ordering barrier: the command is parsed again once the replies in flight are back.
      blocked_ = true;
      paused_ = true;
      stopReading();
      break;
    }
    if (tail_ != before && tail_ != nullptr) {
      // The command's slot: timed from its read to its flush.
      tail_->class_ = command_class_;
      tail_->taken_at_ns_ = read_at_ns_;
      server_->commandMetrics()->taken(command_class_);
    }
    *consumed += used;
    if (in_handed_off_) break;  // `data` went upstream with the request
    if (tunnel_) {
      // What the client sent after SYNC is no longer parsed: it is the upstream's to read.
      relayToUpstream(data + *consumed, len - *consumed);
      *consumed = len;
      break;
    }
  }
}

bool ClientConn::ownUpstreamCredentials(std::string_view user, std::string_view password) const {
  const Config& config = server_->config();
  std::string_view own_user = config.upstream_username;
  if (own_user.empty()) own_user = "default";
  // Compared as hashes, in time independent of where the passwords differ.
  return !upstream_user_ && !config.upstream_password.empty() && user == own_user &&
         hashesEqual(sha256(password), sha256(config.upstream_password));
}

void ClientConn::passAuthUpstream(const resp::Command& cmd, RouteDecision* d) {
  switch (d->local) {
    case LocalCommand::kAuth: {
      size_t argc = cmd.argv.size();
      std::string_view user = argc == 3 ? cmd.argv[1] : std::string_view("default");
      if ((argc == 2 || argc == 3) && ownUpstreamCredentials(user, cmd.argv.back())) {
        // The credentials readthru's shared connections already use: nothing to switch, and
        // answerAuth says +OK.
        return;
      }
      d->route = Route::kPin;
      d->local = LocalCommand::kNone;
      d->effect = StateEffect::kUpstreamAuth;
      return;
    }
    case LocalCommand::kHello: {
      // HELLO <protover> ... AUTH <user> <password> ...: as AUTH, but Redis answers the whole
      // HELLO (protocol, name and all) on the connection the client then keeps.
      const auto& argv = cmd.argv;
      for (size_t j = 2; j + 2 < argv.size(); ++j) {
        if (!equalsIgnoreCase(argv[j], "auth")) continue;
        if (ownUpstreamCredentials(argv[j + 1], argv[j + 2])) return;  // answerHello's
        d->route = Route::kPin;
        d->local = LocalCommand::kNone;
        d->effect = StateEffect::kUpstreamHello;
        return;
      }
      return;
    }
    case LocalCommand::kAclRefused:
      d->route = Route::kShared;  // or the client's own connection, when it has one
      d->local = LocalCommand::kNone;
      return;
    case LocalCommand::kClientSetName:
    case LocalCommand::kClientGetName:
    case LocalCommand::kAclWhoami:
      // A client AUTHed upstream keeps its connection: its name and user are that connection's.
      if (upstream_user_) {
        d->route = Route::kShared;
        d->local = LocalCommand::kNone;
      }
      return;
    default:
      return;
  }
}

void ClientConn::startTunnel(const resp::Command& cmd, backends::UpstreamConn* conn) {
  ReplySlot* s = newSlot();
  s->awaiting_ = true;
  s->effect_ = StateEffect::kTunnel;
  ++inflight_;
  inflight_conn_ = conn;
  conn->sendTunnel(request(cmd), s);
  tunnel_ = true;
  server_->flusher()->mark(this);
}

void ClientConn::relayToUpstream(const char* data, size_t len) {
  if (len == 0 || closing_) return;
  if (pinned_ == nullptr) {
    close();  // the tunnel's connection is gone: nothing to relay to
    return;
  }
  pinned_->sendUnanswered(std::string_view(data, len));
  if (pinned_->queuedBytes() > server_->config().query_buffer_limit) {
    log::warning("closing client id={}: relayed input over client_query_buffer_limit", id_);
    close();
  }
}

void ClientConn::protocolError(std::string_view message) {
  log::info("client id={}: {}", id_, message);
  replyError(message);
  drainAndClose();
}

void ClientConn::replyError(std::string_view message) {
  std::string out;
  resp::ReplyEncoder(&out, protocol_).error(message);
  completeSlot(newSlot(), std::move(out));
  server_->flusher()->mark(this);
}

ReplySlot* ClientConn::newSlot() {
  auto* s = ReplySlot::make(this);
  appendSlot(s);
  return s;
}

void ClientConn::appendSlot(ReplySlot* s) {
  s->prev_ = tail_;
  s->next_ = nullptr;
  if (tail_ != nullptr) {
    tail_->next_ = s;
  } else {
    head_ = s;
  }
  tail_ = s;
  ++slots_;
}

void ClientConn::insertSlotBefore(ReplySlot* s, ReplySlot* before) {
  s->next_ = before;
  s->prev_ = before->prev_;
  if (before->prev_ != nullptr) {
    before->prev_->next_ = s;
  } else {
    head_ = s;
  }
  before->prev_ = s;
  ++slots_;
}

bool ClientConn::dispatch(const resp::Command& cmd) {
  const Config& config = server_->config();
  RouteDecision d = routeCommand(cmd.argv);
  if (d.route == Route::kLocal && server_->acl().open()) passAuthUpstream(cmd, &d);
  command_class_ = commandClass(d);
  if (last_cmd_ != d.info) last_cmd_ = d.info;
  if (d.info != nullptr && d.info->has_subcommands && cmd.argv.size() > 1) {
    last_sub_ = asciiLower(cmd.argv[1]);
  } else if (!last_sub_.empty()) {
    last_sub_.clear();
  }
  if (!unrestricted_) {
    // Not authenticated, or a user with restrictions. redis-server checks the command's
    // existence and arity first, then authentication, then the user's permissions.
    std::string err;
    if (d.info == nullptr) {
      std::string args;
      for (size_t i = 1; i < cmd.argv.size() && args.size() < 128; ++i) {
        args += fmt::format("'{}' ", cmd.argv[i].substr(0, 128 - args.size()));
      }
      err = fmt::format("ERR unknown command '{}', with args beginning with: {}",
                        cmd.argv[0].substr(0, 128), args);
    } else if ((d.info->arity > 0 && d.info->arity != static_cast<int>(cmd.argv.size())) ||
               static_cast<int>(cmd.argv.size()) < -d.info->arity) {
      err = fmt::format("ERR wrong number of arguments for '{}' command", d.info->name);
    } else if (user_ != nullptr) {
      err = server_->acl().check(*user_, d.info, cmd.argv);
    } else if (!(d.info->flags & resp::kFlagNoAuth)) {
      err = std::string(resp::err::kNoAuth);
    }
    if (!err.empty() && user_ != nullptr) return refuseCommand(err);
    if (!err.empty()) {
      replyError(err);
      return true;
    }
  }
  // A pinned client whose state is over goes back to the shared connections first, so what
  // follows (a local RESET included) is decided as for any unpinned client.
  if (pinned_ != nullptr && d.route != Route::kPin && pinned_->pending() == 0 && pinReleasable()) {
    unpin();
  }
  if ((d.effect == StateEffect::kClientReply || d.effect == StateEffect::kSelect) &&
      pinned_ != nullptr && inflight_ > 0) {
    // Whether Redis takes CLIENT REPLY (it refuses it to a RESP2 subscriber) decides which of
    // the following requests get replies: wait until the state it depends on is known.
    return false;
  }
  if (d.effect == StateEffect::kClientReply && in_multi_ && pinned_ != nullptr) {
    // Redis 7.0 runs it at EXEC and breaks the protocol: EXEC's array announces an element the
    // reply mode then suppresses. Valkey refuses it as a command not allowed in a transaction,
    // and so does readthru (the transaction is aborted, as for Redis's other no-multi commands).
    return refuseCommand("ERR Command not allowed inside a transaction");
  }
  if (d.route == Route::kLocal && pinned_ != nullptr && inflight_ > 0) {
    // A pinned client's state (subscribed? which protocol?) depends on replies still in flight;
    // readthru answers its own commands once they are in, as redis-server would in sequence.
    return false;
  }
  if (d.route == Route::kLocal && inPubsub() && protocol_ == 2 && d.local != LocalCommand::kQuit &&
      d.local != LocalCommand::kReset) {
    // What redis-server allows a RESP2 subscriber; readthru's own commands obey it too.
    std::string name(d.info->name);
    if (d.info->has_subcommands && cmd.argv.size() > 1) name += "|" + asciiLower(cmd.argv[1]);
    if (!takeReplyExpected()) {
      completeSlot(newSlot(), std::string());  // CLIENT REPLY OFF silences errors too
      return true;
    }
    replyError(
        fmt::format("ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                    "PING / QUIT / RESET are allowed in this context",
                    name));
    return true;
  }
  if (d.route == Route::kLocal && d.local == LocalCommand::kClientId && pinned_ != nullptr &&
      !in_multi_ && pinned_->serverId() == 0) {
    // A pinned client goes by its connection's id: the one CLIENT UNBLOCK and TRACKING REDIRECT
    // know it by. Redis tells it once (StateEffect::kClientId); later asks are answered here.
    RouteDecision ask = d;
    ask.effect = StateEffect::kClientId;
    forward(cmd, ask, pinned_);
    return true;
  }
  if (d.route == Route::kLocal && in_multi_ && pinned_ != nullptr &&
      d.local == LocalCommand::kClientKill) {
    // Queued, it would run upstream at EXEC and kill readthru's own connections there.
    return refuseCommand("ERR CLIENT KILL inside MULTI is not supported by readthru");
  }
  if (d.route == Route::kLocal && in_multi_ && pinned_ != nullptr &&
      (d.local == LocalCommand::kClientSetName || d.local == LocalCommand::kClientGetName ||
       d.local == LocalCommand::kClientId || d.local == LocalCommand::kClientSetInfo ||
       d.local == LocalCommand::kClientList || d.local == LocalCommand::kClientInfo ||
       d.local == LocalCommand::kHello)) {
    // Inside MULTI Redis queues these (+QUEUED) and runs them at EXEC: so does the upstream.
    if (d.local == LocalCommand::kClientSetName && cmd.argv.size() == 3 &&
        validNameChars(cmd.argv[2])) {
      name_ = std::string(cmd.argv[2]);
    }
    // A HELLO run at EXEC changes the connection's protocol behind readthru's back: the client
    // keeps this connection for good.
    if (d.local == LocalCommand::kHello) sticky_ = true;
    forward(cmd, d, pinned_);
    return true;
  }
  if (d.route == Route::kLocal && !(d.local == LocalCommand::kReset && pinned_ != nullptr)) {
    // Redis never sees these: MONITOR clients learn of them from readthru.
    if (!server_->monitorFeed()->empty()) {
      server_->monitorFeed()->feed(d.info, cmd.argv, db_, peerAddress());
    }
    bool expected = beginLocalReply();
    ReplySlot* s = newSlot();
    if (d.local == LocalCommand::kReadthru && isReadthruReload(cmd.argv)) {
      awaitReload(s, expected);
      return true;
    }
    answerLocal(cmd, d, s);
    if (!expected) s->data_.clear();
    server_->flusher()->mark(this);
    return true;
  }
  backends::UpstreamConn* target = nullptr;
  if (pinned_ != nullptr) {
    target = pinned_;
  } else if (d.route == Route::kPin) {
    if (inflight_ > 0) return false;
    pin();
    target = pinned_;
  } else {
    target = server_->pool()->shared(id_, protocol_);
    if (target == nullptr) {
      replyError(resp::err::kUpstreamUnavailable);
      return true;
    }
  }
  if (inflight_ > 0 && inflight_conn_ != target) return false;
  (void)config;
  if (d.effect == StateEffect::kTunnel && !in_multi_) {
    startTunnel(cmd, target);
    return true;
  }
  switch (dispatchWrite(cmd, d, target)) {
    case WriteDispatch::kDone:
      return true;
    case WriteDispatch::kWait:
      return false;
    case WriteDispatch::kForward:
      break;
  }
  std::vector<std::string> unblock;
  if (d.info == clientCommand() && unblockByReadthruId(cmd, &unblock)) {
    resp::Command translated;
    translated.argv.assign(unblock.begin(), unblock.end());
    std::string request;
    resp::ReplyEncoder e(&request, 2);  // a multibulk request is an array of bulk strings
    e.arrayHeader(unblock.size());
    for (const std::string& a : unblock) e.bulk(a);
    translated.raw = request;
    forward(translated, d, target);
    return true;
  }
  Loader* on_nil = nullptr;
  SlotInterceptor* interceptor = interceptorFor(cmd, d, &on_nil);
  forward(cmd, d, target, interceptor, on_nil);
  return true;
}

bool ClientConn::unblockByReadthruId(const resp::Command& cmd, std::vector<std::string>* out) {
  int64_t id = 0;
  if (cmd.argv.size() < 3 || !equalsIgnoreCase(cmd.argv[1], "unblock") ||
      !parseRedisInt(cmd.argv[2], &id) || id <= 0) {
    return false;
  }
  for (ClientConn* c : server_->openClients()) {
    if (c->id_ != static_cast<uint64_t>(id) || c->pinned_ == nullptr) continue;
    uint64_t upstream = c->pinned_->serverId();
    if (upstream == 0) return false;
    out->assign(cmd.argv.begin(), cmd.argv.end());
    (*out)[2] = std::to_string(upstream);
    return true;
  }
  return false;
}

bool ClientConn::beginLocalReply() {
  bool skipping = reply_mode_ == ReplyMode::kSkipNext;
  bool expected = takeReplyExpected();
  if (skipping && pinned_ != nullptr) {
    // Redis skips the reply of the next request it sees: let that be a PING, so the request
    // after this local one is answered on both sides.
    std::string ping;
    resp::ReplyEncoder::command(&ping, {"PING"});
    pinned_->sendUnanswered(ping);
    unanswered_ = true;
  }
  return expected;
}

bool ClientConn::refuseCommand(std::string_view error) {
  // Whether the client is in a transaction is known once the replies in flight are in.
  if (pinned_ != nullptr && inflight_ > 0) return false;
  std::string out;
  resp::ReplyEncoder(&out, protocol_).error(error);
  if (in_multi_ && pinned_ != nullptr) {
    resp::Command refused;
    refused.argv = {"readthru-refused-command"};
    refused.raw = kRefusedInMulti;
    forward(refused, RouteDecision{}, pinned_, new ReplaceReply(std::move(out)));
    return true;
  }
  if (!beginLocalReply()) out.clear();
  completeSlot(newSlot(), std::move(out));
  server_->flusher()->mark(this);
  return true;
}

void ClientConn::setUser(const AclUser* user) {
  user_ = user;
  unrestricted_ = user != nullptr && user->allowsEverything();
}

bool ClientConn::rebindUser(const Acl& acl) {
  if (user_ == nullptr) {
    setUser(acl.initialUser());
    return true;
  }
  // The default user stays whatever it became (Redis changes it in place): its clients keep
  // their authentication, as they do when requirepass is set at run time.
  if (user_->name() == "default") {
    setUser(&acl.defaultUser());
    return true;
  }
  const AclUser* next = acl.find(user_->name());
  if (next == nullptr || !next->sameAs(*user_)) {
    setUser(nullptr);
    return false;
  }
  setUser(next);
  return true;
}

void ClientConn::authFailed(std::string_view how, std::string_view user) {
  server_->acl().noteAuthFailure();
  log::warning("client id={} addr={}: {} failed for user '{}'", id_, peerAddress(), how,
               shortName(user));
}

namespace {

// "ip:port" or "[ip6]:port"; empty when `addr` is neither family.
std::string formatInetAddress(const sockaddr_storage& addr) {
  char ip[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    uv_ip6_name(a, ip, sizeof ip);
    return fmt::format("[{}]:{}", ip, ntohs(a->sin6_port));
  }
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    uv_ip4_name(a, ip, sizeof ip);
    return fmt::format("{}:{}", ip, ntohs(a->sin_port));
  }
  return {};
}

}  // namespace

uint64_t ClientConn::reportedId() const {
  if (pinned_ != nullptr && pinned_->serverId() != 0) return pinned_->serverId();
  return id_;
}

std::string ClientConn::peerAddress() const {
  if (unix_socket_) return "unix:" + server_->config().unixsocket;
  std::string addr = socketAddress(false);
  return addr.empty() ? "?" : addr;
}

std::string ClientConn::socketAddress(bool local) const {
  if (unix_socket_) return server_->config().unixsocket + ":0";
  sockaddr_storage addr{};
  int len = sizeof addr;
  auto* sa = reinterpret_cast<sockaddr*>(&addr);
  int rc = local ? uv_tcp_getsockname(&tcp_, sa, &len) : uv_tcp_getpeername(&tcp_, sa, &len);
  return rc == 0 ? formatInetAddress(addr) : std::string();
}

ClientSummary ClientConn::summary(const resp::Command* running) const {
  ClientSummary c;
  uint64_t now = uv_now(server_->loop());
  c.id = reportedId();
  c.addr = socketAddress(false);
  c.laddr = socketAddress(true);
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(&tcp_), &fd) == 0) c.fd = fd;
  c.name = name_;
  c.age_s = (now - std::min(now, created_)) / 1000;
  c.idle_s = (now - std::min(now, last_active_)) / 1000;
  if (tunnel_) c.flags += 'S';
  if (monitor_) c.flags += 'O';
  if (inPubsub()) c.flags += 'P';
  if (in_multi_) c.flags += 'x';
  if (last_cmd_ != nullptr && (last_cmd_->flags & resp::kFlagBlocking) && inflight_ > 0) {
    c.flags += 'b';
  }
  if (close_after_flush_) c.flags += 'c';
  if (unix_socket_) c.flags += 'U';
  if (c.flags.empty()) c.flags = "N";
  c.db = db_;
  if (pubsub_) {
    c.sub = pubsub_->channels.size();
    c.psub = pubsub_->patterns.size();
    c.ssub = pubsub_->shard_channels.size();
  }
  c.multi = in_multi_ ? multi_queued_ : -1;
  c.qbuf = in_.size() + (running != nullptr ? running->raw.size() : 0);
  c.qbuf_free = in_.capacity() - in_.size();
  c.rbs = in_.capacity();
  // Redis's reply buffer (obl, 16 KB) and the reply list beyond it (oll, in 16 KB blocks); the
  // reply of the command running is not made yet.
  constexpr size_t kReplyBuffer = 16 * 1024;
  size_t owed = outputBytes();
  c.obl = std::min(owed, kReplyBuffer);
  c.oll = (owed - c.obl + kReplyBuffer - 1) / kReplyBuffer;
  c.omem = owed;
  c.tot_mem = sizeof(*this) + in_.capacity() + out_.capacity() + slot_bytes_ + name_.capacity();
  c.events = reading_ ? "r" : "";
  if (write_ != nullptr) c.events += 'w';
  if (last_cmd_ == nullptr) {
    c.cmd = "NULL";
  } else {
    c.cmd = asciiLower(last_cmd_->name);
    if (!last_sub_.empty()) c.cmd += "|" + last_sub_;
  }
  c.user = user_ != nullptr ? user_->name() : "default";
  c.resp = protocol_;
  if (tunnel_) {
    c.type = ClientType::kReplica;
  } else if (inPubsub()) {
    c.type = ClientType::kPubsub;
  }
  return c;
}

void ClientConn::answerClientList(const resp::Command& cmd, LocalCommand which, std::string* out) {
  resp::ReplyEncoder e(out, protocol_);
  if (which == LocalCommand::kClientInfo) {
    if (cmd.argv.size() != 2) {
      return e.error("ERR wrong number of arguments for 'client|info' command");
    }
    return e.verbatim("txt", formatClientLine(summary(&cmd)) + "\n");
  }
  if (which == LocalCommand::kClientList) {
    ClientListFilter filter;
    std::string err = parseClientList(cmd.argv, &filter);
    if (!err.empty()) return e.error(err);
    std::vector<ClientSummary> all;
    for (ClientConn* c : server_->openClients()) {
      all.push_back(c->summary(c == this ? &cmd : nullptr));
    }
    std::string text;
    auto add = [&text](const ClientSummary& c) { text += formatClientLine(c) + "\n"; };
    if (filter.ids.empty()) {
      for (const ClientSummary& c : all) {
        if (filter.matches(c)) add(c);
      }
    } else {
      // In the order the ids were given, as redis-server answers.
      for (uint64_t id : filter.ids) {
        for (const ClientSummary& c : all) {
          if (c.id == id) add(c);
        }
      }
    }
    return e.verbatim("txt", text);
  }
  ClientKillFilter filter;
  std::string err = parseClientKill(cmd.argv, &filter);
  if (!err.empty()) return e.error(err);
  if (filter.user && server_->acl().find(*filter.user) == nullptr) {
    return e.error(fmt::format("ERR No such user '{}'", *filter.user));
  }
  std::vector<ClientConn*> victims;
  bool me = false;
  for (ClientConn* c : server_->openClients()) {
    if (!filter.matches(c->summary(), c == this)) continue;
    if (c == this) {
      me = true;
    } else {
      victims.push_back(c);
    }
  }
  size_t killed = victims.size() + (me ? 1 : 0);
  for (ClientConn* c : victims) {
    log::info("client id={}: killed by CLIENT KILL from client id={}", c->id_, id_);
    c->close();
  }
  if (filter.old_form) {
    if (killed == 0) return e.error("ERR No such client");
    e.ok();
  } else {
    e.integer(static_cast<int64_t>(killed));
  }
  // Like QUIT: this reply is the last one; nothing after it runs.
  if (me) drainAndClose();
}

backends::UpstreamConn* ClientConn::writeConn() {
  if (pinned_ != nullptr && reply_mode_ == ReplyMode::kOn) return pinned_;
  return server_->pool()->shared(id_, protocol_);
}

ClientConn::WriteDispatch ClientConn::dispatchWrite(const resp::Command& cmd,
                                                    const RouteDecision& d,
                                                    backends::UpstreamConn* target) {
  if (d.info == nullptr || !(d.info->flags & resp::kFlagWrite) || db_ != 0 ||
      !server_->loaders()->hasWriters()) {
    return WriteDispatch::kForward;
  }
  WritePlan plan = planWrite(server_->loaders(), cmd.argv, d.info);
  switch (plan.kind) {
    case WritePlan::Kind::kNone:
      return WriteDispatch::kForward;
    case WritePlan::Kind::kRefuse:
      if (takeReplyExpected()) {
        replyError(plan.error);
      } else {
        completeSlot(newSlot(), std::string());
      }
      return WriteDispatch::kDone;
    case WritePlan::Kind::kBehind: {
      countWrites(plan);
      if ((plan.op == WritePlan::Op::kHset || plan.op == WritePlan::Op::kHdel) && !in_multi_ &&
          server_->loaders()->find(plan.items.front().key) != nullptr) {
        // The hash may not be cached: see write_through.h.
        return startHeldWrite(cmd, d, std::move(plan), WriteBehind::wrap(plan, cmd.argv));
      }
      // A write: read-through hears of it (nothing intercepts the reply of a write).
      (void)interceptorFor(cmd, d);
      if (reply_mode_ == ReplyMode::kOn && !in_multi_ && target != pinned_ &&
          WriteBehind::batchable(plan, cmd.argv)) {
        // Joins the shared transaction of this connection's other write-behind writes.
        ReplySlot* s = newSlot();
        s->awaiting_ = true;
        s->proves_unanswered_ = unanswered_;
        ++inflight_;
        inflight_conn_ = target;
        bool plain_set = cmd.argv.size() == 3 && plan.op == WritePlan::Op::kSet &&
                         equalsIgnoreCase(cmd.argv[0], "set");
        if (cmd.is_inline) {
          WriteBehindBatch::join(target, plan, request(cmd), plain_set, s);
        } else {
          WriteBehindBatch::join(target, plan, cmd.raw, plain_set, s);  // no copy
        }
        return WriteDispatch::kDone;
      }
      // Otherwise the command runs inside a script that also queues its keys.
      std::string wrapped = WriteBehind::wrap(plan, cmd.argv);
      resp::Command as_script = cmd;
      as_script.raw = wrapped;
      as_script.is_inline = false;
      forward(as_script, d, target, nullptr);
      return WriteDispatch::kDone;
    }
    case WritePlan::Kind::kThrough:
      break;
  }
  if (in_multi_) {
    replyError(fmt::format("ERR writer '{}': write-through keys cannot be written inside MULTI",
                           plan.items.front().writer->name()));
    return WriteDispatch::kDone;
  }
  return startHeldWrite(cmd, d, std::move(plan), request(cmd));
}

ClientConn::WriteDispatch ClientConn::startHeldWrite(const resp::Command& cmd,
                                                     const RouteDecision& d, WritePlan&& plan,
                                                     std::string&& request) {
  // Earlier requests still unanswered (a load, say) must not see this write: it waits for them.
  for (ReplySlot* s = head_; s != nullptr; s = s->next_) {
    if (!s->done_) return WriteDispatch::kWait;
  }
  if (server_->readThrough()->watchingWrites()) server_->readThrough()->noteWrite(cmd.argv, d.info);
  bool expect_reply = takeReplyExpected();
  ReplySlot* s = newSlot();
  s->held_ = true;
  // Nothing else of this client goes upstream until the write is answered.
  ++inflight_;
  inflight_conn_ = nullptr;
  auto* w = new WriteThroughRequest(server_, s, std::move(plan), std::move(request), expect_reply);
  w->start();
  server_->flusher()->mark(this);
  return WriteDispatch::kDone;
}

SlotInterceptor* ClientConn::interceptorFor(const resp::Command& cmd, const RouteDecision& d,
                                            Loader** on_nil) {
  if (d.info == nullptr) return nullptr;
  static const resp::CommandInfo* const kInfo = resp::findCommand("info");
  if (d.info == kInfo) return in_multi_ ? nullptr : interceptInfo(server_, cmd.argv);
  ReadThrough* rt = server_->readThrough();
  // Loaders serve db 0, the shared connections' db.
  if (!rt->active() || db_ != 0) return nullptr;
  if (d.info->flags & (resp::kFlagWrite | resp::kFlagMayReplicate)) {
    // may_replicate: scripts and functions (EVAL, FCALL) write without the write flag.
    // Queued in MULTI counts too: superseding a load needlessly only costs a reload.
    if (rt->watchingWrites()) rt->noteWrite(cmd.argv, d.info);
    return nullptr;
  }
  // In a transaction the reply is +QUEUED; under WATCH a fill would touch the watched key and
  // fail the client's EXEC: both stay plain Redis.
  if (in_multi_ || watching_) return nullptr;
  return rt->intercept(cmd, d.info, protocol_, on_nil);
}

SlotInterceptor* ClientConn::interceptNil(RegistryRef registry, Loader* loader,
                                          std::string_view key, int protocol) {
  return server_->readThrough()->interceptNil(std::move(registry), loader, key, protocol);
}

bool ClientConn::takeReplyExpected() {
  switch (reply_mode_) {
    case ReplyMode::kOn:
      return true;
    case ReplyMode::kOff:
      return false;
    case ReplyMode::kSkipNext:
      reply_mode_ = ReplyMode::kOn;
      return false;
  }
  return true;
}

void ClientConn::forward(const resp::Command& cmd, const RouteDecision& d,
                         backends::UpstreamConn* conn, SlotInterceptor* interceptor,
                         Loader* on_nil) {
  if (in_multi_ && d.effect != StateEffect::kExecOrDiscard) ++multi_queued_;
  bool skipped = reply_mode_ == ReplyMode::kSkipNext;
  bool expect_reply = takeReplyExpected();
  if (d.effect == StateEffect::kClientReply && cmd.argv.size() == 3 && !in_multi_ &&
      !(inPubsub() && protocol_ == 2)) {
    // Redis answers ON, stays silent for OFF and SKIP (and for the request after SKIP).
    if (equalsIgnoreCase(cmd.argv[2], "on")) {
      reply_mode_ = ReplyMode::kOn;
      expect_reply = true;
    } else if (equalsIgnoreCase(cmd.argv[2], "off")) {
      reply_mode_ = ReplyMode::kOff;
      expect_reply = false;
    } else if (equalsIgnoreCase(cmd.argv[2], "skip")) {
      if (reply_mode_ == ReplyMode::kOn) reply_mode_ = ReplyMode::kSkipNext;
      expect_reply = false;
    }
  }
  if (d.effect == StateEffect::kSubscribe || d.effect == StateEffect::kUnsubscribe) {
    // Redis confirms (un)subscriptions even with replies switched off.
    expect_reply = true;
  }
  if (d.effect == StateEffect::kReset) {
    // RESET switches replies back on before it answers, unless it is the request CLIENT REPLY
    // SKIP silences. Requests after it are answered whatever the reply mode was: decide that
    // now, not when the +RESET arrives.
    expect_reply = !skipped;
    reply_mode_ = ReplyMode::kOn;
    if (skipped) {
      // No +RESET will say it ran; RESET cannot fail, and it is sent only once the replies in
      // flight are in (it is one of readthru's own commands), so its effect is due now.
      resetState();
      conn->setProtocol(2);
    }
  }
  if (d.effect == StateEffect::kSelect && in_multi_) {
    // Queued in a transaction, SELECT takes effect at EXEC: readthru stops tracking the db.
    sticky_ = true;
  }
  if (!expect_reply) {
    noteSilencedEffect(d.effect);
    delete interceptor;
    ReplySlot* s = newSlot();
    s->done_ = true;
    std::string req;
    unanswered_ = true;
    conn->sendUnanswered(cmd.is_inline ? (encodeInline(cmd, &req), std::string_view(req))
                                       : cmd.raw);
    server_->flusher()->mark(this);
    return;
  }
  ReplySlot* s = newSlot();
  s->awaiting_ = true;
  s->interceptor_ = interceptor;
  if (on_nil != nullptr) {
    s->nil_loader_ = on_nil;
    // interceptorFor() found it in the current registry, just now.
    s->nil_registry_ = RegistryRef(server_->loaders());
    s->nil_key_.assign(cmd.argv[1]);
    s->nil_protocol_ = protocol_;
  }
  s->effect_ = d.effect;
  s->proves_unanswered_ = unanswered_;
  size_t nargs = cmd.argv.size() - 1;
  switch (d.effect) {
    case StateEffect::kSubscribe:
      s->frames_left_ = nargs > 0 ? static_cast<int>(nargs) : 1;
      break;
    case StateEffect::kUnsubscribe:
      if (nargs > 0) {
        s->frames_left_ = static_cast<int>(nargs);
      } else {
        s->frames_left_ = -1;
        char k = static_cast<char>(tolower(static_cast<unsigned char>(cmd.argv[0][0])));
        s->unsubscribe_kind_ = k == 'u' ? 'c' : k;
      }
      break;
    case StateEffect::kSelect:
      // What does not parse, Redis refuses too; the db changes only on its +OK.
      if (nargs == 1) (void)parseRedisInt(cmd.argv[1], &s->select_db_);
      break;
    case StateEffect::kSticky:
      sticky_ = true;
      break;
    case StateEffect::kUpstreamAuth:
      auth_forwarded_ = true;
      // Queued in a transaction, it changes the user at EXEC, out of readthru's sight.
      if (in_multi_) sticky_ = true;
      break;
    case StateEffect::kUpstreamHello: {
      auth_forwarded_ = true;
      // Redis switches the connection's protocol itself: the client keeps it for good.
      sticky_ = true;
      int64_t ver = 0;
      if (nargs >= 1) (void)parseRedisInt(cmd.argv[1], &ver);
      s->select_db_ = ver;
      break;
    }
    default:
      break;
  }
  ++inflight_;
  inflight_conn_ = conn;
  if (cmd.is_inline) {
    std::string req;
    encodeInline(cmd, &req);
    conn->send(req, s);
  } else if (cmd.raw.size() >= kHandOffBytes && cmd.raw.data() == in_.data() &&
             cmd.raw.size() == in_.size()) {
    // A large request that is all the client has buffered: its buffer goes upstream as is, so
    // the value is never held twice.
    in_handed_off_ = true;
    conn->sendOwned(std::move(in_), s);
  } else {
    conn->send(cmd.raw, s);
  }
}

void ClientConn::pin() {
  pinned_ = server_->pool()->pinned(protocol_, static_cast<int>(db_), name_, this);
}

bool ClientConn::pinReleasable() const {
  return !in_multi_ && !watching_ && !inPubsub() && !monitor_ && !sticky_ && !upstream_user_ &&
         db_ == 0 && reply_mode_ == ReplyMode::kOn && !unanswered_;
}

void ClientConn::unpin() {
  backends::UpstreamConn* p = pinned_;
  pinned_ = nullptr;
  if (inflight_conn_ == p) inflight_conn_ = nullptr;
  // A connection a client's AUTH went through may be anybody's (after RESET, Redis's default
  // user's): nobody else gets it.
  server_->pool()->release(p, pinReleasable() && name_.empty() && !auth_forwarded_);
  auth_forwarded_ = false;
}

void ClientConn::setMonitor(bool on) {
  if (on == monitor_) return;
  monitor_ = on;
  if (on) {
    server_->monitorFeed()->add(this);
  } else {
    server_->monitorFeed()->remove(this);
  }
}

void ClientConn::resetState() {
  setMonitor(false);
  in_multi_ = multi_pubsub_ = exec_ran_pubsub_ = watching_ = sticky_ = upstream_user_ = false;
  reply_mode_ = ReplyMode::kOn;
  pubsub_.reset();
  db_ = 0;
  protocol_ = 2;
  name_.clear();
  setUser(server_->acl().initialUser());
}

size_t ClientConn::subscriptionsLeft(char kind) const {
  if (!pubsub_) return 0;
  switch (kind) {
    case 'p':
      return pubsub_->patterns.size();
    case 's':
      return pubsub_->shard_channels.size();
    default:
      return pubsub_->channels.size();
  }
}

void ClientConn::completeSlot(ReplySlot* slot, std::string&& bytes) {
  slot_bytes_ += bytes.size();
  slot->complete(std::move(bytes));
}

void ClientConn::completeHeld(ReplySlot* slot, std::string&& bytes) {
  completeSlot(slot, std::move(bytes));
  server_->flusher()->mark(this);
}

void ClientConn::slotBytesDropped(size_t bytes) { slot_bytes_ -= std::min(slot_bytes_, bytes); }

void ClientConn::slotProgress(ReplySlot* slot, size_t bytes) {
  slot_bytes_ += bytes;
  // The head streams out; bytes piling up behind it count against the output limits too.
  if (slot == head_ || slot_bytes_ > kOutputCheckBytes) server_->flusher()->mark(this);
}

void ClientConn::slotFinished(ReplySlot* slot, bool failed) {
  if (inflight_ > 0 && --inflight_ == 0) inflight_conn_ = nullptr;
  if (slot->proves_unanswered_) unanswered_ = false;
  // A SYNC that failed before any of its stream reached the client (the upstream was down) got
  // an error reply like any command: the client carries on as one.
  if (slot->effect_ == StateEffect::kTunnel && failed && !slot->streamed_) tunnel_ = false;
  applyEffect(slot, failed);
  server_->flusher()->mark(this);
}

void ClientConn::applyEffect(ReplySlot* slot, bool failed) {
  if (failed) return;
  const std::string& r = slot->data_;
  auto starts = [&r](std::string_view p) { return r.compare(0, p.size(), p) == 0; };
  // Transaction state follows what Redis answered, not what was asked: MULTI or WATCH can be
  // refused (inside a transaction, to a RESP2 subscriber), EXEC without MULTI changes nothing.
  switch (slot->effect_) {
    case StateEffect::kMulti:
      if (starts("+OK")) {
        in_multi_ = true;
        multi_queued_ = 0;
      }
      break;
    case StateEffect::kExecOrDiscard:
      if (!starts("-ERR EXEC without MULTI") && !starts("-ERR DISCARD without MULTI")) {
        in_multi_ = false;
        watching_ = false;
        // A DISCARD's +OK or an aborted EXEC's error or nil ran nothing.
        if (multi_pubsub_ && !r.empty() && r[0] == '*') {
          trackPubsubInExec(r);
          exec_ran_pubsub_ = true;
        }
        multi_pubsub_ = false;
      }
      break;
    case StateEffect::kSubscribe:
    case StateEffect::kUnsubscribe:
      if (starts("+QUEUED")) {
        multi_pubsub_ = true;
        // Redis 7.0 answers a several-channel (UN)SUBSCRIBE run by EXEC in frames that overflow
        // EXEC's array (redis/redis#12207): whatever readthru makes of them, this connection
        // never serves another client.
        sticky_ = true;
      }
      break;
    case StateEffect::kWatch:
      if (starts("+OK")) watching_ = true;
      break;
    case StateEffect::kUnwatch:
      if (starts("+OK") && !in_multi_) watching_ = false;
      break;
    case StateEffect::kSelect:
      if (r.rfind("+OK", 0) == 0) db_ = slot->select_db_;
      break;
    case StateEffect::kMonitor:
      if (r.rfind("+OK", 0) == 0) setMonitor(true);
      break;
    case StateEffect::kClientId:
      if (starts(":") && pinned_ != nullptr) {
        int64_t id = 0;
        if (parseRedisInt(std::string_view(r).substr(1, r.size() - 3), &id) && id > 0) {
          pinned_->setServerId(static_cast<uint64_t>(id));
        }
      }
      break;
    case StateEffect::kUpstreamAuth:
      // The connection is that user's now: the client keeps it (until RESET).
      if (r.rfind("+OK", 0) == 0) upstream_user_ = true;
      break;
    case StateEffect::kUpstreamHello:
      // A map (RESP3) or an array (RESP2) is Redis's HELLO reply; an error changed nothing.
      if (!r.empty() && (r[0] == '%' || r[0] == '*')) {
        upstream_user_ = true;
        if (slot->select_db_ == 2 || slot->select_db_ == 3) {
          protocol_ = static_cast<uint8_t>(slot->select_db_);
          if (pinned_ != nullptr) pinned_->setProtocol(protocol_);
        }
      }
      break;
    case StateEffect::kReset:
      if (r.rfind("+RESET", 0) == 0) {
        resetState();
        if (pinned_ != nullptr) pinned_->setProtocol(2);
      }
      break;
    default:
      break;
  }
}

void ClientConn::noteSilencedEffect(StateEffect effect) {
  // What Redis would have answered is not known, so the connection may hold state readthru did
  // not see (a transaction, a WATCH, another db, MONITOR): it never serves another client. The
  // client's own view follows what such a request does when it succeeds.
  switch (effect) {
    case StateEffect::kMulti:
      // Refused only to a RESP2 subscriber, or inside a transaction (no change then).
      if (!(inPubsub() && protocol_ == 2)) {
        in_multi_ = true;
        multi_queued_ = 0;
      }
      sticky_ = true;
      break;
    case StateEffect::kExecOrDiscard:
      in_multi_ = multi_pubsub_ = watching_ = false;
      sticky_ = true;
      break;
    case StateEffect::kWatch:
    case StateEffect::kUnwatch:
      if (!in_multi_) watching_ = effect == StateEffect::kWatch;
      sticky_ = true;
      break;
    case StateEffect::kSelect:
    case StateEffect::kMonitor:
      sticky_ = true;
      break;
    default:
      break;
  }
}

void ClientConn::trackPubsub(std::string_view frame) {
  resp::PubsubFrame f = resp::peekPubsubFrame(frame);
  if (!resp::isSubscribeReply(f.kind) || f.channel_is_nil) return;
  if (!pubsub_) pubsub_ = std::make_unique<PubsubState>();
  std::string ch(f.channel);
  switch (f.kind) {
    case resp::PubsubKind::kSubscribe:
      pubsub_->channels.insert(ch);
      break;
    case resp::PubsubKind::kPsubscribe:
      pubsub_->patterns.insert(ch);
      break;
    case resp::PubsubKind::kSsubscribe:
      pubsub_->shard_channels.insert(ch);
      break;
    case resp::PubsubKind::kUnsubscribe:
      pubsub_->channels.erase(ch);
      break;
    case resp::PubsubKind::kPunsubscribe:
      pubsub_->patterns.erase(ch);
      break;
    case resp::PubsubKind::kSunsubscribe:
      pubsub_->shard_channels.erase(ch);
      break;
    default:
      break;
  }
}

void ClientConn::trackPubsubInExec(std::string_view exec) {
  size_t header = exec.find("\r\n");
  if (header == std::string_view::npos) return;
  resp::ReplyFramer framer;
  for (size_t i = header + 2; i < exec.size();) {
    // Each element, and each message pushed between them, framed as a reply of its own.
    resp::ReplyFramer::Result r = framer.feed(exec.data() + i, exec.size() - i);
    if (r.error || !r.complete) return;
    trackPubsub(exec.substr(i, r.consumed));
    i += r.consumed;
  }
}

bool ClientConn::onUpstreamFrame(backends::UpstreamConn* conn, std::string& frame) {
  if (frame.empty()) return false;
  auto* head = static_cast<ReplySlot*>(conn->headTarget());
  bool unsolicited = false;
  char t = frame[0];
  if (monitor_ && isMonitorLine(frame)) {
    unsolicited = true;
  } else if (t == '>' ||
             (t == '*' &&
              (inPubsub() || (head != nullptr && (head->effect_ == StateEffect::kSubscribe ||
                                                  head->effect_ == StateEffect::kUnsubscribe))))) {
    resp::PubsubFrame f = resp::peekPubsubFrame(frame);
    if (resp::isSubscribeReply(f.kind)) {
      trackPubsub(frame);
      // Redis may also unsubscribe on its own (a shard channel's slot moved): nobody asked.
      unsolicited = head == nullptr || (head->effect_ != StateEffect::kSubscribe &&
                                        head->effect_ != StateEffect::kUnsubscribe);
    } else if (resp::isMessage(f.kind) || f.kind == resp::PubsubKind::kInvalidate ||
               f.kind == resp::PubsubKind::kOtherPush) {
      unsolicited = true;
    }
  }
  // After an EXEC that ran several-channel (un)subscriptions, Redis 7.0's replies overflow its
  // array (see applyEffect): what is left over goes to the client as redis-server sends it.
  if (head == nullptr && exec_ran_pubsub_) unsolicited = true;
  if (!unsolicited) return false;
  pushUnsolicited(std::move(frame), conn);
  return true;
}

void ClientConn::pushUnsolicited(std::string&& frame, backends::UpstreamConn* from) {
  if (closing_) return;
  auto* s = ReplySlot::make(this);
  completeSlot(s, std::move(frame));
  // Before the reply this client is owed next from that connection: the frame came first.
  ReplySlot* head = from != nullptr ? static_cast<ReplySlot*>(from->headTarget()) : nullptr;
  if (head != nullptr && head->client_ == this) {
    insertSlotBefore(s, head);
  } else {
    appendSlot(s);
  }
  server_->flusher()->mark(this);
}

void ClientConn::onUpstreamDown(backends::UpstreamConn* conn, std::string_view reason) {
  if (conn != pinned_) return;
  pinned_ = nullptr;
  if (inflight_conn_ == conn) inflight_conn_ = nullptr;
  conn->close();
  if (pinReleasable()) {
    // Only a blocking command was pinned, and it already got its error: the client goes on
    // over the shared connections.
    return;
  }
  // The connection's state (transaction, subscriptions, db) is gone; so goes the client, after
  // the replies it is owed, as if redis-server had closed it.
  log::info("client id={}: pinned upstream connection lost ({}); closing the client", id_, reason);
  drainAndClose();
}

bool ClientConn::idleExempt() const {
  return pinned_ != nullptr && (inPubsub() || monitor_ || inflight_ > 0);
}

size_t ClientConn::outputBytes() const {
  return out_.size() + slot_bytes_ + (write_ != nullptr ? write_->buf.size() : 0);
}

void ClientConn::flush() {
  if (closing_) return;
  if (blocked_ && inflight_ == 0) {
    blocked_ = false;
    processBuffered();
    if (closing_) return;
  }
  uint64_t now_ns = 0;  // read once, when the first reply is answered
  while (head_ != nullptr) {
    ReplySlot* s = head_;
    if (!s->data_.empty()) {
      slot_bytes_ -= std::min(slot_bytes_, s->data_.size());
      if (out_.empty() && s->data_.size() > out_.capacity()) {
        out_.swap(s->data_);  // a large reply is not copied
      } else {
        out_.append(s->data_);
        s->data_.clear();
      }
      if (!s->done_) s->streamed_ = true;
    }
    if (!s->done_) break;
    head_ = s->next_;
    if (head_ != nullptr) {
      head_->prev_ = nullptr;
    } else {
      tail_ = nullptr;
    }
    --slots_;
    if (s->class_ != CommandClass::kNone) {
      if (now_ns == 0) now_ns = uv_hrtime();
      server_->commandMetrics()->answered(s->class_, (now_ns - s->taken_at_ns_) / 1000);
    }
    ReplySlot::recycle(s);
  }
  if (!out_.empty() && write_ == nullptr) {
    uv_buf_t b = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    int n = uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
      close();
      return;
    }
    size_t written = n > 0 ? static_cast<size_t>(n) : 0;
    if (written == out_.size()) {
      out_.clear();
      if (out_.capacity() > kReadChunk) std::string().swap(out_);
    } else {
      write_ = new WriteReq;
      write_->req.data = this;
      write_->buf.assign(out_, written);
      std::string().swap(out_);
      b = uv_buf_init(write_->buf.data(), static_cast<unsigned>(write_->buf.size()));
      int rc = uv_write(&write_->req, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
                        [](uv_write_t* req, int status) {
                          auto* self = static_cast<ClientConn*>(req->data);
                          delete self->write_;
                          self->write_ = nullptr;
                          if (self->closing_) return;
                          if (status < 0) {
                            self->close();
                            return;
                          }
                          self->server_->flusher()->mark(self);
                        });
      if (rc != 0) {
        delete write_;
        write_ = nullptr;
        close();
        return;
      }
    }
  }
  // Output limits, as redis-server's client-output-buffer-limit (normal and pubsub classes).
  const Config& config = server_->config();
  size_t pending = outputBytes();
  if (tunnel_ && pinned_ != nullptr) {
    // A tunnel's stream has no end: readthru holds a little of it and leaves the rest to the
    // upstream (whose client-output-buffer-limit for replicas then applies).
    if (pending >= kTunnelHighWater) {
      pinned_->pauseReading();
    } else if (pending <= kTunnelLowWater) {
      pinned_->resumeReading();
    }
  }
  bool pubsub = inPubsub();
  uint64_t hard = pubsub ? config.output_hard_limit_pubsub : config.output_hard_limit_normal;
  if (hard > 0 && pending > hard) {
    log::warning("closing client id={}: output buffer {} bytes over the {} limit", id_, pending,
                 pubsub ? "pubsub" : "normal");
    close();
    return;
  }
  if (pubsub && config.output_soft_limit_pubsub > 0) {
    uint64_t now = uv_now(server_->loop());
    if (pending > config.output_soft_limit_pubsub) {
      if (soft_limit_since_ == 0) soft_limit_since_ = now;
      if (now - soft_limit_since_ >= config.output_soft_seconds_pubsub * 1000) {
        log::warning("closing client id={}: output buffer over the pubsub soft limit", id_);
        close();
        return;
      }
    } else {
      soft_limit_since_ = 0;
    }
  }
  if (paused_ && !blocked_ && slots_ <= static_cast<size_t>(config.max_pending_requests) / 2) {
    paused_ = false;
    resumeReading();
    processBuffered();
    if (closing_) return;
  }
  if (close_after_flush_ && head_ == nullptr && out_.empty() && write_ == nullptr) close();
}

void ClientConn::drainAndClose() {
  if (tunnel_) {
    // A relayed stream has no last reply to wait for: what is buffered goes, then the client.
    flush();
    close();
    return;
  }
  close_after_flush_ = true;
  stopReading();
  server_->flusher()->mark(this);
}

void ClientConn::close() {
  if (closing_) return;
  closing_ = true;
  setMonitor(false);
  stopReading();
  if (pinned_ != nullptr) {
    // Closing fails our slots on it synchronously; nothing on it points at them afterwards.
    // A connection with nothing pending and no state serves the next client that pins.
    backends::UpstreamConn* p = pinned_;
    pinned_ = nullptr;
    server_->pool()->release(
        p, p->pending() == 0 && pinReleasable() && name_.empty() && !auth_forwarded_);
  }
  ReplySlot* s = head_;
  while (s != nullptr) {
    ReplySlot* next = s->next_;
    if (s->awaiting_ || s->held_) {
      s->client_ = nullptr;  // an orphan: its upstream entry or its interceptor frees it
      s->data_.clear();
    } else {
      delete s;
    }
    s = next;
  }
  head_ = tail_ = nullptr;
  slots_ = 0;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), [](uv_handle_t* h) {
    auto* self = static_cast<ClientConn*>(h->data);
    self->server_->flusher()->forget(self);
    self->server_->removeClient(self);
    delete self;
  });
}

void ClientConn::awaitReload(ReplySlot* slot, bool expected) {
  // Held until the reload is over, and, as for a write-through, nothing this client sends after
  // it goes upstream before: what follows +OK runs with the new configuration.
  slot->held_ = true;
  ++inflight_;
  inflight_conn_ = nullptr;
  int protocol = protocol_;
  server_->reload(fmt::format("READTHRU RELOAD from client id={}", id_),
                  [slot, protocol, expected](const std::string& error) {
                    std::string out;
                    if (expected) {
                      resp::ReplyEncoder e(&out, protocol);
                      if (error.empty()) {
                        e.ok();
                      } else {
                        e.error("ERR " + error);
                      }
                    }
                    if (slot->client_ != nullptr) slot->client_->slotFinished(slot, !error.empty());
                    slot->finishHeld(std::move(out));  // frees an orphan
                  });
}

void ClientConn::sendToPinned(std::string_view request) {
  // With replies switched off Redis will not answer it either.
  if (reply_mode_ == ReplyMode::kOff) {
    pinned_->sendUnanswered(request);
    unanswered_ = true;
  } else {
    pinned_->send(request, nullptr);
  }
}

void ClientConn::answerLocal(const resp::Command& cmd, const RouteDecision& d, ReplySlot* slot) {
  std::string out;
  switch (d.local) {
    case LocalCommand::kAuth:
      answerAuth(cmd, &out);
      break;
    case LocalCommand::kHello:
      answerHello(cmd, &out);
      break;
    case LocalCommand::kReadthru:
      answerReadthruCommand(server_, cmd.argv, protocol_, &out);
      break;
    case LocalCommand::kQuit:
      resp::ReplyEncoder(&out, protocol_).ok();
      drainAndClose();
      break;
    case LocalCommand::kReset:
      if (cmd.argv.size() != 1) {
        resp::ReplyEncoder(&out, protocol_)
            .error("ERR wrong number of arguments for 'reset' command");
        break;
      }
      resetState();
      resp::ReplyEncoder(&out, 2).simple("RESET");
      break;
    case LocalCommand::kAclWhoami:
    case LocalCommand::kAclRefused:
      answerAcl(cmd, d.local, &out);
      break;
    case LocalCommand::kClientList:
    case LocalCommand::kClientInfo:
    case LocalCommand::kClientKill:
      answerClientList(cmd, d.local, &out);
      break;
    default:
      answerClient(cmd, d.local, &out);
      break;
  }
  completeSlot(slot, std::move(out));
}

void ClientConn::answerAcl(const resp::Command& cmd, LocalCommand which, std::string* out) {
  resp::ReplyEncoder e(out, protocol_);
  if (which == LocalCommand::kAclWhoami) {
    if (cmd.argv.size() != 2) {
      return e.error("ERR wrong number of arguments for 'acl|whoami' command");
    }
    return e.bulk(user_->name());
  }
  std::string sub(cmd.argv[1].substr(0, 128));
  for (auto& c : sub) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  e.error(fmt::format(
      "ERR readthru does not proxy ACL {}: its users are its own, set in its config file "
      "([[users]]), and the upstream's are not for its clients",
      sub));
}

void ClientConn::answerAuth(const resp::Command& cmd, std::string* out) {
  resp::ReplyEncoder e(out, protocol_);
  size_t argc = cmd.argv.size();
  if (argc < 2) {
    e.error("ERR wrong number of arguments for 'auth' command");
    return;
  }
  if (argc > 3) {
    e.error(resp::err::kSyntax);
    return;
  }
  if (server_->acl().open()) {
    // passAuthUpstream kept it here: readthru's own upstream credentials.
    e.ok();
    return;
  }
  if (argc == 2 && server_->acl().defaultUser().noPassword()) {
    e.error(resp::err::kAuthNotConfigured);
    return;
  }
  std::string_view user = argc == 3 ? cmd.argv[1] : std::string_view("default");
  if (const AclUser* u = server_->acl().authenticate(user, cmd.argv.back())) {
    setUser(u);
    e.ok();
  } else {
    authFailed("AUTH", user);
    e.error(resp::err::kWrongPass);
  }
}

void ClientConn::answerHello(const resp::Command& cmd, std::string* out) {
  resp::ReplyEncoder e(out, protocol_);
  int64_t ver = 0;
  if (cmd.argv.size() >= 2) {
    if (!parseRedisInt(cmd.argv[1], &ver)) {
      e.error(resp::err::kHelloBadProto);
      return;
    }
    if (ver < 2 || ver > 3) {
      e.error(resp::err::kNoProto);
      return;
    }
  }
  std::string_view user, pass, name;
  bool has_auth = false, has_name = false;
  for (size_t j = 2; j < cmd.argv.size(); ++j) {
    size_t more = cmd.argv.size() - 1 - j;
    if (equalsIgnoreCase(cmd.argv[j], "auth") && more >= 2) {
      user = cmd.argv[j + 1];
      pass = cmd.argv[j + 2];
      has_auth = true;
      j += 2;
    } else if (equalsIgnoreCase(cmd.argv[j], "setname") && more >= 1) {
      name = cmd.argv[j + 1];
      has_name = true;
      ++j;
    } else {
      e.error(fmt::format("ERR Syntax error in HELLO option '{}'", cmd.argv[j]));
      return;
    }
  }
  if (has_auth) {
    const AclUser* u = server_->acl().authenticate(user, pass);
    if (u == nullptr) {
      authFailed("HELLO AUTH", user);
      e.error(resp::err::kWrongPass);
      return;
    }
    setUser(u);
  }
  if (user_ == nullptr) {
    e.error(resp::err::kHelloNoAuth);
    return;
  }
  if (has_name) {
    if (!validNameChars(name)) {
      e.error(resp::err::kClientNameChars);
      return;
    }
    name_ = std::string(name);
  }
  if (ver != 0) {
    if (pinned_ != nullptr && ver != protocol_) {
      // The dedicated connection speaks the client's protocol; its own HELLO reply is dropped.
      std::string req;
      resp::ReplyEncoder::command(&req, {"HELLO", ver == 3 ? "3" : "2"});
      sendToPinned(req);
      pinned_->setProtocol(static_cast<int>(ver));
    }
    protocol_ = static_cast<uint8_t>(ver);
  }
  if (pinned_ != nullptr && has_name) {
    std::string req;
    resp::ReplyEncoder::command(&req, {"CLIENT", "SETNAME", name_});
    sendToPinned(req);
  }
  const UpstreamIdentity& id = server_->pool()->identity();
  resp::ReplyEncoder r(out, protocol_);
  r.mapHeader(7);
  r.bulk("server");
  r.bulk("redis");
  r.bulk("version");
  r.bulk(id.version);
  r.bulk("proto");
  r.integer(protocol_);
  r.bulk("id");
  r.integer(static_cast<int64_t>(reportedId()));
  r.bulk("mode");
  r.bulk(id.mode);
  r.bulk("role");
  r.bulk(id.role);
  r.bulk("modules");
  r.arrayHeader(0);
}

void ClientConn::answerClient(const resp::Command& cmd, LocalCommand which, std::string* out) {
  resp::ReplyEncoder e(out, protocol_);
  size_t argc = cmd.argv.size();
  auto arity = [&](const char* sub) {
    e.error(fmt::format("ERR wrong number of arguments for 'client|{}' command", sub));
  };
  switch (which) {
    case LocalCommand::kClientSetName: {
      if (argc != 3) return arity("setname");
      if (!validNameChars(cmd.argv[2])) return e.error(resp::err::kClientNameChars);
      name_ = std::string(cmd.argv[2]);
      if (pinned_ != nullptr) {
        std::string req;
        resp::ReplyEncoder::command(&req, {"CLIENT", "SETNAME", name_});
        sendToPinned(req);
      }
      return e.ok();
    }
    case LocalCommand::kClientGetName:
      if (argc != 2) return arity("getname");
      if (name_.empty()) return e.null();
      return e.bulk(name_);
    case LocalCommand::kClientId:
      if (argc != 2) return arity("id");
      return e.integer(static_cast<int64_t>(reportedId()));
    case LocalCommand::kClientSetInfo: {
      if (argc != 4) return arity("setinfo");
      std::string attr = asciiLower(cmd.argv[2]);
      if (attr != "lib-name" && attr != "lib-ver") {
        return e.error(fmt::format("ERR Unrecognized option '{}'", cmd.argv[2]));
      }
      if (!validNameChars(cmd.argv[3])) {
        return e.error(fmt::format("ERR {} cannot contain spaces, newlines or special characters.",
                                   cmd.argv[2]));
      }
      return e.ok();
    }
    default:
      return e.error("ERR unknown command");
  }
}

}  // namespace readthru
