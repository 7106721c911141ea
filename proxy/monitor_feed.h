#pragma once
// MonitorFeed: MONITOR lines for the commands readthru answers itself.
// A MONITOR client sees what its upstream Redis executes; AUTH, HELLO, CLIENT SETNAME and the
// other commands readthru answers never reach Redis, so readthru writes their lines to every
// monitoring client itself, in redis-server's format and with its redactions (AUTH's arguments,
// HELLO's AUTH username and password), and skips the commands Redis keeps out of MONITOR
// (admin or skip_monitor in the command table).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "resp/command_table.h"

namespace readthru {

class ClientConn;

class MonitorFeed {
 public:
  // A client whose MONITOR Redis accepted; removed when it leaves MONITOR or closes.
  void add(ClientConn* c);
  void remove(ClientConn* c);
  bool empty() const { return monitors_.empty(); }

  // Sends the line of `argv`, run by a client on `db` from `addr` ("ip:port", "[ip6]:port" or
  // "unix:/path"), to every monitoring client, unless Redis would not show `info`'s command.
  void feed(const resp::CommandInfo* info, const std::vector<std::string_view>& argv, int64_t db,
            std::string_view addr);

  // The MONITOR line, "+<seconds>.<micros> [<db> <addr>] "arg" ...\r\n", arguments quoted as
  // Redis quotes them and the secrets AUTH and HELLO carry replaced by "(redacted)".
  static std::string formatLine(uint64_t unix_us, int64_t db, std::string_view addr,
                                const std::vector<std::string_view>& argv);

  // Whether Redis shows `info`'s command (for a container, the subcommand argv names) in MONITOR.
  static bool shown(const resp::CommandInfo* info, const std::vector<std::string_view>& argv);

 private:
  std::vector<ClientConn*> monitors_;
};

}  // namespace readthru
