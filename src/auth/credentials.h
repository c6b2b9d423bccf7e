// API key material: generation, hashing and comparison.
//
// A key is "fmk_" + 64 hex digits (256 bits from the OS CSPRNG). Only its SHA-256 is
// stored. A fast hash is the right choice here: slow password hashes (bcrypt, argon2)
// exist to make guessing low-entropy secrets expensive, and a 256-bit random key cannot
// be guessed, so a salted slow hash would only slow every request down.
#pragma once

#include <string>
#include <string_view>

namespace flowmesh::auth {

inline constexpr std::string_view kApiKeyPrefix = "fmk_";

std::string GenerateApiKey();
std::string HashApiKey(std::string_view key);  // lowercase hex SHA-256
// Compares in time independent of where the inputs differ.
bool ConstantTimeEquals(std::string_view a, std::string_view b);
// The first characters of a key, safe to show in listings ("fmk_1a2b3c4d").
std::string KeyDisplayPrefix(std::string_view key);

}  // namespace flowmesh::auth
