#pragma once
// callUpstream: a request readthru sends for itself (write-behind's stream reads, its lease, ...)
// whose reply it reads with hiredis's reader, as a tree: these replies are small and nested
// (XREADGROUP is four levels deep), which is what that reader is for.

#include <hiredis/hiredis.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/upstream_conn.h"

namespace readthru {

// Runs with the parsed reply, or nullptr when the connection lost the request. The reply is
// freed after the callback returns.
using UpstreamReplyCallback = std::function<void(const redisReply* reply)>;

// Sends `argv` as one command on `conn`. False (and the callback never runs) when `conn` is null.
bool callUpstream(backends::UpstreamConn* conn, const std::vector<std::string>& argv,
                  UpstreamReplyCallback cb);
// The same for a request already encoded (complete RESP bytes).
bool callUpstreamEncoded(backends::UpstreamConn* conn, std::string_view request,
                         UpstreamReplyCallback cb);

// Runs with the reply's RESP bytes, or nullptr when the connection lost the request; it may move
// from them. For large flat replies (HMGET of many keys): resp/flat_reply.h splits them in place,
// where a tree costs an allocation per element. The reply is collected in `buffer` (cleared
// first): a caller that sends such requests again and again passes back a buffer it was given,
// so a large reply does not grow a string from empty each time.
using UpstreamBytesCallback = std::function<void(std::string* reply)>;
bool callUpstreamBytes(backends::UpstreamConn* conn, std::string_view request,
                       UpstreamBytesCallback cb, std::string buffer = {});

// Accessors for hiredis replies.
inline std::string_view replyString(const redisReply* r) {
  return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                          r->type == REDIS_REPLY_ERROR)
             ? std::string_view(r->str, r->len)
             : std::string_view();
}
inline bool replyIsError(const redisReply* r) {
  return r == nullptr || r->type == REDIS_REPLY_ERROR;
}

}  // namespace readthru
