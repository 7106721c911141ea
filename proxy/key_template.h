#pragma once
// KeyTemplate: the shape of the Redis keys that one loader or writer serves, such as "user:{id}"
// or "order:{region}:{id:int}", and the matcher that takes a key apart into named captures.
// Captures are bound as SQL parameters, never pasted into SQL text, so a capture is the key's
// bytes verbatim, whatever they are.
//
// Template syntax
//   literal text   matched byte for byte; any byte is allowed. "{{" and "}}" stand for a literal
//                  '{' and '}', for Redis Cluster hash tags: "{{user:{id}}}:cart" matches
//                  "{user:42}:cart".
//   {name}         a string capture.
//   {name:int}     an integer capture. "int" is the only type.
//   name           [A-Za-z_][A-Za-z0-9_]*, unique within the template (it names the SQL parameter).
//   Two captures need literal text between them ("{a}{b}" is an error: where would "a" end?).
//   A template without captures is allowed and matches exactly one key.
//
// Matching rule (the same for both capture types)
//   - A capture is one or more bytes and never contains ':', the separator of Redis key segments.
//     "user:{id}" matches "user:42" but neither "user:" nor "user:42:profile", so the templates
//     "user:{id}" and "user:{id}:profile" never claim the same key.
//   - A capture followed by literal text ends where that literal first occurs after the capture's
//     first byte: the earliest end, with no backtracking. "{a}.{b}" splits "x.y.z" into "x" and
//     "y.z"; "{a}ab" does not match "xabab" ("a" ends at the first "ab", and "ab" is left over).
//   - A capture at the end of the template runs to the end of the key.
//   - Every other byte (NUL, CR, LF, spaces, quotes, bytes that are not UTF-8) is captured as is.
//   - {name:int} then also requires the value to be the canonical decimal form of a non-negative
//     int64: ASCII digits only, no sign, no leading zero (but "0" itself), at most
//     9223372036854775807. "product:007", "product:-1" and "product:1e3" do not match, so one row
//     is never cached under two keys, and the value always binds as a 64-bit integer.
//
// A key that matches no template is simply not the template's business (it is forwarded as is),
// so match() is a predicate, not a validator: it reports no reason.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace readthru {

enum class CaptureType : uint8_t {
  kString,  // {name}
  kInt,     // {name:int}
};

class KeyTemplate {
 public:
  // (name, value) pairs in template order. Names view this template's storage and stay valid
  // while the template lives unmodified (a copy has its own); values view the matched key.
  using Captures = std::vector<std::pair<std::string_view, std::string_view>>;

  // A default-constructed template matches no key at all.
  KeyTemplate() = default;

  // Parses `text`. On success fills *out and returns true. On failure returns false, leaves *out
  // untouched and sets *error to one line naming the problem and its 0-based byte offset in
  // `text`, e.g. "unclosed '{' at offset 5 (write '{{' for a literal '{')"; the caller adds
  // where the template came from.
  [[nodiscard]] static bool parse(std::string_view text, KeyTemplate* out, std::string* error);

  // True if `key` matches (see the rule above). On success, when `captures` is not null, it is
  // cleared and then holds one entry per capture, in template order; on failure it is left empty.
  //
  // Runs for every read through the proxy, so it never allocates unless `captures` lacks capacity
  // for captureNames().size() entries: reuse one vector. A key fails on its length, its literal
  // prefix or its literal suffix before any capture is looked at.
  bool match(std::string_view key, Captures* captures) const;

  // The capture names, in template order.
  const std::vector<std::string>& captureNames() const { return names_; }
  // The type of capture `index` (an index into captureNames()).
  CaptureType captureType(size_t index) const { return captures_[index].type; }

  // The text this template was parsed from, as written (escapes not undone).
  std::string_view text() const { return text_; }
  // The literal bytes every matching key starts with (escapes undone): "user:" for "user:{id}",
  // the whole key for a template without captures. Lets a caller index templates by prefix.
  std::string_view prefix() const { return literal(prefix_); }

 private:
  // A run of literal bytes in literals_. Offsets rather than views, so copies stay valid.
  struct Span {
    size_t offset = 0;
    size_t size = 0;
  };
  struct Capture {
    CaptureType type = CaptureType::kString;
    Span after;  // the literal that ends this capture; empty only for a capture at the end
  };

  std::string_view literal(Span span) const {
    return std::string_view(literals_).substr(span.offset, span.size);
  }

  std::string text_;
  std::string literals_;  // every literal of the template, escapes undone, back to back
  Span prefix_;           // the literal before the first capture (or the whole template)
  Span suffix_;           // the literal after the last capture; empty if a capture ends it
  std::vector<Capture> captures_;
  std::vector<std::string> names_;  // parallel to captures_
  // Shortest matching key: all literals plus one byte per capture. The default never matches.
  size_t min_key_size_ = SIZE_MAX;
};

}  // namespace readthru
