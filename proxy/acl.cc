#include "proxy/acl.h"

#include <fmt/format.h>

#include "proxy/command_router.h"
#include "proxy/log.h"
#include "resp/ascii_case.h"
#include "resp/command_keys.h"
#include "resp/errors.h"
#include "resp/glob_match.h"

namespace readthru {
namespace {

constexpr uint8_t kKeyRead = 1;
constexpr uint8_t kKeyWrite = 2;

std::string noPermCommand(std::string_view name) {
  return fmt::format("NOPERM this user has no permissions to run the '{}' command", name);
}

std::span<const resp::CommandInfo> table() { return resp::allCommands(); }

// The bit of READTHRU, readthru's own command, after the table's entries.
size_t readthruBit() { return table().size(); }

size_t bitOf(const resp::CommandInfo* info) {
  if (info == &kReadthruCommandInfo) return readthruBit();
  return static_cast<size_t>(info - table().data());
}

// What a command rule names.
struct RuleTarget {
  enum class Kind : uint8_t { kAll, kCategory, kCommand } kind = Kind::kAll;
  uint32_t category = 0;
  const resp::CommandInfo* command = nullptr;
};

bool parseTarget(std::string_view name, RuleTarget* t, std::string* why) {
  if (name.empty()) {
    *why = "names no command";
    return false;
  }
  if (name[0] == '@') {
    std::string cat = asciiLower(name.substr(1));
    if (cat == "all") {
      t->kind = RuleTarget::Kind::kAll;
      return true;
    }
    for (size_t i = 0; i < std::size(resp::kAclCategoryNames); ++i) {
      if (resp::kAclCategoryNames[i] == cat) {
        t->kind = RuleTarget::Kind::kCategory;
        t->category = 1u << i;
        return true;
      }
    }
    *why = fmt::format("unknown category '{}' (ACL CAT lists them)", name);
    return false;
  }
  t->kind = RuleTarget::Kind::kCommand;
  size_t bar = name.find('|');
  if (bar == std::string_view::npos) {
    t->command = resp::findCommand(name);
    if (t->command == nullptr && equalsIgnoreCase(name, "readthru")) {
      t->command = &kReadthruCommandInfo;
    }
  } else {
    t->command = resp::findSubcommand(name.substr(0, bar), name.substr(bar + 1));
  }
  if (t->command == nullptr) {
    *why = fmt::format("unknown command '{}'", name);
    return false;
  }
  return true;
}

void setBit(std::vector<uint64_t>* bits, size_t i, bool on) {
  uint64_t mask = uint64_t{1} << (i % 64);
  if (on) {
    (*bits)[i / 64] |= mask;
  } else {
    (*bits)[i / 64] &= ~mask;
  }
}

bool getBit(const std::vector<uint64_t>& bits, size_t i) { return (bits[i / 64] >> (i % 64)) & 1; }

// A command and, for a container (CONFIG, CLIENT ...), every one of its subcommands.
void setCommand(std::vector<uint64_t>* bits, const resp::CommandInfo* c, bool on) {
  setBit(bits, bitOf(c), on);
  if (!c->has_subcommands || c == &kReadthruCommandInfo) return;
  std::string prefix = fmt::format("{}|", c->name);
  for (const resp::CommandInfo& sub : table()) {
    if (sub.name.starts_with(prefix)) setBit(bits, bitOf(&sub), on);
  }
}

bool parseKeyRule(std::string_view rule, std::string* glob, uint8_t* perms, std::string* why) {
  if (rule == "allkeys") {
    *glob = "*";
    *perms = kKeyRead | kKeyWrite;
    return true;
  }
  if (!rule.empty() && rule[0] == '~') {
    *glob = std::string(rule.substr(1));
    *perms = kKeyRead | kKeyWrite;
    return true;
  }
  if (!rule.empty() && rule[0] == '%') {
    size_t tilde = rule.find('~');
    uint8_t p = 0;
    for (size_t i = 1; tilde != std::string_view::npos && i < tilde; ++i) {
      char c = static_cast<char>(toupper(static_cast<unsigned char>(rule[i])));
      if (c == 'R') {
        p |= kKeyRead;
      } else if (c == 'W') {
        p |= kKeyWrite;
      } else {
        p = 0;
        break;
      }
    }
    if (p != 0) {
      *glob = std::string(rule.substr(tilde + 1));
      *perms = p;
      return true;
    }
  }
  *why = fmt::format(
      "'{}' is not a key pattern: write ~<pattern>, %R~<pattern>, %W~<pattern>, %RW~<pattern> "
      "or allkeys",
      rule);
  return false;
}

// Applies one command rule; false (with `why`) for a rule that is not one.
bool applyCommandRule(std::vector<uint64_t>* bits, bool* all, std::string_view rule,
                      std::string* why) {
  std::string_view name;
  bool allow;
  if (equalsIgnoreCase(rule, "allcommands")) {
    allow = true;
    name = "@all";
  } else if (equalsIgnoreCase(rule, "nocommands")) {
    allow = false;
    name = "@all";
  } else if (!rule.empty() && (rule[0] == '+' || rule[0] == '-')) {
    allow = rule[0] == '+';
    name = rule.substr(1);
  } else {
    *why = fmt::format(
        "'{}' is not a command rule: write +<command>, -<command>, +@<category>, -@<category>, "
        "+<command>|<subcommand>, allcommands or nocommands",
        rule);
    return false;
  }
  RuleTarget t;
  if (!parseTarget(name, &t, why)) return false;
  switch (t.kind) {
    case RuleTarget::Kind::kAll:
      for (auto& w : *bits) w = allow ? ~uint64_t{0} : 0;
      *all = allow;
      return true;
    case RuleTarget::Kind::kCategory:
      for (const resp::CommandInfo& c : table()) {
        if (c.acl_categories & t.category) setCommand(bits, &c, allow);
      }
      if (kReadthruCommandInfo.acl_categories & t.category) {
        setBit(bits, readthruBit(), allow);
      }
      break;
    case RuleTarget::Kind::kCommand:
      setCommand(bits, t.command, allow);
      break;
  }
  // Taking anything away ends "every command, known to the table or not".
  if (!allow) *all = false;
  return true;
}

}  // namespace

bool aclCheckCommandRule(std::string_view rule, std::string* why) {
  std::vector<uint64_t> bits(readthruBit() / 64 + 1);
  bool all = false;
  return applyCommandRule(&bits, &all, rule, why);
}

bool aclCheckDenyCommand(std::string_view name, std::string* why) {
  RuleTarget t;
  if (!name.empty() && (name[0] == '+' || name[0] == '-')) {
    *why = fmt::format("'{}': name the command alone, without + or -", name);
    return false;
  }
  return parseTarget(name, &t, why);
}

bool aclCheckKeyRule(std::string_view rule, std::string* why) {
  std::string glob;
  uint8_t perms;
  if (rule == "resetkeys") return true;
  return parseKeyRule(rule, &glob, &perms, why);
}

std::vector<PasswordHash> configuredPasswordHashes(const UserConfig& user) {
  std::vector<PasswordHash> out;
  if (user.has_password) out.push_back(sha256(user.password));
  PasswordHash h;
  if (!user.password_sha256.empty() && parsePasswordHash(user.password_sha256, &h)) {
    out.push_back(h);
  }
  return out;
}

bool AclUser::passwordMatches(std::string_view password) const {
  if (hashes_.empty()) return true;
  PasswordHash h = sha256(password);
  bool ok = false;
  for (const PasswordHash& mine : hashes_) ok = hashesEqual(h, mine) || ok;
  return ok;
}

Acl::Acl(const Config& config) {
  const size_t words = readthruBit() / 64 + 1;
  const UserConfig* default_config = nullptr;
  for (const UserConfig& uc : config.users) {
    if (uc.name == "default") default_config = &uc;
  }
  AclUser* d = users_.emplace_back(std::make_unique<AclUser>()).get();
  d->name_ = "default";
  d->commands_.assign(words, 0);
  if (default_config == nullptr) {
    // Without a [[users]] entry for it, the default user may do everything (redis's default).
    d->commands_.assign(words, ~uint64_t{0});
    d->all_commands_ = true;
    d->all_keys_ = true;
  }
  if (!config.requirepass.empty()) d->hashes_.push_back(sha256(config.requirepass));
  for (const UserConfig& uc : config.users) {
    AclUser* u = d;
    if (&uc != default_config) {
      u = users_.emplace_back(std::make_unique<AclUser>()).get();
      u->name_ = uc.name;
      u->commands_.assign(words, 0);
    }
    u->enabled_ = uc.enabled;
    for (const PasswordHash& h : configuredPasswordHashes(uc)) {
      bool known = false;
      for (const PasswordHash& have : u->hashes_) known = known || hashesEqual(h, have);
      if (!known) u->hashes_.push_back(h);
    }
    std::string why;  // the rules were validated with the config
    for (const std::string& rule : uc.commands) {
      (void)applyCommandRule(&u->commands_, &u->all_commands_, rule, &why);
    }
    for (const std::string& name : uc.deny_commands) {
      (void)applyCommandRule(&u->commands_, &u->all_commands_, "-" + name, &why);
    }
    for (const std::string& rule : uc.keys) {
      if (rule == "resetkeys") {
        u->keys_.clear();
        u->all_keys_ = false;
        continue;
      }
      AclUser::KeyPattern k;
      if (!parseKeyRule(rule, &k.glob, &k.perms, &why)) continue;
      if (k.glob == "*" && k.perms == (kKeyRead | kKeyWrite)) u->all_keys_ = true;
      u->keys_.push_back(std::move(k));
    }
  }
  for (auto& u : users_) {
    u->everything_ = u->all_commands_ && u->all_keys_;
    if (!u->all_keys_ && runsScripts(*u)) {
      log::warning(
          "user '{}' has key patterns but may run scripts (EVAL, EVALSHA, FCALL): a script runs "
          "upstream with readthru's credentials and may touch any key; deny @scripting to this "
          "user unless that is intended",
          u->name_);
    }
  }
}

// Whether `u` may run a command that executes code upstream, which readthru cannot look into.
bool Acl::runsScripts(const AclUser& u) {
  if (u.all_commands_) return true;
  for (std::string_view name : {"eval", "eval_ro", "evalsha", "evalsha_ro", "fcall", "fcall_ro"}) {
    const resp::CommandInfo* info = resp::findCommand(name);
    if (info != nullptr && getBit(u.commands_, bitOf(info))) return true;
  }
  return false;
}

bool AclUser::sameAs(const AclUser& o) const {
  if (name_ != o.name_ || enabled_ != o.enabled_ || hashes_.size() != o.hashes_.size() ||
      commands_ != o.commands_ || all_commands_ != o.all_commands_ || all_keys_ != o.all_keys_ ||
      keys_.size() != o.keys_.size()) {
    return false;
  }
  for (size_t i = 0; i < hashes_.size(); ++i) {
    if (!hashesEqual(hashes_[i], o.hashes_[i])) return false;
  }
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].glob != o.keys_[i].glob || keys_[i].perms != o.keys_[i].perms) return false;
  }
  return true;
}

