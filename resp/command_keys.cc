#include "resp/command_keys.h"

#include <strings.h>

#include <charconv>

namespace readthru::resp {
namespace {

bool is(std::string_view arg, std::string_view word) {
  return arg.size() == word.size() && strncasecmp(arg.data(), word.data(), arg.size()) == 0;
}

// Appends the keys of one spec; false when the arguments do not fit it.
bool applySpec(const KeySpec& spec, const std::vector<std::string_view>& argv,
               std::vector<KeyRef>* out) {
  const int argc = static_cast<int>(argv.size());
  int first = 0;
  switch (spec.begin) {
    case KeySpec::Begin::kIndex:
      first = spec.begin_at;
      break;
    case KeySpec::Begin::kKeyword: {
      // Forwards from begin_at up to the last argument but one, or backwards from
      // argc + begin_at down to argv[2]: a keyword with no argument after it names no key.
      int from = spec.begin_at > 0 ? spec.begin_at : argc + spec.begin_at;
      int dir = spec.begin_at > 0 ? 1 : -1;
      for (int i = from; i > (dir > 0 ? 0 : 1) && i < (dir > 0 ? argc - 1 : argc); i += dir) {
        if (is(argv[static_cast<size_t>(i)], spec.keyword)) {
          first = i + 1;
          break;
        }
      }
      if (first == 0) return true;  // the keyword is optional: no keys from this spec
      break;
    }
    case KeySpec::Begin::kUnknown:
      return false;
  }
  int last = 0;
  switch (spec.find) {
    case KeySpec::Find::kRange:
      if (spec.last >= 0) {
        last = first + spec.last;
      } else if (spec.limit == 0) {
        last = argc + spec.last;
      } else {
        // A 1/limit share of what follows (XREAD's STREAMS k1 k2 id1 id2: limit 2).
        last = first + (argc - first) / spec.limit + spec.last;
      }
      break;
    case KeySpec::Find::kKeynum: {
      int at = first + spec.keynum_at;
      if (at < 1 || at >= argc) return false;
      std::string_view s = argv[static_cast<size_t>(at)];
      long long count = -1;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), count);
      if (ec != std::errc() || end != s.data() + s.size() || count < 0 || count > argc) {
        return false;
      }
      first += spec.keynum_first;
      last = first + static_cast<int>(count) - 1;
      break;
    }
    case KeySpec::Find::kUnknown:
      return false;
  }
  if (first < 1 || first >= argc || last < first || last >= argc) return false;
  int step = spec.step > 0 ? spec.step : 1;
  for (int i = first; i <= last; i += step) out->push_back({i, spec.flags});
  return !(spec.flags & kKeyIncomplete);
}

constexpr uint16_t kRead = kKeyRO | kKeyAccess;
constexpr uint16_t kWrite = kKeyRW | kKeyAccess | kKeyUpdate;

// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
//      [STORE destination]: the key, and the last STORE's destination.
void sortKeys(const std::vector<std::string_view>& argv, bool store_allowed,
              std::vector<KeyRef>* out) {
  if (argv.size() < 2) return;
  out->push_back({1, kRead});
  int store = 0;
  for (size_t i = 2; i < argv.size(); ++i) {
    size_t left = argv.size() - i - 1;
    if (is(argv[i], "limit") && left >= 2) {
      i += 2;
    } else if ((is(argv[i], "get") || is(argv[i], "by")) && left >= 1) {
      i += 1;
    } else if (store_allowed && is(argv[i], "store") && left >= 1) {
      store = static_cast<int>(i + 1);
      i += 1;
    }
  }
  if (store != 0) out->push_back({store, kKeyOW | kKeyUpdate});
}

// MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS k ...]
void migrateKeys(const std::vector<std::string_view>& argv, std::vector<KeyRef>* out) {
  constexpr uint16_t kFlags = kKeyRW | kKeyAccess | kKeyDelete;
  if (argv.size() < 6) return;
  if (!argv[3].empty()) {
    out->push_back({3, kFlags});
    return;
  }
  for (size_t i = 6; i < argv.size(); ++i) {
    if (is(argv[i], "auth")) {
      i += 1;
    } else if (is(argv[i], "auth2")) {
      i += 2;
    } else if (is(argv[i], "keys")) {
      for (size_t k = i + 1; k < argv.size(); ++k) out->push_back({static_cast<int>(k), kFlags});
      return;
    }
  }
}

// BITFIELD key [GET enc off | SET enc off v | INCRBY enc off incr | OVERFLOW how] ...: a read
// unless a SET or INCRBY is among them (or the arguments do not parse: assume a write).
uint16_t bitfieldFlags(const std::vector<std::string_view>& argv) {
  for (size_t i = 2; i < argv.size(); ++i) {
    size_t left = argv.size() - i - 1;
    if (is(argv[i], "get") && left >= 2) {
      i += 2;
    } else if (is(argv[i], "overflow") && left >= 1) {
      i += 1;
    } else {
      return kWrite;
    }
  }
  return kRead;
}

struct Special {
  const CommandInfo* sort = findCommand("sort");
  const CommandInfo* sort_ro = findCommand("sort_ro");
  const CommandInfo* migrate = findCommand("migrate");
  const CommandInfo* set = findCommand("set");
  const CommandInfo* bitfield = findCommand("bitfield");
};

const Special& special() {
  static const Special s;
  return s;
}

}  // namespace

void findKeys(const CommandInfo& info, const std::vector<std::string_view>& argv,
              std::vector<KeyRef>* out) {
  if (info.key_specs.empty()) return;
  const Special& s = special();
  if (&info == s.sort || &info == s.sort_ro) return sortKeys(argv, &info == s.sort, out);
  if (&info == s.migrate) return migrateKeys(argv, out);
  size_t start = out->size();
  for (const KeySpec& spec : info.key_specs) {
    if (spec.flags & kKeyNotKey) continue;
    if (!applySpec(spec, argv, out)) {
      out->resize(start);
      return;
    }
  }
  if (&info == s.set && out->size() > start) {
    // SET key value ... GET: the old value is read too.
    bool get = false;
    for (size_t i = 3; i < argv.size(); ++i) get = get || is(argv[i], "get");
    (*out)[start].flags = get ? kWrite : static_cast<uint16_t>(kKeyOW | kKeyUpdate);
  } else if (&info == s.bitfield && out->size() > start) {
    (*out)[start].flags = bitfieldFlags(argv);
  }
}

}  // namespace readthru::resp
