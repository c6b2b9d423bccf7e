#include "auth/credentials.h"

#include "common/hash.h"
#include "common/ids.h"

namespace flowmesh::auth {

std::string GenerateApiKey() { return std::string(kApiKeyPrefix) + RandomHex(32); }

std::string HashApiKey(std::string_view key) { return Sha256Hex(key); }

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // The length of a hash is public; only the contents must not leak through timing.
  if (a.size() != b.size()) return false;
  volatile unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = diff | static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

std::string KeyDisplayPrefix(std::string_view key) {
  return std::string(key.substr(0, kApiKeyPrefix.size() + 8));
}

}  // namespace flowmesh::auth
