#pragma once
// CommandMetrics: how many client commands readthru took, per class, and how long each took to
// answer, for the Prometheus endpoint (metrics_text.h).
//
// A command's latency runs from the read that brought its last byte to the flush that hands its
// reply to the client's socket: readthru's own time plus the upstream's (and a loader's), not
// the network's. The client path reads the clock once per read and once per flush that
// completes a reply, never per command, so a pipeline of 100 commands costs two clock reads.

#include <array>
#include <cstdint>

#include "proxy/command_router.h"
#include "proxy/latency_histogram.h"

namespace readthru {

// From the command table's flags: a read (read-only commands: GET, HGETALL, ...), a write (SET,
// DEL, ...), another command forwarded to Redis (PING, SUBSCRIBE, EVAL, an unknown one, ...), or
// one readthru answers itself (AUTH, HELLO, CLIENT SETNAME, READTHRU, ...).
enum class CommandClass : uint8_t { kRead, kWrite, kOther, kLocal, kNone };
inline constexpr size_t kCommandClasses = 4;  // kNone is not counted

CommandClass commandClass(const RouteDecision& d);
// "read", "write", "other", "local": the metrics' label values.
const char* commandClassName(CommandClass c);

struct CommandMetrics {
  std::array<uint64_t, kCommandClasses> commands{};       // taken, answered or not
  std::array<LatencyHistogram, kCommandClasses> latency;  // answered, in microseconds

  void taken(CommandClass c) { ++commands[static_cast<size_t>(c)]; }
  void answered(CommandClass c, uint64_t us) { latency[static_cast<size_t>(c)].record(us); }
};

}  // namespace readthru
