#pragma once
// Splits a flat aggregate reply (what MGET, HMGET and HGETALL answer; EXEC of simple commands)
// into its elements: an array ('*') or a map ('%', each pair as two elements) of bulk strings,
// nils and other non-aggregate replies (simple strings, errors, integers, RESP3 scalars).
// Anything else (an error instead of the aggregate, nested aggregates) is refused, and the caller
// passes the reply on untouched.

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace readthru::resp {

// Each element as (offset, size) of its whole encoding in `reply` ("$3\r\nabc\r\n", "$-1\r\n",
// "_\r\n", "+OK\r\n", ":1\r\n"). False unless `reply` is exactly one such aggregate.
bool splitFlatReply(std::string_view reply, std::vector<std::pair<size_t, size_t>>* elements);

// The payload of a bulk element as splitFlatReply gives it; false for a nil.
bool bulkPayload(std::string_view element, std::string_view* payload);

// True for a nil reply or element: "$-1\r\n" (RESP2) or "_\r\n" (RESP3).
inline bool isNilReply(std::string_view r) { return r == "$-1\r\n" || r == "_\r\n"; }

}  // namespace readthru::resp
