#pragma once
// Where a command's keys are in its arguments, and how it uses each: Redis 7's key specs from
// the command table, read the way redis-server reads them for ACL checks. Access control
// (proxy/acl.h) checks each key found against a user's key patterns.
//
// Commands whose key specs cannot say it all are read by their syntax instead: SORT and
// SORT_RO (the STORE destination), MIGRATE (KEYS ...), SET and BITFIELD (whether the key is
// read depends on GET / the subcommands). When the arguments do not fit the specs (a key count
// that is no number, keys past the end), no key is reported, as redis-server does: such a
// command fails with a syntax error anyway.

#include <string_view>
#include <vector>

#include "resp/command_table.h"

namespace readthru::resp {

struct KeyRef {
  int pos;         // argv index
  uint16_t flags;  // KeySpecFlag bits of the spec that found it
};

// Appends the keys of `argv` (argv[0] is the command; a subcommand's positions count from the
// container name) to `out`. `info` is the entry of argv's command or subcommand.
void findKeys(const CommandInfo& info, const std::vector<std::string_view>& argv,
              std::vector<KeyRef>* out);

}  // namespace readthru::resp
