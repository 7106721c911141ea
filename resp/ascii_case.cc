#include "resp/ascii_case.h"

namespace readthru {
namespace {

char lowerByte(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lowerByte(a[i]) != lowerByte(b[i])) return false;
  }
  return true;
}

std::string asciiLower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = lowerByte(c);
  return r;
}

}  // namespace readthru
