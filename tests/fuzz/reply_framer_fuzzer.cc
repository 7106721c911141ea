// libFuzzer target for ReplyFramer. The first byte picks the read size (1..256); the rest is an
// upstream's byte stream, fed in reads of that size; after a complete reply the rest of the read
// is fed again, as UpstreamConn does. Aborts when an invariant breaks:
//   - feed() never consumes past its input, and an incomplete reply consumes the whole input;
//   - a complete reply has at least one byte, and Result::type is the reply's first byte;
//   - inReply() is true inside a reply and false after one;
//   - boundaries and errors do not depend on the read size (fed whole, in reads, and for short
//     streams byte by byte, agree);
//   - wherever the stream holds strictly well-formed RESP2/RESP3 replies (checked by a small
//     recursive parser below, which also knows which pushes inside an aggregate are out of
//     band), the framer ends each reply exactly where that parser does, and
//     neither errors nor completes early on a well-formed but truncated reply.
// The input is checked twice: as raw bytes, and as a recipe for a stream of mostly well-formed
// nested replies (class Recipe), which random bytes alone reach too rarely.
// Each feed() sees a private copy of exactly its input, so ASan reports any read past its end.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "resp/reply_framer.h"

namespace {

using readthru::resp::ReplyFramer;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "reply_framer_fuzzer: invariant broken: %s\n", what);
    std::abort();
  }
}

struct Run {
  std::vector<size_t> ends;  // stream offset just after each reply
  std::string error;
  size_t error_at = 0;

  bool operator==(const Run&) const = default;
};

Run feed(std::string_view stream, size_t read_size, int64_t max_length) {
  ReplyFramer framer;
  if (max_length > 0) framer.setMaxLength(max_length);
  Run run;
  size_t reply_start = 0;
  size_t off = 0;
  while (off < stream.size()) {
    size_t n = stream.size() - off < read_size ? stream.size() - off : read_size;
    std::unique_ptr<char[]> copy(new char[n]);
    std::memcpy(copy.get(), stream.data() + off, n);
    const char* p = copy.get();
    size_t base = off;
    off += n;
    while (n > 0) {
      ReplyFramer::Result r = framer.feed(p, n);
      require(r.consumed <= n, "consumed past the input");
      if (r.error) {
        require(!framer.message().empty(), "an error without a message");
        run.error = framer.message();
        run.error_at = base + r.consumed;
        return run;
      }
      require(r.type == stream[reply_start], "type is not the reply's first byte");
      if (!r.complete) {
        require(r.consumed == n, "an incomplete reply left input unconsumed");
        require(framer.inReply(), "inReply() false inside a reply");
        break;
      }
      require(r.consumed > 0, "a reply of zero bytes");
      require(!framer.inReply(), "inReply() true after a reply");
      base += r.consumed;
      run.ends.push_back(base);
      reply_start = base;
      p += r.consumed;
      n -= r.consumed;
    }
  }
  return run;
}

// A strict RESP2/RESP3 reader: only canonical lines ("\r\n"-terminated, no CR or LF inside),
// plain decimal lengths, bulk payloads followed by "\r\n".
class Strict {
 public:
  enum Status { kOk, kIncomplete, kInvalid };

  Strict(std::string_view s, int64_t max_length) : s_(s), max_length_(max_length) {}

