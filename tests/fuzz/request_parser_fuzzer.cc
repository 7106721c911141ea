// libFuzzer target for RequestParser. The first byte picks the read size (1..256); the rest is a
// client's byte stream, fed in reads of that size the way ClientConn does: unconsumed bytes stay
// at the front of the buffer, each read is appended behind them, and every parse() starts at the
// first unconsumed byte. Aborts when an invariant breaks:
//   - consumed <= len, and consumed bytes end exactly where a command's raw span ends;
//   - raw lies within the bytes passed; multibulk arguments lie within raw;
//   - bytesWanted() after kNeedMore is 0 or more than the bytes already buffered;
//   - a protocol error is one of redis-server's texts;
//   - with the default limits, the commands, their boundaries and any error do not depend on the
//     read size (fed whole, in reads, and for short streams byte by byte, must agree).
// The input is checked twice: as raw bytes, and as a recipe for a stream of mostly well-formed
// requests (class Recipe), which random bytes alone reach too rarely.
// Each parse() sees a private copy of exactly the buffered bytes, so ASan reports any read past
// the end of what the parser was given.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "resp/request_parser.h"

namespace {

using readthru::resp::Command;
using readthru::resp::ParserLimits;
using readthru::resp::ParseStatus;
using readthru::resp::RequestParser;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "request_parser_fuzzer: invariant broken: %s\n", what);
    std::abort();
  }
}

bool within(std::string_view inner, const char* begin, const char* end) {
  return inner.data() >= begin && inner.data() + inner.size() <= end;
}

struct Parsed {
  std::vector<std::string> argv;
  bool is_inline;
  size_t end;  // stream offset just after the command

  bool operator==(const Parsed&) const = default;
};

struct Run {
  std::vector<Parsed> commands;
  std::string error;
  size_t consumed = 0;

  bool operator==(const Run&) const = default;
};

Run feed(const uint8_t* data, size_t size, size_t read_size, const ParserLimits& limits,
         bool authenticated) {
  RequestParser parser(&limits);
  Run run;
  std::string buf;  // unconsumed bytes
  size_t off = 0;
  while (off < size) {
    size_t n = size - off < read_size ? size - off : read_size;
    buf.append(reinterpret_cast<const char*>(data) + off, n);
    off += n;
    std::unique_ptr<char[]> copy(new char[buf.size()]);
    std::memcpy(copy.get(), buf.data(), buf.size());
    const char* const end = copy.get() + buf.size();
    // As ClientConn::processFrom: parse at the first unconsumed byte until more is needed.
    size_t pos = 0;
    while (pos < buf.size()) {
      const char* begin = copy.get() + pos;
      const size_t len = buf.size() - pos;
      size_t consumed = 0;
      Command cmd;
      ParseStatus st = parser.parse(begin, len, &consumed, &cmd, authenticated);
      require(consumed <= len, "consumed more than it was given");
      run.consumed += consumed;
      pos += consumed;
      if (st == ParseStatus::kError) {
        require(parser.error().rfind("ERR Protocol error: ", 0) == 0, "error text");
        run.error = parser.error();
        return run;
      }
      if (st == ParseStatus::kNeedMore) {
        size_t wanted = parser.bytesWanted();
        require(wanted == 0 || wanted > buf.size() - pos, "bytesWanted() for bytes already here");
        break;
      }
      require(st == ParseStatus::kCommand, "unknown status");
      require(consumed > 0, "a command of zero bytes");
      require(!cmd.argv.empty(), "a command without arguments");
      require(within(cmd.raw, begin, begin + consumed), "raw outside the consumed bytes");
      require(cmd.raw.data() + cmd.raw.size() == begin + consumed, "raw does not end at consumed");
      if (cmd.is_inline) {
        require(cmd.raw.back() == '\n', "inline raw does not end in a newline");
        for (std::string_view a : cmd.argv) {
          require(a.size() <= cmd.raw.size(), "inline argument longer than its line");
        }
      } else {
        require(cmd.raw.front() == '*', "multibulk raw does not start with '*'");
        for (std::string_view a : cmd.argv) {
          require(within(a, cmd.raw.data(), cmd.raw.data() + cmd.raw.size()),
                  "multibulk argument outside raw");
        }
      }
      require(within(cmd.raw, begin, end), "raw outside the buffer");
      Parsed p{std::vector<std::string>(cmd.argv.begin(), cmd.argv.end()), cmd.is_inline,
               run.consumed};
      run.commands.push_back(std::move(p));
    }
    buf.erase(0, pos);
  }
  return run;
}

