// SHA-256 helpers (OpenSSL EVP), hex-encoded lowercase.
#pragma once

#include <string>
#include <string_view>

namespace flowmesh {

std::string Sha256Hex(std::string_view data);

// Incremental SHA-256 for streams and files.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data);
  std::string FinishHex();

 private:
  void* ctx_;  // EVP_MD_CTX*, kept opaque so OpenSSL headers stay out of ours.
};

}  // namespace flowmesh
