#pragma once
// JSON string literals from arbitrary bytes: what a JSON loader writes for each column and what the
// JSON log format writes for each message. JSON text must be UTF-8, and neither SQLite (TEXT is not
// checked) nor a log message (a client's user name) promises it, so bytes that are not valid UTF-8
// become U+FFFD; quotes, backslashes and control characters are escaped.

#include <string>
#include <string_view>

namespace readthru {

// Appends `s` to `out` as a quoted JSON string.
void appendJsonString(std::string_view s, std::string* out);

}  // namespace readthru
