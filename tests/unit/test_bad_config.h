#pragma once
// Config files that must be refused, each with its exact error: "<path>:<line>:<col>: ...".

#include <span>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "proxy/config.h"
#include "tests/unit/test_temp_dir.h"

namespace readthru::test {

struct BadConfig {
  std::string text;
  std::string error;  // after "<path>:"
};

// Writes each text (followed by `suffix`, e.g. a backend the cases name) to a file and checks
// that loading it fails with exactly its error.
inline void checkRefused(std::span<const BadConfig> cases, std::string_view suffix = {}) {
  TempDir dir;
  for (const BadConfig& c : cases) {
    std::string text = c.text + std::string(suffix);
    CAPTURE(text);
    std::string path = dir.write("bad.toml", text);
    Config config;
    std::string error;
    CHECK_FALSE(loadConfigFile(path, &config, &error));
    CHECK(error == path + ":" + c.error);
  }
}

}  // namespace readthru::test
