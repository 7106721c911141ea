#pragma once
// Config files that must be refused, each with its exact error: "<path>:<line>:<col>: ...".

#include <span>
#include <string>

#include <doctest/doctest.h>

#include "proxy/config.h"
#include "tests/unit/test_temp_dir.h"

namespace readthru::test {

struct BadConfig {
  std::string text;
  std::string error;  // after "<path>:"
};

// Writes each text to a file and checks that loading it fails with exactly its error.
inline void checkRefused(std::span<const BadConfig> cases) {
  TempDir dir;
  for (const BadConfig& c : cases) {
    CAPTURE(c.text);
    std::string path = dir.write("bad.toml", c.text);
    Config config;
    std::string error;
    CHECK_FALSE(loadConfigFile(path, &config, &error));
    CHECK(error == path + ":" + c.error);
  }
}

}  // namespace readthru::test
