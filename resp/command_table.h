#pragma once
// The command table: per Redis command, its arity, flags and key positions, generated from
// redis-server's own `COMMAND` output by tools/gen_command_table.py (never edited by hand).
// Routing, pinning, read-through and invalidation read it; access control (proxy/acl.h) reads
// the ACL categories and the key specs.

#include <cstdint>
#include <span>
#include <string_view>

namespace readthru::resp {

enum CommandFlag : uint32_t {
  kFlagWrite = 1u << 0,
  kFlagReadonly = 1u << 1,
  kFlagDenyOom = 1u << 2,
  kFlagAdmin = 1u << 3,
  kFlagPubsub = 1u << 4,
  kFlagNoscript = 1u << 5,
  kFlagBlocking = 1u << 6,
  kFlagLoading = 1u << 7,
  kFlagStale = 1u << 8,
  kFlagSkipMonitor = 1u << 9,
  kFlagFast = 1u << 10,
  kFlagNoAuth = 1u << 11,
  kFlagMayReplicate = 1u << 12,
  kFlagNoMulti = 1u << 13,
  kFlagMovableKeys = 1u << 14,
  kFlagAllowBusy = 1u << 15,
};

// Redis's ACL categories (ACL CAT), one bit each, in ACL CAT's order.
enum AclCategory : uint32_t {
  kAclKeyspace = 1u << 0,
  kAclRead = 1u << 1,
  kAclWrite = 1u << 2,
  kAclSet = 1u << 3,
  kAclSortedset = 1u << 4,
  kAclList = 1u << 5,
  kAclHash = 1u << 6,
  kAclString = 1u << 7,
  kAclBitmap = 1u << 8,
  kAclHyperloglog = 1u << 9,
  kAclGeo = 1u << 10,
  kAclStream = 1u << 11,
  kAclPubsub = 1u << 12,
  kAclAdmin = 1u << 13,
  kAclFast = 1u << 14,
  kAclSlow = 1u << 15,
  kAclBlocking = 1u << 16,
  kAclDangerous = 1u << 17,
  kAclConnection = 1u << 18,
  kAclTransaction = 1u << 19,
  kAclScripting = 1u << 20,
};
// The category names without '@', by bit: kAclCategoryNames[i] is the name of bit 1 << i.
inline constexpr std::string_view kAclCategoryNames[] = {
    "keyspace", "read",   "write",       "set",       "sortedset",  "list",        "hash",
    "string",   "bitmap", "hyperloglog", "geo",       "stream",     "pubsub",      "admin",
    "fast",     "slow",   "blocking",    "dangerous", "connection", "transaction", "scripting",
};

// Key spec flags (Redis 7's key specifications): how a command uses the keys of one spec.
enum KeySpecFlag : uint16_t {
  kKeyRO = 1u << 0,      // read only
  kKeyRW = 1u << 1,      // read and modify
  kKeyOW = 1u << 2,      // overwrite
  kKeyRM = 1u << 3,      // remove
  kKeyAccess = 1u << 4,  // returns, copies or uses the user data of the key
  kKeyUpdate = 1u << 5,
  kKeyInsert = 1u << 6,
  kKeyDelete = 1u << 7,
  kKeyNotKey = 1u << 8,          // a channel or the like, not a key
  kKeyIncomplete = 1u << 9,      // the spec may miss some keys
  kKeyVariableFlags = 1u << 10,  // the flags depend on the arguments
};

// One key spec: where a group of keys starts in argv and how far it runs (see Redis's "key
// specifications" documentation). resp/command_keys.h turns them into argument positions.
struct KeySpec {
  enum class Begin : uint8_t {
    kIndex,    // the keys start at argv[begin_at]
    kKeyword,  // after `keyword`, searched from begin_at (negative: from the end, backwards)
    kUnknown,
  };
  enum class Find : uint8_t {
    kRange,   // last key: `last` after the first (negative: from the end; with `limit`, a
              // 1/limit share of what follows), every `step`
    kKeynum,  // argv[first + keynum_at] counts the keys; they start at first + keynum_first
    kUnknown,
  };
  uint16_t flags;  // KeySpecFlag bits
  Begin begin;
  int begin_at;
  std::string_view keyword;
  Find find;
  int last;
  int step;
  int limit;
  int keynum_at;
  int keynum_first;
};

struct CommandInfo {
  std::string_view name;  // lower case; a subcommand is "container|sub", e.g. "client|setname"
  int arity;              // Redis's convention: >0 exact argc, <0 at least -arity
  uint32_t flags;         // CommandFlag bits
  int first_key;          // legacy key spec: 0 when the command takes no keys
  int last_key;           // negative counts from the end (-1 is the last argument)
  int key_step;
  bool has_subcommands;     // a container such as CLIENT, CONFIG, OBJECT
  uint32_t acl_categories;  // AclCategory bits
  std::span<const KeySpec> key_specs;
};

// Looks a command up by name, case-insensitively. Returns nullptr for an unknown command.
const CommandInfo* findCommand(std::string_view name);

// Looks up "container|sub" for a container command and its first argument, case-insensitively.
// Returns nullptr when the container has no such subcommand.
const CommandInfo* findSubcommand(std::string_view container, std::string_view sub);

// Every entry, commands and subcommands, sorted by name.
std::span<const CommandInfo> allCommands();

}  // namespace readthru::resp
