#include "auth/secret_store.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>

#include "common/clock.h"
#include "state/sqlite_db.h"

namespace flowmesh::auth {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

const unsigned char* Bytes(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Reads the key file, or creates it (0600, O_EXCL so two servers never write two keys).
Result<std::string> LoadOrCreateKey(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    std::string key(kKeyBytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), kKeyBytes) != 1) {
      return Internal("secrets: no random bytes for the key");
    }
    int wfd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (wfd >= 0) {
      bool ok = ::write(wfd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
                ::fsync(wfd) == 0;
      ::close(wfd);
      if (!ok) return Internal("secrets: cannot write the key file " + path);
      return key;
    }
    if (errno != EEXIST) return Internal("secrets: cannot create the key file " + path);
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0) return Internal("secrets: cannot open the key file " + path);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
    ::fchmod(fd, 0600);  // a key readable by others is narrowed, not refused
  }
  std::string key(kKeyBytes + 1, '\0');
  ssize_t n = ::read(fd, key.data(), key.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(kKeyBytes)) {
    return FailedPrecondition("secrets: the key file " + path + " is not 32 bytes");
  }
  key.resize(kKeyBytes);
  return key;
}

std::string Aad(const std::string& org_id, const std::string& name) {
  return org_id + "/" + name;
}

}  // namespace

Result<std::string> SealSecret(const std::string& key, const std::string& aad,
                               const std::string& plaintext) {
  if (key.size() != kKeyBytes) return Internal("secrets: bad key size");
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(o, kNonceBytes) != 1) return Internal("secrets: no random bytes");
  CipherCtx c;
  int len = 0;
  bool ok = c.ctx != nullptr &&
            EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, Bytes(key), o) == 1 &&
            EVP_EncryptUpdate(c.ctx, nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(c.ctx, o + kNonceBytes, &len, Bytes(plaintext),
                              static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(c.ctx, o + kNonceBytes + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes,
                                o + kNonceBytes + plaintext.size()) == 1;
  if (!ok) return Internal("secrets: encryption failed");
  return out;
}

Result<std::string> OpenSecret(const std::string& key, const std::string& aad,
                               const std::string& sealed) {
  if (key.size() != kKeyBytes) return Internal("secrets: bad key size");
  if (sealed.size() < kNonceBytes + kTagBytes) return Internal("secrets: sealed value too short");
  size_t n = sealed.size() - kNonceBytes - kTagBytes;
  std::string plain(n, '\0');
  std::string tag = sealed.substr(kNonceBytes + n);
  CipherCtx c;
  int len = 0;
  bool ok = c.ctx != nullptr &&
            EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, Bytes(key), Bytes(sealed)) == 1 &&
            EVP_DecryptUpdate(c.ctx, nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(c.ctx, reinterpret_cast<unsigned char*>(plain.data()), &len,
                              Bytes(sealed) + kNonceBytes, static_cast<int>(n)) == 1 &&
            EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
            EVP_DecryptFinal_ex(c.ctx, reinterpret_cast<unsigned char*>(plain.data()) + len,
                                &len) == 1;
  if (!ok) return Internal("secrets: a stored value does not open (wrong key or tampered)");
  return plain;
}

Result<std::unique_ptr<SecretStore>> SecretStore::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  FM_ASSIGN_OR_RETURN(std::string key, LoadOrCreateKey(dir + "/secrets.key"));
  state::ConnectionOptions options;
  options.writer = true;
  FM_ASSIGN_OR_RETURN(auto db, state::Connection::Open(dir + "/secrets.db", options));
  FM_RETURN_IF_ERROR(db->Exec(
      "CREATE TABLE IF NOT EXISTS secrets ("
      " org_id TEXT NOT NULL, name TEXT NOT NULL, sealed BLOB NOT NULL,"
      " created_at REAL NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (org_id, name))"));
  ::chmod((dir + "/secrets.db").c_str(), 0600);
  return std::unique_ptr<SecretStore>(new SecretStore(std::move(db), std::move(key)));
}

SecretStore::SecretStore(std::unique_ptr<state::Connection> db, std::string key)
    : db_(std::move(db)), key_(std::move(key)) {}

SecretStore::~SecretStore() = default;

bool SecretStore::ValidName(const std::string& name) {
  if (name.empty() || name.size() > 128 || name.front() == ' ' || name.back() == ' ') return false;
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    // n8n credential names ("OpenAi account") are kept as they are; what would break a
    // `{{credential:NAME}}` placeholder or a URL path is not.
    if (c < 0x20 || c == 0x7f || ch == '{' || ch == '}' || ch == '$' || ch == '/' || ch == '\\') {
      return false;
    }
  }
  return true;
}

Status SecretStore::Set(const std::string& org_id, const std::string& name,
                        const std::string& value) {
  if (!ValidName(name)) {
    return InvalidArgument("a secret name is 1-128 printable characters without { } $ / \\ or outer spaces");
  }
  if (value.empty()) return InvalidArgument("a secret's value must not be empty");
  if (value.size() > kMaxValueBytes) return InvalidArgument("a secret's value exceeds 64 KiB");
  FM_ASSIGN_OR_RETURN(std::string sealed, SealSecret(key_, Aad(org_id, name), value));
  double now = WallSeconds();
  MutexLock lock(mu_);
  FM_ASSIGN_OR_RETURN(
      auto stmt,
      db_->Prepare("INSERT INTO secrets (org_id, name, sealed, created_at, updated_at) "
                   "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (org_id, name) DO UPDATE SET "
                   "sealed = excluded.sealed, updated_at = excluded.updated_at"));
  return stmt.Bind(1, org_id).Bind(2, name).BindBlob(3, sealed).Bind(4, now).Run();
}

Result<std::vector<SecretInfo>> SecretStore::List(const std::string& org_id) {
  MutexLock lock(mu_);
  FM_ASSIGN_OR_RETURN(auto stmt, db_->Prepare("SELECT name, created_at, updated_at FROM secrets "
                                              "WHERE org_id = ?1 ORDER BY name"));
  stmt.Bind(1, org_id);
  return state::CollectRows<SecretInfo>(stmt, [](state::Statement& s) {
    return SecretInfo{s.Text(0), s.Double(1), s.Double(2)};
  });
}

Status SecretStore::Delete(const std::string& org_id, const std::string& name) {
  MutexLock lock(mu_);
  FM_ASSIGN_OR_RETURN(auto stmt,
                      db_->Prepare("DELETE FROM secrets WHERE org_id = ?1 AND name = ?2"));
  FM_RETURN_IF_ERROR(stmt.Bind(1, org_id).Bind(2, name).Run());
  if (db_->Changes() == 0) return NotFound("no secret named '" + name + "'");
  return Status::Ok();
}

Result<std::string> SecretStore::Get(const std::string& org_id, const std::string& name) {
  std::string sealed;
  {
    MutexLock lock(mu_);
    FM_ASSIGN_OR_RETURN(
        auto stmt, db_->Prepare("SELECT sealed FROM secrets WHERE org_id = ?1 AND name = ?2"));
    stmt.Bind(1, org_id).Bind(2, name);
    FM_ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return NotFound("no secret named '" + name + "'");
    sealed = stmt.Blob(0);
  }
  return OpenSecret(key_, Aad(org_id, name), sealed);
}

}  // namespace flowmesh::auth
