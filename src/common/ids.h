// Resource identifiers: a kind prefix plus 128 random bits in lowercase base32
// ("wfl-…", "tsk-…", "wkr-…", "nod-…", "cmd-…", "att-…").
#pragma once

#include <string>
#include <string_view>

namespace flowmesh {

std::string NewId(std::string_view prefix);
// Random bytes from the OS CSPRNG, hex-encoded.
std::string RandomHex(size_t bytes);

}  // namespace flowmesh