const AclUser* Acl::find(std::string_view name) const {
  for (const auto& u : users_) {
    if (u->name_ == name) return u.get();
  }
  return nullptr;
}

const AclUser* Acl::initialUser() const {
  const AclUser& d = defaultUser();
  return d.enabled() && d.noPassword() ? &d : nullptr;
}

const AclUser* Acl::authenticate(std::string_view name, std::string_view password) const {
  for (const auto& u : users_) {
    if (u->name_ == name) return u->enabled_ && u->passwordMatches(password) ? u.get() : nullptr;
  }
  // An unknown user costs a hash too, so a reply's timing does not tell which names exist.
  (void)sha256(password);
  return nullptr;
}

std::string Acl::check(const AclUser& u, const resp::CommandInfo* info,
                       const std::vector<std::string_view>& argv) const {
  if (info == nullptr) {
    // Unknown to the table (a newer upstream's command): only for a user allowed everything.
    return u.all_commands_ ? std::string() : noPermCommand(asciiLower(argv[0]));
  }
  if (info->has_subcommands && info != &kReadthruCommandInfo && argv.size() >= 2) {
    const resp::CommandInfo* sub = resp::findSubcommand(info->name, argv[1]);
    if (sub == nullptr) {
      // A subcommand the table does not know: "+config" (the container) allows it.
      if (u.all_commands_ || getBit(u.commands_, bitOf(info))) return {};
      return noPermCommand(fmt::format("{}|{}", info->name, asciiLower(argv[1])));
    }
    info = sub;
  }
  // AUTH, HELLO, QUIT, RESET: any user may run them (as in redis).
  if (info->flags & resp::kFlagNoAuth) return {};
  if (!u.all_commands_ && !getBit(u.commands_, bitOf(info))) return noPermCommand(info->name);
  if (u.all_keys_) return {};
  static std::vector<resp::KeyRef> keys;  // the loop thread's scratch
  keys.clear();
  resp::findKeys(*info, argv, &keys);
  bool read_everything = false;
  for (const AclUser::KeyPattern& p : u.keys_) {
    read_everything = read_everything || (p.glob == "*" && (p.perms & kKeyRead));
  }
  for (const resp::KeyRef& k : keys) {
    uint8_t need = 0;
    if (k.flags & resp::kKeyAccess) need |= kKeyRead;
    if (k.flags & (resp::kKeyInsert | resp::kKeyDelete | resp::kKeyUpdate)) need |= kKeyWrite;
    std::string_view key = argv[static_cast<size_t>(k.pos)];
    bool ok = false;
    for (const AclUser::KeyPattern& p : u.keys_) {
      if ((p.perms & need) == need && resp::globMatch(p.glob, key)) {
        ok = true;
        break;
      }
    }
    if (!ok) return std::string(resp::err::kNoPermKey);
  }
  static const resp::CommandInfo* const kSort = resp::findCommand("sort");
  static const resp::CommandInfo* const kSortRo = resp::findCommand("sort_ro");
  if ((info == kSort || info == kSortRo) && !read_everything) {
    // BY and GET patterns name other keys, which only a user who may read every key may use.
    for (size_t i = 2; i < argv.size(); ++i) {
      size_t left = argv.size() - i - 1;
      if (equalsIgnoreCase(argv[i], "asc") || equalsIgnoreCase(argv[i], "desc") ||
          equalsIgnoreCase(argv[i], "alpha")) {
        continue;
      }
      if (equalsIgnoreCase(argv[i], "limit") && left >= 2) {
        i += 2;
      } else if (info == kSort && equalsIgnoreCase(argv[i], "store") && left >= 1) {
        i += 1;
      } else if (equalsIgnoreCase(argv[i], "by") && left >= 1) {
        if (argv[i + 1].find('*') != std::string_view::npos)
          return std::string(resp::err::kSortByDenied);
        i += 1;
      } else if (equalsIgnoreCase(argv[i], "get") && left >= 1) {
        return std::string(resp::err::kSortGetDenied);
      } else {
        break;  // a syntax error, which Redis answers
      }
    }
  }
  return {};
}

}  // namespace readthru