  // Reads one value at `*pos`, moving `*pos` past it on kOk. `nested`: it is inside an
  // aggregate. On kOk, `*element` tells whether it counts as an element there (a push inside an
  // aggregate does only when its first element is a (un)subscribe kind, see reply_framer.h), and
  // `*kind` whether it is a bulk string holding such a kind (after any attributes).
  Status value(size_t* pos, bool nested = false, bool* element = nullptr, bool* kind = nullptr) {
    bool unused_element = true, unused_kind = false;
    if (element == nullptr) element = &unused_element;
    if (kind == nullptr) kind = &unused_kind;
    *element = true;
    *kind = false;
    if (*pos >= s_.size()) return kIncomplete;
    char type = s_[*pos];
    size_t p = *pos + 1;
    switch (type) {
      case '+':
      case '-':
      case ':':
      case ',':
      case '#':
      case '_':
      case '(': {
        Status st = line(&p, nullptr);
        if (st == kOk) *pos = p;
        return st;
      }
      case '$':
      case '!':
      case '=':
      case '*':
      case '~':
      case '>':
      case '%':
      case '|':
        break;
      default:
        return kInvalid;
    }
    std::string_view digits;
    Status st = line(&p, &digits);
    if (st == kInvalid) return st;
    const bool nullable = type == '$' || type == '*';
    if (nullable && (digits == "-1" || (st == kIncomplete && digits == "-"))) {
      if (st == kOk) *pos = p;
      return st;
    }
    if ((st == kOk && digits.empty()) || digits.size() > 10) return kInvalid;
    int64_t n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return kInvalid;
      n = n * 10 + (c - '0');
    }
    if (n > max_length_) return kInvalid;
    if (st == kIncomplete) return st;
    if (type == '$' || type == '!' || type == '=') {
      size_t need = static_cast<size_t>(n) + 2;
      if (s_.size() - p < need) {
        // Truncated; still strict only if what is here of the trailing CRLF is right.
        size_t have = s_.size() - p;
        if (have > static_cast<size_t>(n) && s_[p + static_cast<size_t>(n)] != '\r') {
          return kInvalid;
        }
        return kIncomplete;
      }
      if (s_[p + static_cast<size_t>(n)] != '\r' || s_[p + static_cast<size_t>(n) + 1] != '\n') {
        return kInvalid;
      }
      *kind = type == '$' && isKind(s_.substr(p, static_cast<size_t>(n)));
      *pos = p + need;
      return kOk;
    }
    int64_t elements = (type == '%' || type == '|') ? 2 * n : n;
    bool confirmation = false;
    for (int64_t i = 0; i < elements;) {
      bool counted = true, first_kind = false;
      st = value(&p, true, &counted, &first_kind);
      if (st != kOk) return st;
      if (!counted) continue;  // a push inside this aggregate, out of band
      if (i == 0) confirmation = first_kind;
      ++i;
    }
    if (type == '|') {
      // An attribute annotates the value that follows it; together they are one value. Pushes
      // out of band may come between them.
      bool counted = false;
      while (!counted) {
        st = value(&p, nested, &counted, kind);
        if (st != kOk) return st;
      }
    }
    if (type == '>' && nested) *element = confirmation;
    *pos = p;
    return kOk;
  }

 private:
  static bool isKind(std::string_view v) {
    return v == "subscribe" || v == "unsubscribe" || v == "psubscribe" || v == "punsubscribe" ||
           v == "ssubscribe" || v == "sunsubscribe";
  }

  // Reads a line body up to "\r\n" from `*pos`; CR or LF inside makes it invalid. On
  // kIncomplete, `*body` is the part of the body that is here.
  Status line(size_t* pos, std::string_view* body) {
    for (size_t i = *pos; i < s_.size(); ++i) {
      if (s_[i] == '\n') return kInvalid;
      if (s_[i] == '\r') {
        if (body != nullptr) *body = s_.substr(*pos, i - *pos);
        if (i + 1 == s_.size()) return kIncomplete;
        if (s_[i + 1] != '\n') return kInvalid;
        *pos = i + 2;
        return kOk;
      }
    }
    if (body != nullptr) *body = s_.substr(*pos);
    return kIncomplete;
  }

  std::string_view s_;
  int64_t max_length_;
};

void checkAgainstStrict(std::string_view stream, const Run& run, int64_t max_length) {
  Strict strict(stream, max_length);
  size_t pos = 0;
  size_t i = 0;
  while (pos < stream.size()) {
    Strict::Status st = strict.value(&pos);
    if (st == Strict::kInvalid) return;  // the framer may be more lenient from here on
    if (st == Strict::kIncomplete) {
      require(run.ends.size() == i, "a reply ended inside a well-formed truncated reply");
      require(run.error.empty(), "an error inside a well-formed truncated reply");
      return;
    }
    require(i < run.ends.size(), "a well-formed reply was not framed");
    require(run.ends[i] == pos, "a well-formed reply was framed at another boundary");
    ++i;
  }
  require(run.ends.size() == i && run.error.empty(), "more than the well-formed replies");
}

