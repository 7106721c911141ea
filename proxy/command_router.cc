#include "proxy/command_router.h"

#include "resp/ascii_case.h"

namespace readthru {

namespace {

struct Known {
  const resp::CommandInfo* auth = resp::findCommand("auth");
  const resp::CommandInfo* hello = resp::findCommand("hello");
  const resp::CommandInfo* quit = resp::findCommand("quit");
  const resp::CommandInfo* reset = resp::findCommand("reset");
  const resp::CommandInfo* client = resp::findCommand("client");
  const resp::CommandInfo* multi = resp::findCommand("multi");
  const resp::CommandInfo* exec = resp::findCommand("exec");
  const resp::CommandInfo* discard = resp::findCommand("discard");
  const resp::CommandInfo* watch = resp::findCommand("watch");
  const resp::CommandInfo* unwatch = resp::findCommand("unwatch");
  const resp::CommandInfo* select = resp::findCommand("select");
  const resp::CommandInfo* monitor = resp::findCommand("monitor");
  const resp::CommandInfo* subscribe = resp::findCommand("subscribe");
  const resp::CommandInfo* psubscribe = resp::findCommand("psubscribe");
  const resp::CommandInfo* ssubscribe = resp::findCommand("ssubscribe");
  const resp::CommandInfo* unsubscribe = resp::findCommand("unsubscribe");
  const resp::CommandInfo* punsubscribe = resp::findCommand("punsubscribe");
  const resp::CommandInfo* sunsubscribe = resp::findCommand("sunsubscribe");
  const resp::CommandInfo* xread = resp::findCommand("xread");
  const resp::CommandInfo* xreadgroup = resp::findCommand("xreadgroup");
  const resp::CommandInfo* wait = resp::findCommand("wait");
  const resp::CommandInfo* waitaof = resp::findCommand("waitaof");
  const resp::CommandInfo* readonly = resp::findCommand("readonly");
  const resp::CommandInfo* readwrite = resp::findCommand("readwrite");
  const resp::CommandInfo* asking = resp::findCommand("asking");
  const resp::CommandInfo* sync = resp::findCommand("sync");
  const resp::CommandInfo* psync = resp::findCommand("psync");
  const resp::CommandInfo* replconf = resp::findCommand("replconf");
  const resp::CommandInfo* script = resp::findCommand("script");
  const resp::CommandInfo* function = resp::findCommand("function");
  const resp::CommandInfo* acl = resp::findCommand("acl");
};

const Known& known() {
  static const Known k;
  return k;
}

// CLIENT subcommands that leave the connection as it was, so a shared connection may run them.
bool clientSubcommandIsStateless(std::string_view sub) {
  static constexpr std::string_view kStateless[] = {
      "pause", "unpause", "help", "getredir", "trackinginfo", "unblock",
  };
  for (auto s : kStateless) {
    if (equalsIgnoreCase(sub, s)) return true;
  }
  return false;
}

bool hasBlockArgument(const std::vector<std::string_view>& argv) {
  for (size_t i = 1; i < argv.size(); ++i) {
    if (equalsIgnoreCase(argv[i], "block")) return true;
    if (equalsIgnoreCase(argv[i], "streams")) return false;
  }
  return false;
}

}  // namespace

// Access control counts READTHRU as @admin, @slow and @dangerous, as CONFIG GET and INFO.
const resp::CommandInfo kReadthruCommandInfo = {
    "readthru",
    -2,
    resp::kFlagAdmin | resp::kFlagNoscript | resp::kFlagLoading | resp::kFlagStale,
    0,
    0,
    0,
    true,
    resp::kAclAdmin | resp::kAclSlow | resp::kAclDangerous,
    {}};

RouteDecision routeCommand(const std::vector<std::string_view>& argv) {
  RouteDecision d;
  const Known& k = known();
  d.info = resp::findCommand(argv[0]);
  if (d.info == nullptr && equalsIgnoreCase(argv[0], "readthru")) {
    d.info = &kReadthruCommandInfo;
    d.route = Route::kLocal;
    d.local = LocalCommand::kReadthru;
    return d;
  }
  const resp::CommandInfo* c = d.info;
  if (c == nullptr) return d;
  auto local = [&](LocalCommand l) {
    d.route = Route::kLocal;
    d.local = l;
    return d;
  };
  auto pin = [&](StateEffect e) {
    d.route = Route::kPin;
    d.effect = e;
    return d;
  };
  if (c == k.auth) return local(LocalCommand::kAuth);
  if (c == k.hello) return local(LocalCommand::kHello);
  if (c == k.quit) return local(LocalCommand::kQuit);
  if (c == k.reset) {
    d.effect = StateEffect::kReset;
    return local(LocalCommand::kReset);
  }
  if (c == k.client) {
    if (argv.size() < 2) return d;  // Redis answers the arity error
    std::string_view sub = argv[1];
    if (equalsIgnoreCase(sub, "setname")) return local(LocalCommand::kClientSetName);
    if (equalsIgnoreCase(sub, "getname")) return local(LocalCommand::kClientGetName);
    if (equalsIgnoreCase(sub, "id")) return local(LocalCommand::kClientId);
    if (equalsIgnoreCase(sub, "setinfo")) return local(LocalCommand::kClientSetInfo);
    if (equalsIgnoreCase(sub, "list")) return local(LocalCommand::kClientList);
    if (equalsIgnoreCase(sub, "info")) return local(LocalCommand::kClientInfo);
    if (equalsIgnoreCase(sub, "kill")) return local(LocalCommand::kClientKill);
    if (clientSubcommandIsStateless(sub)) return d;
    if (equalsIgnoreCase(sub, "reply")) return pin(StateEffect::kClientReply);
    return pin(StateEffect::kSticky);
  }
  if (c == k.acl) {
    if (argv.size() < 2) return d;  // Redis answers the arity error
    std::string_view sub = argv[1];
    if (equalsIgnoreCase(sub, "whoami")) return local(LocalCommand::kAclWhoami);
    // CAT, GENPASS and HELP say nothing of anyone's users; every other subcommand would read or
    // change the upstream's, which are not readthru's clients' users.
    if (equalsIgnoreCase(sub, "cat") || equalsIgnoreCase(sub, "genpass") ||
        equalsIgnoreCase(sub, "help")) {
      return d;
    }
    return local(LocalCommand::kAclRefused);
  }
  if (c == k.multi) return pin(StateEffect::kMulti);
  if (c == k.watch) return pin(StateEffect::kWatch);
  if (c == k.exec || c == k.discard) {
    d.effect = StateEffect::kExecOrDiscard;
    return d;
  }
  if (c == k.unwatch) {
    d.effect = StateEffect::kUnwatch;
    return d;
  }
  if (c == k.subscribe || c == k.psubscribe || c == k.ssubscribe) {
    return pin(StateEffect::kSubscribe);
  }
  if (c == k.unsubscribe || c == k.punsubscribe || c == k.sunsubscribe) {
    d.effect = StateEffect::kUnsubscribe;
    return d;
  }
  if (c == k.select) {
    d.effect = StateEffect::kSelect;
    // SELECT 0 is where shared connections already are.
    if (argv.size() == 2 && argv[1] == "0") return d;
    return pin(StateEffect::kSelect);
  }
  if (c == k.monitor) return pin(StateEffect::kMonitor);
  if (c == k.xread || c == k.xreadgroup) {
    if (hasBlockArgument(argv)) return pin(StateEffect::kNone);
    return d;
  }
  if (c == k.wait || (k.waitaof != nullptr && c == k.waitaof)) return pin(StateEffect::kNone);
  // A replica's REPLCONF settings belong to the connection its PSYNC then goes on.
  if (c == k.replconf) return pin(StateEffect::kSticky);
  if (c == k.sync || c == k.psync) return pin(StateEffect::kTunnel);
  if ((c == k.script || c == k.function) && argv.size() == 2 && equalsIgnoreCase(argv[1], "kill")) {
    // Sent while a script runs on a shared connection, it would wait behind that very script:
    // it goes on a dedicated connection, which Redis serves while the script runs.
    return pin(StateEffect::kNone);
  }
  if (c == k.readonly || c == k.readwrite || c == k.asking) return pin(StateEffect::kSticky);

  if (c->flags & resp::kFlagBlocking) return pin(StateEffect::kNone);
  return d;
}

}  // namespace readthru
