#include "resp/glob_match.h"

#include <cstddef>
#include <utility>

namespace readthru::resp {
namespace {

// Whether byte `c` matches the one-byte token at pattern[p] ('?', a class, an escape or a
// literal; never '*'). Sets *next to the position after the token.
bool matchToken(std::string_view pattern, size_t p, unsigned char c, size_t* next) {
  const size_t n = pattern.size();
  auto at = [&pattern](size_t i) { return static_cast<unsigned char>(pattern[i]); };
  switch (pattern[p]) {
    case '?':
      *next = p + 1;
      return true;
    case '\\':
      if (p + 1 < n) {
        *next = p + 2;
        return at(p + 1) == c;
      }
      *next = p + 1;
      return c == '\\';
    case '[': {
      size_t q = p + 1;
      bool negate = q < n && pattern[q] == '^';
      if (negate) ++q;
      bool found = false;
      while (q < n) {
        if (pattern[q] == '\\' && q + 1 < n) {
          found = found || at(q + 1) == c;
          q += 2;
        } else if (pattern[q] == ']') {
          ++q;
          break;
        } else if (q + 2 < n && pattern[q + 1] == '-') {
          unsigned char lo = at(q), hi = at(q + 2);
          if (lo > hi) std::swap(lo, hi);
          found = found || (c >= lo && c <= hi);
          q += 3;
        } else {
          found = found || at(q) == c;
          ++q;
        }
      }
      *next = q;  // n when the class was never closed
      return found != negate;
    }
    default:
      *next = p + 1;
      return at(p) == c;
  }
}

}  // namespace

bool globMatch(std::string_view pattern, std::string_view text) {
  const size_t n = pattern.size();
  size_t p = 0, i = 0;
  // The last '*' seen: where the pattern resumes after it, and the text position it was tried
  // at. Every other token matches exactly one byte, so retrying only the last star is enough.
  size_t star_p = std::string_view::npos, star_i = 0;
  while (i < text.size()) {
    if (p < n && pattern[p] == '*') {
      while (p < n && pattern[p] == '*') ++p;
      if (p == n) return true;
      star_p = p;
      star_i = i;
      continue;
    }
    size_t next = 0;
    if (p < n && matchToken(pattern, p, static_cast<unsigned char>(text[i]), &next)) {
      p = next;
      ++i;
      continue;
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    i = ++star_i;
  }
  while (p < n && pattern[p] == '*') ++p;
  return p == n;
}

}  // namespace readthru::resp