// Random bytes rarely nest well-formed aggregates, so the same input is also read as a recipe:
// each byte picks a value of some RESP2/RESP3 type (aggregates recurse) and the following bytes
// size and fill it; now and then a raw byte is slipped in. The stream this builds is checked like
// the raw one.
class Recipe {
 public:
  Recipe(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}

  std::string build() {
    std::string out;
    while (p_ < end_ && out.size() < 4096) value(&out, 0);
    return out;
  }

 private:
  uint8_t next() { return p_ < end_ ? *p_++ : 0; }
  size_t length() {
    uint8_t b = next();
    return b < 240 ? b % 16 : static_cast<size_t>(b - 239) * 150;
  }
  void line(std::string* out, char type) {
    out->push_back(type);
    size_t n = next() % 8;
    for (size_t i = 0; i < n; ++i) out->push_back(static_cast<char>('0' + next() % 40));
    *out += "\r\n";
  }
  void value(std::string* out, int depth) {
    uint8_t b = next();
    if (b == 255) {
      out->push_back(static_cast<char>(next()));  // noise
      return;
    }
    int kind = b % 16;
    if (depth >= 40 && kind >= 12) kind = 0;
    static const char kLines[] = {'+', '-', ':', ',', '#', '_', '('};
    static const char kBulks[] = {'$', '!', '='};
    static const char kAggregates[] = {'*', '%', '~', '>', '|'};
    if (kind < 7) {
      line(out, kLines[kind]);
    } else if (kind < 10) {
      size_t n = length();
      out->push_back(kBulks[kind - 7]);
      *out += std::to_string(n) + "\r\n";
      for (size_t i = 0; i < n; ++i) out->push_back(static_cast<char>(next()));
      *out += "\r\n";
    } else if (kind == 10) {
      *out += next() % 2 == 0 ? "$-1\r\n" : "*-1\r\n";
    } else {
      char type = kAggregates[(kind - 11) % 5];
      size_t n = next() % 4;
      out->push_back(type);
      *out += std::to_string(n) + "\r\n";
      size_t elements = (type == '%' || type == '|') ? 2 * n : n;
      size_t i = 0;
      if (type == '>' && n > 0 && next() % 2 == 0) {
        // A push that confirms a (un)subscription: an element even inside an aggregate.
        static const char* const kKinds[] = {"$9\r\nsubscribe\r\n", "$12\r\npunsubscribe\r\n",
                                             "$10\r\nsubscribes\r\n"};
        *out += kKinds[next() % 3];
        ++i;
      }
      for (; i < elements; ++i) value(out, depth + 1);
      if (type == '|') value(out, depth + 1);  // the annotated value
    }
  }

  const uint8_t* p_;
  const uint8_t* end_;
};

void check(std::string_view stream, size_t read_size) {
  const int64_t kDefaultMax = 4ll * 1024 * 1024 * 1024;
  for (int64_t max_length : {int64_t{0}, int64_t{100}}) {
    Run chunked = feed(stream, read_size, max_length);
    Run whole = feed(stream, stream.size() > 0 ? stream.size() : 1, max_length);
    require(whole == chunked, "fed whole and fed in reads disagree");
    if (stream.size() <= 512) {
      require(whole == feed(stream, 1, max_length), "fed whole and fed byte by byte disagree");
    }
    checkAgainstStrict(stream, whole, max_length == 0 ? kDefaultMax : max_length);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t read_size = static_cast<size_t>(data[0]) + 1;
  check(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1), read_size);
  check(Recipe(data + 1, size - 1).build(), read_size);
  return 0;
}
