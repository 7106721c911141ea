#pragma once
// Integer arguments as redis-server reads them (string2ll in its util.c): an optional '-', then
// "0" alone or digits without a leading zero, within 64 bits. No '+', no spaces, no "-0".
// Where Redis answers "value is not an integer" (or a command's own wording), so does readthru.

#include <cstdint>
#include <string_view>

namespace readthru {

[[nodiscard]] bool parseRedisInt(std::string_view s, int64_t* v);

}  // namespace readthru
