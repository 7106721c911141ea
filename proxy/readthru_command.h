#pragma once
// readthru's own introspection: the READTHRU container command (STATS, LOADERS, WRITERS,
// SLOWLOG, HELP) and the "# Readthru" section it adds to INFO, in the style of redis-server's
// container commands (their replies and error texts) and INFO sections.

#include <string>
#include <string_view>
#include <vector>

#include "proxy/slot_interceptor.h"

namespace readthru {

class Server;

// Answers READTHRU <subcommand> ... in the client's protocol.
void answerReadthruCommand(Server* server, const std::vector<std::string_view>& argv, int protocol,
                           std::string* out);

// READTHRU RELOAD, well formed: answered once the reload is over (ClientConn::awaitReload), not
// by answerReadthruCommand.
bool isReadthruReload(const std::vector<std::string_view>& argv);

// The "# Readthru" section, lines ending in CRLF.
std::string readthruInfoSection(Server* server);

// For INFO with no section, "all", "everything", "default" or "readthru": the interceptor that
// appends readthru's section to Redis's reply. nullptr when the section was not asked for.
SlotInterceptor* interceptInfo(Server* server, const std::vector<std::string_view>& argv);

}  // namespace readthru
