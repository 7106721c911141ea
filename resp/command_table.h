#pragma once
// The command table: per Redis command, its arity, flags and key positions, generated from
// redis-server's own `COMMAND` output by tools/gen_command_table.py (never edited by hand).
// Routing, pinning, read-through and invalidation read it.

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

struct CommandInfo {
  std::string_view name;  // lower case; a subcommand is "container|sub", e.g. "client|setname"
  int arity;              // Redis's convention: >0 exact argc, <0 at least -arity
  uint32_t flags;         // CommandFlag bits
  int first_key;          // legacy key spec: 0 when the command takes no keys
  int last_key;           // negative counts from the end (-1 is the last argument)
  int key_step;
  bool has_subcommands;  // a container such as CLIENT, CONFIG, OBJECT
};

// Looks a command up by name, case-insensitively. Returns nullptr for an unknown command.
const CommandInfo* findCommand(std::string_view name);

// Looks up "container|sub" for a container command and its first argument, case-insensitively.
// Returns nullptr when the container has no such subcommand.
const CommandInfo* findSubcommand(std::string_view container, std::string_view sub);

// Every entry, commands and subcommands, sorted by name.
std::span<const CommandInfo> allCommands();

}  // namespace readthru::resp
