#pragma once
// WritePlan: what a write command means for the writers' keys, worked out before anything runs.
//
//   SET, SETEX, PSETEX, MSET      the key's new string value
//   HSET, HMSET, HDEL             fields set or removed (the whole hash is worked out later, from
//                                 the hash Redis holds, or the loader's row when it holds none)
//   DEL, UNLINK                   the key deleted
//   EXPIRE family, PERSIST        TTL only: plain Redis, the database has no TTL
//   any other write to a key      refused: the database could not follow it
//
// Malformed commands (SET k v EX notanumber, HSET with a field and no value) are not planned: they
// go to Redis as they are, which answers the syntax error, and nothing is written anywhere.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/cache_registry.h"
#include "proxy/writer.h"
#include "resp/command_table.h"

namespace readthru {

struct WritePlan {
  enum class Kind : uint8_t {
    kNone,     // no writer's key is written (or plain Redis should answer): forward as is
    kRefuse,   // answer `error`
    kThrough,  // write-through items
    kBehind,   // write-behind items
  };
  enum class Op : uint8_t { kSet, kHset, kHdel, kDel };
  struct Item {
    Writer* writer;
    std::string key;
    WriteState state;  // kSet: the string; kDel: deleted; kHset/kHdel: filled in later
  };

  Kind kind = Kind::kNone;
  Op op = Op::kSet;
  std::string error;
  std::vector<Item> items;  // one per writer key the command writes, in command order
  bool nx = false;          // SET ... NX
  bool xx = false;          // SET ... XX
  bool get = false;         // SET ... GET
  std::vector<std::pair<std::string, std::string>> set_fields;  // HSET, HMSET
  std::vector<std::string> del_fields;                          // HDEL
};

WritePlan planWrite(CacheRegistry* registry, const std::vector<std::string_view>& argv,
                    const resp::CommandInfo* info);

// Counts the command in each writer's `writes`.
void countWrites(const WritePlan& plan);

// The hash after applying the plan's HSET or HDEL to `fields` (what Redis held).
std::vector<std::pair<std::string, std::string>> applyHashChange(
    const WritePlan& plan, std::vector<std::pair<std::string, std::string>> fields);

}  // namespace readthru
