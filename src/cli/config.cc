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

namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string TrimSpace(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

std::string TomlQuote(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<CliConfig> ParseTomlConfig(const std::string& text) {
  CliConfig config;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  bool in_table = false;
  while (std::getline(in, line)) {
    ++n;
    line = TrimSpace(line);
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      in_table = true;  // only top-level keys are ours
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) {
      return InvalidArgument("line " + std::to_string(n) + ": expected key = \"value\"");
    }
    std::string key = TrimSpace(line.substr(0, eq));
    std::string raw = TrimSpace(line.substr(eq + 1));
    std::string value;
    if (raw.size() >= 2 && (raw[0] == '"' || raw[0] == '\'')) {
      char quote = raw[0];
      size_t i = 1;
      for (; i < raw.size() && raw[i] != quote; ++i) {
        if (quote == '"' && raw[i] == '\\' && i + 1 < raw.size()) ++i;
        value += raw[i];
      }
      if (i >= raw.size()) {
        return InvalidArgument("line " + std::to_string(n) + ": unterminated string");
      }
    } else {
      continue;  // not a string: not one of our keys
    }
    if (in_table) continue;
    if (key == "base_url" || key == "url") config.url = value;
    if (key == "api_key") config.api_key = value;
  }
  return config;
}

Result<CliConfig> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return CliConfig{};
  std::stringstream ss;
  ss << in.rdbuf();
  if (EndsWith(path, ".toml")) {
    auto parsed = ParseTomlConfig(ss.str());
    if (!parsed.ok()) return InvalidArgument(path + ": " + parsed.status().message());
    return parsed;
  }
  auto doc = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InvalidArgument(path + " is not a JSON object; rewrite it with `flowmesh init URL`");
  }
  CliConfig config;
  for (const char* key : {"url", "base_url"}) {
    auto it = doc.find(key);
    if (config.url.empty() && it != doc.end() && it->is_string()) config.url = *it;
  }
  if (auto it = doc.find("api_key"); it != doc.end() && it->is_string()) config.api_key = *it;
  return config;
}

Status SaveConfig(const std::string& path, const CliConfig& config) {
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) return Internal("cannot create " + parent.string() + ": " + ec.message());
  std::string text;
  if (EndsWith(path, ".toml")) {
    text = "base_url = " + TomlQuote(config.url) + "\n";
    if (!config.api_key.empty()) text += "api_key = " + TomlQuote(config.api_key) + "\n";
  } else {
    nlohmann::json doc = {{"url", config.url}, {"api_key", config.api_key}};
    text = doc.dump(2) + "\n";
  }
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
  return key.substr(0, 4) + std::string(key.size() - 8, '*') + key.substr(key.size() - 4);
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
    ep.api_key_source = "flag";
  } else if (set(env_key)) {
    ep.api_key = env_key;
    ep.api_key_source = "env";
  } else if (!file.api_key.empty()) {
    ep.api_key = file.api_key;
    ep.api_key_source = "config";
  }
  return ep;
}

}  // namespace flowmesh::cli