// Random bytes rarely spell a well-formed multibulk request, so the same input is also read as a
// recipe: each byte picks a piece (a multibulk command, an inline line with quotes and escapes,
// an empty request, a bulk with a wrong length, raw bytes) and the following bytes size and fill
// it. The stream this builds is checked like the raw one.
class Recipe {
 public:
  Recipe(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}

  std::string build() {
    std::string out;
    while (p_ < end_ && out.size() < 4096) {
      switch (next() % 8) {
        case 0:
        case 1: {
          size_t argc = next() % 5 + 1;
          out += "*" + std::to_string(argc) + "\r\n";
          for (size_t i = 0; i < argc; ++i) bulk(&out, length());
          break;
        }
        case 2: {
          size_t n = next() % 24;
          static const char kInline[] = {'a', 'b', ' ', '"', '\'', '\\', 'x', '4', 'F', 'n', '\t'};
          for (size_t i = 0; i < n; ++i) out.push_back(kInline[next() % sizeof kInline]);
          out += next() % 4 == 0 ? "\n" : "\r\n";
          break;
        }
        case 3: {
          static const char* const kEmpty[] = {"\r\n", "\n", "*0\r\n", "*-1\r\n", "  \r\n"};
          out += kEmpty[next() % 5];
          break;
        }
        case 4: {
          // A bulk whose declared length is off by a little.
          size_t n = length();
          out += "*1\r\n$" + std::to_string(n) + "\r\n";
          size_t actual = n + next() % 3;
          actual = actual >= 1 ? actual - 1 : 0;
          for (size_t i = 0; i < actual; ++i) out.push_back(static_cast<char>(next()));
          out += "\r\n";
          break;
        }
        case 5: {
          size_t n = next() % 8;
          for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(next()));
          break;
        }
        case 6:
          out += "*" + std::to_string(static_cast<int>(next()) - 8) + "\r\n";
          break;
        default:
          out += "$" + std::to_string(static_cast<int>(next()) - 8) + "\r\n";
          break;
      }
    }
    return out;
  }

 private:
  uint8_t next() { return p_ < end_ ? *p_++ : 0; }
  size_t length() {
    uint8_t b = next();
    return b < 240 ? b % 24 : static_cast<size_t>(b - 239) * 150;
  }
  void bulk(std::string* out, size_t n) {
    *out += "$" + std::to_string(n) + "\r\n";
    for (size_t i = 0; i < n; ++i) {
      uint8_t b = next();
      static const char kBytes[] = {'\r', '\n', '\0', '*', '$'};
      out->push_back(b < 40 ? kBytes[b % 5] : static_cast<char>(b));
    }
    *out += "\r\n";
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

void check(const uint8_t* data, size_t size, size_t read_size) {
  static const ParserLimits kDefault;
  Run chunked = feed(data, size, read_size, kDefault, true);
  // Size errors (too big inline / count line) depend on how much is buffered when the parser
  // looks; below max_inline nothing does.
  if (size <= kDefault.max_inline) {
    Run whole = feed(data, size, size, kDefault, true);
    require(whole == chunked, "fed whole and fed in reads disagree");
    if (size <= 512) {
      Run bytewise = feed(data, size, 1, kDefault, true);
      require(whole == bytewise, "fed whole and fed byte by byte disagree");
    }
  }

  // Small limits and no authentication reach the limit errors with short inputs.
  static const ParserLimits kSmall = [] {
    ParserLimits l;
    l.max_inline = 40;
    l.max_multibulk = 12;
    l.max_bulk = 64;
    l.unauth_max_multibulk = 3;
    l.unauth_max_bulk = 16;
    return l;
  }();
  feed(data, size, read_size, kSmall, false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t read_size = static_cast<size_t>(data[0]) + 1;
  check(data + 1, size - 1, read_size);
  std::string recipe = Recipe(data + 1, size - 1).build();
  check(reinterpret_cast<const uint8_t*>(recipe.data()), recipe.size(), read_size);
  return 0;
}
