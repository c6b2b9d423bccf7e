#include "cli/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace flowmesh::cli {

std::string ResolveHome(const char* flowmesh_home_env, const char* home_env) {
  if (flowmesh_home_env != nullptr && *flowmesh_home_env != '\0') return flowmesh_home_env;
  std::string home = (home_env != nullptr && *home_env != '\0') ? home_env : ".";
  return home + "/.flowmesh";
}

Result<CliConfig> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return CliConfig{};
  std::stringstream ss;
  ss << in.rdbuf();
  auto doc = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgument(path + " is not a JSON object; rewrite it with `flowmesh init URL`");
  }
  CliConfig config;
  if (auto it = doc.find("url"); it != doc.end() && it->is_string()) config.url = *it;
  if (auto it = doc.find("api_key"); it != doc.end() && it->is_string()) config.api_key = *it;
  return config;
}

Status SaveConfig(const std::string& path, const CliConfig& config) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Internal("cannot create " + parent.string() + ": " + ec.message());
  nlohmann::json doc = {{"url", config.url}, {"api_key", config.api_key}};
  std::string text = doc.dump(2) + "\n";
  std::string tmp = path + ".tmp";
  // Create with 0600 from the start so the key is never readable by others.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot write " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return Internal("cannot write " + tmp + ": " + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

std::string MaskApiKey(const std::string& key) {
  if (key.empty()) return "";
  if (key.size() <= 8) return std::string(key.size(), '*');
  return key.substr(0, 4) + "…" + key.substr(key.size() - 4);
}

std::string NormalizeUrl(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (!url.empty() && url.find("://") == std::string::npos) url = "http://" + url;
  return url;
}

Endpoint ResolveEndpoint(const std::string& flag_url, const std::string& flag_key,
                         const char* env_url, const char* env_key, const CliConfig& file,
                         const std::string& stack_url) {
  Endpoint ep;
  auto set = [](const char* v) { return v != nullptr && *v != '\0'; };
  if (!flag_url.empty()) {
    ep.url = flag_url;
    ep.url_source = "flag";
  } else if (set(env_url)) {
    ep.url = env_url;
    ep.url_source = "env";
  } else if (!file.url.empty()) {
    ep.url = file.url;
    ep.url_source = "config";
  } else if (!stack_url.empty()) {
    ep.url = stack_url;
    ep.url_source = "stack";
  } else {
    ep.url = kDefaultUrl;
    ep.url_source = "default";
  }
  ep.url = NormalizeUrl(ep.url);
  if (!flag_key.empty()) {
    ep.api_key = flag_key;
  } else if (set(env_key)) {
    ep.api_key = env_key;
  } else {
    ep.api_key = file.api_key;
  }
  return ep;
}

}  // namespace flowmesh::cli
