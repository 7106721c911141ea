#pragma once
// CommandRouter: decides where one command goes, from the command table and the client's state.
//   local   readthru answers it (AUTH, HELLO, QUIT, RESET, CLIENT SETNAME/GETNAME/ID/SETINFO,
//           ACL WHOAMI, and a refusal for the ACL subcommands about the upstream's users)
//   shared  a multiplexed upstream connection
//   pin     the command changes connection state: the client moves to a dedicated connection
//           (MULTI, WATCH, the SUBSCRIBE family, blocking commands, SELECT n, MONITOR, CLIENT
//           REPLY/TRACKING/NO-EVICT/NO-TOUCH and any CLIENT subcommand newer than the table,
//           REPLCONF, and SYNC/PSYNC, after which the connection is a byte-for-byte relay)
// A pinned client sends everything but the local commands to its own connection.

#include <string_view>
#include <vector>

#include "resp/command_table.h"

namespace readthru {

enum class Route { kLocal, kShared, kPin };

// What readthru answers itself, and how; kNone for anything forwarded.
enum class LocalCommand {
  kNone,
  kAuth,
  kHello,
  kQuit,
  kReset,
  kClientSetName,
  kClientGetName,
  kClientId,
  kClientSetInfo,
  kClientList,  // CLIENT LIST, INFO and KILL: over readthru's clients (client_list.h)
  kClientInfo,
  kClientKill,
  kReadthru,    // READTHRU STATS|HELP: readthru's own container command
  kAclWhoami,   // ACL WHOAMI: the client's readthru user
  kAclRefused,  // ACL subcommands that would read or change the upstream's users
};

// How the reply to a forwarded command changes the client's connection state.
enum class StateEffect {
  kNone,
  kMulti,
  kExecOrDiscard,
  kWatch,
  kUnwatch,
  kSubscribe,    // SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: one reply per channel
  kUnsubscribe,  // the UNSUBSCRIBE family: one reply per channel, or per subscription when bare
  kSelect,
  kMonitor,
  kReset,
  kClientReply,    // CLIENT REPLY ON|OFF|SKIP: which requests get a reply at all
  kSticky,         // state readthru does not track (CLIENT TRACKING, READONLY): pinned for good
  kTunnel,         // SYNC, PSYNC: from here on the connection is relayed byte for byte
  kUpstreamAuth,   // AUTH passed to the upstream (readthru without users): its user on +OK
  kUpstreamHello,  // HELLO with AUTH passed to the upstream: its user and protocol on success
  kClientId,       // a pinned client's CLIENT ID, forwarded: its connection learns its own id
};

struct RouteDecision {
  Route route = Route::kShared;
  LocalCommand local = LocalCommand::kNone;
  StateEffect effect = StateEffect::kNone;
  const resp::CommandInfo* info = nullptr;  // nullptr: unknown to the table (forwarded as is)
};

RouteDecision routeCommand(const std::vector<std::string_view>& argv);

// readthru's own container command, READTHRU <subcommand>, unknown to Redis's command table.
extern const resp::CommandInfo kReadthruCommandInfo;

}  // namespace readthru
