#pragma once
// ASCII case, as Redis treats command names, subcommands and option words: case-insensitive
// comparison and lower-casing of bytes A-Z only (never the locale's idea of a letter).

#include <string>
#include <string_view>

namespace readthru {

bool equalsIgnoreCase(std::string_view a, std::string_view b);
std::string asciiLower(std::string_view s);

}  // namespace readthru
