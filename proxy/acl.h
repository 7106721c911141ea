#pragma once
// Access control for readthru's own clients, in the spirit of Redis ACLs: users (AUTH user pass,
// HELLO AUTH), each with passwords, the commands it may run (Redis's +@category, -command,
// +container|sub rules, in order) and the keys it may touch (~pattern, %R~, %W~). The users
// come from the config's [[users]] and requirepass; the upstream is reached with readthru's
// own credentials whoever the client is.
//
//   connect --> initialUser(): "default" when it is enabled and has no password, else nobody
//   AUTH / HELLO AUTH --> authenticate(): the user, or nullptr (-WRONGPASS; counted)
//   every command --> user->allowsEverything() ? forward : check() (-NOPERM ...)
//
// A user that may run every command on every key is one flag, so the per-command cost for it
// is a single branch in ClientConn::dispatch. Lifetime: the Acl belongs to the Server and
// outlives every client; clients keep `const AclUser*`.
//
// Not carried over from Redis: selectors "(...)", pub/sub channel patterns (&pattern: every
// channel is allowed to a user that may run the command), first-argument rules
// (+select|0), ACL LOAD/SAVE/SETUSER at run time.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config.h"
#include "proxy/password_hash.h"
#include "resp/command_table.h"

namespace readthru {

class AclUser {
 public:
  const std::string& name() const { return name_; }
  bool enabled() const { return enabled_; }
  // No password: AUTH with any password succeeds (Redis's nopass). Only "default" can be so.
  bool noPassword() const { return hashes_.empty(); }
  bool passwordMatches(std::string_view password) const;
  // Every command, every key: nothing to check per command.
  bool allowsEverything() const { return everything_; }
  // Same name, state, passwords, command and key rules: a reload leaves its clients be.
  bool sameAs(const AclUser& other) const;

 private:
  friend class Acl;
  struct KeyPattern {
    std::string glob;
    uint8_t perms;  // kKeyRead | kKeyWrite
  };

  std::string name_;
  bool enabled_ = true;
  std::vector<PasswordHash> hashes_;
  std::vector<uint64_t> commands_;  // a bit per command-table entry, then one for READTHRU
  bool all_commands_ = false;       // +@all and nothing taken away since: unknown commands too
  std::vector<KeyPattern> keys_;
  bool all_keys_ = false;  // ~* (allkeys)
  bool everything_ = false;
};

class Acl {
 public:
  // From `config`'s requirepass and [[users]], which loadConfigFile validated.
  explicit Acl(const Config& config);

  // Who a new (or RESET) connection is: the default user if it is enabled and has no
  // password; nullptr when the client must authenticate first.
  const AclUser* initialUser() const;
  const AclUser& defaultUser() const { return *users_.front(); }
  // The user of that name, enabled or not; nullptr when there is none.
  const AclUser* find(std::string_view name) const;
  // AUTH / HELLO AUTH: the user whose password this is, if it is enabled; nullptr otherwise.
  const AclUser* authenticate(std::string_view name, std::string_view password) const;

  // Whether `user` may run `argv`. `info` is the router's command entry (nullptr: unknown to
  // the table). Returns the error to answer without its '-' ("NOPERM ..."), empty if allowed.
  std::string check(const AclUser& user, const resp::CommandInfo* info,
                    const std::vector<std::string_view>& argv) const;

  size_t userCount() const { return users_.size(); }
  // No access control of readthru's own (no requirepass, no [[users]]): then AUTH and the ACL
  // user commands are the upstream's business (ClientConn passes them through).
  bool open() const {
    const AclUser& d = defaultUser();
    return users_.size() == 1 && d.enabled() && d.noPassword() && d.allowsEverything();
  }
  uint64_t authFailures() const { return auth_failures_; }
  void noteAuthFailure() { ++auth_failures_; }
  // A reload's new Acl keeps counting where the running one was.
  void adoptCounters(const Acl& old) { auth_failures_ = old.auth_failures_; }

 private:
  static bool runsScripts(const AclUser& u);

  std::vector<std::unique_ptr<AclUser>> users_;  // "default" first
  uint64_t auth_failures_ = 0;
};

// Config validation, one rule at a time (so an error can name the rule's file:line:column).
// Each returns false and sets `why` for a rule readthru does not understand.
bool aclCheckCommandRule(std::string_view rule, std::string* why);  // "+@read", "-flushall"
bool aclCheckKeyRule(std::string_view rule, std::string* why);      // "~user:*", "%R~a*"
bool aclCheckDenyCommand(std::string_view name, std::string* why);  // "FLUSHALL", "config|set"

// The passwords a [[users]] entry is configured with, as kept: the SHA-256 of `password`
// and `password_sha256` itself, whichever are set (requirepass is not included).
std::vector<PasswordHash> configuredPasswordHashes(const UserConfig& user);

}  // namespace readthru
