#include "proxy/command_metrics.h"

namespace readthru {

CommandClass commandClass(const RouteDecision& d) {
  if (d.route == Route::kLocal) return CommandClass::kLocal;
  if (d.info == nullptr) return CommandClass::kOther;
  if (d.info->flags & resp::kFlagWrite) return CommandClass::kWrite;
  if (d.info->flags & resp::kFlagReadonly) return CommandClass::kRead;
  return CommandClass::kOther;
}

const char* commandClassName(CommandClass c) {
  switch (c) {
    case CommandClass::kRead:
      return "read";
    case CommandClass::kWrite:
      return "write";
    case CommandClass::kOther:
      return "other";
    case CommandClass::kLocal:
      return "local";
    case CommandClass::kNone:
      break;
  }
  return "none";
}

}  // namespace readthru
