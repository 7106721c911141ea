#pragma once
// Redis's exact error texts, in one place. Clients parse these (the prefix before the first space
// is the error code), so they must read word for word as redis-server 7 writes them.

#include <string_view>

namespace readthru::resp::err {

// Protocol errors (redis src/networking.c). Sent after the replies already owed; then the
// connection closes.
inline constexpr std::string_view kTooBigInline = "ERR Protocol error: too big inline request";
inline constexpr std::string_view kUnbalancedQuotes =
    "ERR Protocol error: unbalanced quotes in request";
inline constexpr std::string_view kTooBigMbulkCount =
    "ERR Protocol error: too big mbulk count string";
inline constexpr std::string_view kInvalidMultibulkLength =
    "ERR Protocol error: invalid multibulk length";
inline constexpr std::string_view kUnauthMultibulkLength =
    "ERR Protocol error: unauthenticated multibulk length";
inline constexpr std::string_view kTooBigBulkCount =
    "ERR Protocol error: too big bulk count string";
inline constexpr std::string_view kInvalidBulkLength = "ERR Protocol error: invalid bulk length";
inline constexpr std::string_view kUnauthBulkLength =
    "ERR Protocol error: unauthenticated bulk length";
// "expected '$', got '%c'" is formatted by the parser.

// Authentication (redis src/acl.c, src/server.c).
inline constexpr std::string_view kNoAuth = "NOAUTH Authentication required.";
inline constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";
inline constexpr std::string_view kAuthNotConfigured =
    "ERR AUTH <password> called without any password configured for the default user. Are you "
    "sure your configuration is correct?";

// Access control (redis 7.0 src/server.c, src/sort.c). "NOPERM this user has no permissions to
// run the '<command>' command" is formatted by proxy/acl.cc.
inline constexpr std::string_view kNoPermKey =
    "NOPERM this user has no permissions to access one of the keys used as arguments";
inline constexpr std::string_view kSortByDenied =
    "ERR BY option of SORT denied due to insufficient ACL permissions.";
inline constexpr std::string_view kSortGetDenied =
    "ERR GET option of SORT denied due to insufficient ACL permissions.";

inline constexpr std::string_view kHelloNoAuth =
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
    "protocol version at the same time";

inline constexpr std::string_view kMaxClients = "ERR max number of clients reached";
inline constexpr std::string_view kSyntax = "ERR syntax error";
inline constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kNoProto = "NOPROTO unsupported protocol version";
inline constexpr std::string_view kHelloBadProto =
    "ERR Protocol version is not an integer or out of range";
inline constexpr std::string_view kClientNameChars =
    "ERR Client names cannot contain spaces, newlines or special characters.";

// readthru's own conditions, worded in Redis's style.
inline constexpr std::string_view kUpstreamUnavailable = "ERR upstream unavailable";
inline constexpr std::string_view kUpstreamLost = "ERR upstream connection lost";
inline constexpr std::string_view kUpstreamTimeout = "ERR upstream command timeout";
inline constexpr std::string_view kShuttingDown = "ERR readthru is shutting down";

}  // namespace readthru::resp::err
