#pragma once
// Passwords are kept as their SHA-256, as redis-server keeps them (ACL's #<hash> form), so a
// configured `password_sha256` and a plain `password` compare the same way and a memory dump
// shows no plain text. SHA-256 is written here (FIPS 180-4) rather than taken from a crypto
// library: it is the only primitive readthru needs.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace readthru {

using PasswordHash = std::array<uint8_t, 32>;

PasswordHash sha256(std::string_view data);

// 64 hex digits (either case) to a hash; false for anything else.
bool parsePasswordHash(std::string_view hex, PasswordHash* out);
std::string toHex(const PasswordHash& hash);

// Compares in time independent of where the hashes differ.
bool hashesEqual(const PasswordHash& a, const PasswordHash& b);

}  // namespace readthru
