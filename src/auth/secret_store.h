// Per-organisation named secrets (API credentials), encrypted at rest.
//
// Values are sealed with AES-256-GCM (OpenSSL) under a 32-byte key kept in a file of mode
// 0600 next to the database (created on first use); every value has its own random
// 96-bit nonce, and "org_id/name" is bound as additional data so that a sealed value
// copied to another row does not open. Rows live in their own SQLite file (`secrets.db`),
// so the main store's schema is untouched and a copy of the state database alone reveals
// nothing. Values never appear in a log line or a Status message.
//
// Thread-safe: one mutex serialises every call (secrets are read once per task attempt).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace flowmesh::state {
class Connection;
}

namespace flowmesh::auth {

struct SecretInfo {
  std::string name;
  double created_at = 0;
  double updated_at = 0;
};

class SecretStore {
 public:
  // Opens (creating when missing) `dir`/secrets.db and the key file `dir`/secrets.key.
  static Result<std::unique_ptr<SecretStore>> Open(const std::string& dir);
  ~SecretStore();
  SecretStore(const SecretStore&) = delete;
  SecretStore& operator=(const SecretStore&) = delete;

  // Names: 1-128 printable characters, none of { } $ / \, no outer spaces (n8n credential
  // names such as "OpenAi account" are valid).
  static bool ValidName(const std::string& name);

  // Creates or replaces. InvalidArgument for a bad name or an empty / oversized value.
  Status Set(const std::string& org_id, const std::string& name, const std::string& value);
  // Names only, sorted.
  Result<std::vector<SecretInfo>> List(const std::string& org_id);
  // NotFound when absent.
  Status Delete(const std::string& org_id, const std::string& name);
  // The plaintext. NotFound when absent; Internal when the row does not open.
  Result<std::string> Get(const std::string& org_id, const std::string& name);

  static constexpr size_t kMaxValueBytes = 64 << 10;

 private:
  SecretStore(std::unique_ptr<state::Connection> db, std::string key);

  Mutex mu_;
  std::unique_ptr<state::Connection> db_ FM_GUARDED_BY(mu_);
  const std::string key_;  // 32 raw bytes
};

// AES-256-GCM: nonce(12) || ciphertext || tag(16). Exposed for tests.
Result<std::string> SealSecret(const std::string& key, const std::string& aad,
                               const std::string& plaintext);
Result<std::string> OpenSecret(const std::string& key, const std::string& aad,
                               const std::string& sealed);

}  // namespace flowmesh::auth
