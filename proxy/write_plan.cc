#include "proxy/write_plan.h"

#include <fmt/format.h>

#include <uv.h>

#include <cstdint>

#include "proxy/command_router.h"
#include "proxy/redis_int.h"
#include "resp/ascii_case.h"

namespace readthru {
namespace {

struct Known {
  const resp::CommandInfo* set = resp::findCommand("set");
  const resp::CommandInfo* setex = resp::findCommand("setex");
  const resp::CommandInfo* psetex = resp::findCommand("psetex");
  const resp::CommandInfo* mset = resp::findCommand("mset");
  const resp::CommandInfo* hset = resp::findCommand("hset");
  const resp::CommandInfo* hmset = resp::findCommand("hmset");
  const resp::CommandInfo* hdel = resp::findCommand("hdel");
  const resp::CommandInfo* del = resp::findCommand("del");
  const resp::CommandInfo* unlink = resp::findCommand("unlink");
  const resp::CommandInfo* expire = resp::findCommand("expire");
  const resp::CommandInfo* pexpire = resp::findCommand("pexpire");
  const resp::CommandInfo* expireat = resp::findCommand("expireat");
  const resp::CommandInfo* pexpireat = resp::findCommand("pexpireat");
  const resp::CommandInfo* persist = resp::findCommand("persist");
};

const Known& known() {
  static const Known k;
  return k;
}

enum class Expiry : uint8_t { kSeconds, kMillis, kUnixSeconds, kUnixMillis };

// Whether Redis takes this expire time (getExpireMillisecondsOrReply in redis's t_string.c):
// positive, and not past INT64_MAX milliseconds once converted and, if relative, added to now.
bool validExpiry(std::string_view arg, Expiry unit) {
  int64_t v = 0;
  if (!parseRedisInt(arg, &v) || v <= 0) return false;
  bool seconds = unit == Expiry::kSeconds || unit == Expiry::kUnixSeconds;
  if (seconds && v > INT64_MAX / 1000) return false;
  int64_t ms = seconds ? v * 1000 : v;
  if (unit == Expiry::kSeconds || unit == Expiry::kMillis) {
    uv_timeval64_t now;
    uv_gettimeofday(&now);
    int64_t now_ms = now.tv_sec * 1000 + now.tv_usec / 1000;
    if (ms > INT64_MAX - now_ms) return false;
  }
  return true;
}

// SET's options as Redis 7 accepts them (parseExtendedStringArgumentsOrReply): a flag may be
// repeated, conflicting ones may not (NX with XX, two kinds of expiry, KEEPTTL with an expiry);
// false for anything Redis would refuse.
bool setOptions(const std::vector<std::string_view>& argv, bool* nx, bool* xx, bool* get) {
  int expire = 0;  // 1 EX, 2 PX, 3 EXAT, 4 PXAT, 5 KEEPTTL
  std::string_view expire_arg;
  Expiry expire_unit = Expiry::kSeconds;
  for (size_t i = 3; i < argv.size(); ++i) {
    std::string_view o = argv[i];
    auto kind = [&](int k) { return expire == 0 || expire == k; };
    if (equalsIgnoreCase(o, "nx") && !*xx) {
      *nx = true;
    } else if (equalsIgnoreCase(o, "xx") && !*nx) {
      *xx = true;
    } else if (equalsIgnoreCase(o, "get")) {
      *get = true;
    } else if (equalsIgnoreCase(o, "keepttl") && kind(5)) {
      expire = 5;
    } else if (i + 1 < argv.size() &&
               ((equalsIgnoreCase(o, "ex") && kind(1)) || (equalsIgnoreCase(o, "px") && kind(2)) ||
                (equalsIgnoreCase(o, "exat") && kind(3)) ||
                (equalsIgnoreCase(o, "pxat") && kind(4)))) {
      static constexpr Expiry kUnits[] = {Expiry::kSeconds, Expiry::kMillis, Expiry::kUnixSeconds,
                                          Expiry::kUnixMillis};
      int k = equalsIgnoreCase(o, "ex")     ? 1
              : equalsIgnoreCase(o, "px")   ? 2
              : equalsIgnoreCase(o, "exat") ? 3
                                            : 4;
      // Redis checks the value of the last one given.
      expire = k;
      expire_arg = argv[++i];
      expire_unit = kUnits[k - 1];
    } else {
      return false;
    }
  }
  return expire == 0 || expire == 5 || validExpiry(expire_arg, expire_unit);
}

}  // namespace

WritePlan planWrite(CacheRegistry* registry, const std::vector<std::string_view>& argv,
                    const resp::CommandInfo* info) {
  WritePlan plan;
  const Known& k = known();
  size_t n = argv.size();
  using Kind = WriteState::Kind;
  auto add = [&](std::string_view key, Kind kind, std::string_view value) {
    Writer* w = registry->findWriter(key);
    if (w == nullptr) return;
    WritePlan::Item item{w, std::string(key), {}};
    item.state.kind = kind;
    item.state.value = std::string(value);
    plan.items.push_back(std::move(item));
  };
  bool known_write = true;
  if (info == k.set) {
    if (n < 3 || !setOptions(argv, &plan.nx, &plan.xx, &plan.get)) return plan;
    add(argv[1], Kind::kString, argv[2]);
  } else if (info == k.setex || info == k.psetex) {
    if (n != 4 || !validExpiry(argv[2], info == k.setex ? Expiry::kSeconds : Expiry::kMillis)) {
      return plan;
    }
    add(argv[1], Kind::kString, argv[3]);
  } else if (info == k.mset) {
    if (n < 3 || n % 2 == 0) return plan;
    for (size_t i = 1; i + 1 < n; i += 2) add(argv[i], Kind::kString, argv[i + 1]);
  } else if (info == k.hset || info == k.hmset) {
    if (n < 4 || n % 2 != 0) return plan;
    plan.op = WritePlan::Op::kHset;
    add(argv[1], Kind::kHash, {});
    for (size_t i = 2; i + 1 < n; i += 2) plan.set_fields.emplace_back(argv[i], argv[i + 1]);
  } else if (info == k.hdel) {
    if (n < 3) return plan;
    plan.op = WritePlan::Op::kHdel;
    add(argv[1], Kind::kHash, {});
    for (size_t i = 2; i < n; ++i) plan.del_fields.emplace_back(argv[i]);
  } else if (info == k.del || info == k.unlink) {
    if (n < 2) return plan;
    plan.op = WritePlan::Op::kDel;
    for (size_t i = 1; i < n; ++i) add(argv[i], Kind::kDeleted, {});
  } else {
    known_write = false;
  }
  if (!known_write) {
    // TTL changes are Redis's alone; any other write to a writer's key is refused.
    if (info == k.expire || info == k.pexpire || info == k.expireat || info == k.pexpireat ||
        info == k.persist || info->first_key <= 0) {
      return plan;
    }
    int last = info->last_key < 0 ? static_cast<int>(n) + info->last_key : info->last_key;
    int step = info->key_step > 0 ? info->key_step : 1;
    for (int i = info->first_key; i <= last && i < static_cast<int>(n); i += step) {
      if (Writer* w = registry->findWriter(argv[static_cast<size_t>(i)])) {
        plan.kind = WritePlan::Kind::kRefuse;
        plan.error = fmt::format(
            "ERR writer '{}' does not support {}: only SET, SETEX, PSETEX, MSET, HSET, HMSET, "
            "HDEL, DEL and UNLINK reach its database",
            w->name(), info->name);
        return plan;
      }
    }
    return plan;
  }
  if (plan.items.empty()) return plan;
  bool behind = plan.items.front().writer->behind();
  for (const auto& item : plan.items) {
    if (item.writer->behind() != behind) {
      plan.kind = WritePlan::Kind::kRefuse;
      plan.error =
          "ERR one command cannot write keys of both write-through and write-behind writers";
      return plan;
    }
    if (!behind && item.writer->backend() != plan.items.front().writer->backend()) {
      plan.kind = WritePlan::Kind::kRefuse;
      plan.error = "ERR one command cannot write keys of writers on different backends";
      return plan;
    }
  }
  plan.kind = behind ? WritePlan::Kind::kBehind : WritePlan::Kind::kThrough;
  return plan;
}

void countWrites(const WritePlan& plan) {
  // One write command per writer it touches, however many of its keys it names.
  for (size_t i = 0; i < plan.items.size(); ++i) {
    bool seen = false;
    for (size_t j = 0; j < i; ++j) seen = seen || plan.items[j].writer == plan.items[i].writer;
    if (!seen) ++plan.items[i].writer->stats().writes;
  }
}

std::vector<std::pair<std::string, std::string>> applyHashChange(
    const WritePlan& plan, std::vector<std::pair<std::string, std::string>> fields) {
  auto find = [&fields](std::string_view f) {
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      if (it->first == f) return it;
    }
    return fields.end();
  };
  for (const auto& [f, v] : plan.set_fields) {
    auto it = find(f);
    if (it != fields.end()) {
      it->second = v;
    } else {
      fields.emplace_back(f, v);
    }
  }
  for (const std::string& f : plan.del_fields) {
    auto it = find(f);
    if (it != fields.end()) fields.erase(it);
  }
  return fields;
}

}  // namespace readthru
