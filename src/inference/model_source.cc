#include "inference/model_source.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "common/hash.h"
#include "spec/operator.h"

namespace flowmesh::inference {
namespace fs = std::filesystem;
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Picks a .gguf from `names`: the named file, else one whose name holds the preferred
// quantisation, else Q4_K_M, Q8_0, F16, else the first by name.
std::string PickGguf(std::vector<std::string> names, const std::string& preference) {
  std::sort(names.begin(), names.end());
  names.erase(std::remove_if(names.begin(), names.end(),
                             [](const std::string& n) { return !EndsWith(Lower(n), ".gguf"); }),
              names.end());
  if (names.empty()) return "";
  if (!preference.empty()) {
    for (const auto& n : names) {
      if (n == preference || fs::path(n).filename() == preference) return n;
    }
    for (const auto& n : names) {
      if (Lower(n).find(Lower(preference)) != std::string::npos) return n;
    }
    return "";
  }
  for (const char* q : {"q4_k_m", "q8_0", "f16"}) {
    for (const auto& n : names) {
      if (Lower(n).find(q) != std::string::npos) return n;
    }
  }
  return names.front();
}

std::string ReadSmallFile(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  std::getline(in, s);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// --- HTTPS downloads (libcurl, verified TLS) ---

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};

struct Headers {
  std::string etag;  // X-Linked-Etag or ETag, quotes removed
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  auto* h = static_cast<Headers*>(user);
  std::string lower = Lower(line);
  auto take = [&](const char* name) {
    if (lower.rfind(name, 0) != 0) return false;
    std::string v = line.substr(std::strlen(name));
    v.erase(std::remove_if(v.begin(), v.end(), [](char c) { return c == '"' || std::isspace(static_cast<unsigned char>(c)); }),
            v.end());
    if (v.rfind("W/", 0) == 0) v = v.substr(2);
    h->etag = v;
    return true;
  };
  if (!take("x-linked-etag:") && h->etag.empty()) take("etag:");
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  return std::fwrite(data, size, n, static_cast<FILE*>(user)) * size;
}

// Downloads `url` to `dest` through `dest`.part (resumed when present). `sha256`: the
// expected digest ("" → the server's sha256 ETag when it looks like one).
Status Download(const std::string& url, const fs::path& dest, std::string sha256) {
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  fs::path part = dest;
  part += ".part";
  curl_off_t have = fs::exists(part, ec) ? static_cast<curl_off_t>(fs::file_size(part, ec)) : 0;
  FILE* f = std::fopen(part.c_str(), "ab");
  if (!f) return Internal("cannot write " + part.string());
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  Headers headers;
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl.get(), CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 20L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl.get(), CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &headers);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, f);
  if (have > 0) curl_easy_setopt(curl.get(), CURLOPT_RESUME_FROM_LARGE, have);
  CURLcode rc = curl_easy_perform(curl.get());
  long code = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &code);
  std::fclose(f);
  if (rc != CURLE_OK) {
    if (code == 416) fs::remove(part, ec);  // stale partial file: start over next time
    return Unavailable("download of " + url + " failed: " + (error[0] ? error : curl_easy_strerror(rc)));
  }
  if (have > 0 && code == 200) {
    // The server ignored the range: the file holds old bytes then the whole body.
    fs::remove(part, ec);
    return Unavailable("download of " + url + " could not be resumed; retry");
  }
  if (sha256.empty() && headers.etag.size() == 64) sha256 = Lower(headers.etag);
  if (!sha256.empty()) {
    Sha256 hash;
    std::ifstream in(part, std::ios::binary);
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      hash.Update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
    }
    std::string got = hash.FinishHex();
    if (got != Lower(sha256)) {
      fs::remove(part, ec);
      return FailedPrecondition("download of " + url + " has sha256 " + got + ", expected " + sha256);
    }
  }
  fs::rename(part, dest, ec);
  if (ec) return Internal("cannot move " + part.string() + ": " + ec.message());
  return Status::Ok();
}

Result<std::string> HttpGetSmall(const std::string& url) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  std::string body;
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl.get(), CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION,
                   +[](char* d, size_t s, size_t n, void* u) -> size_t {
                     auto* b = static_cast<std::string*>(u);
                     if (b->size() > (8u << 20)) return 0;
                     b->append(d, s * n);
                     return s * n;
                   });
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(curl.get());
  if (rc != CURLE_OK) return Unavailable(url + ": " + (error[0] ? error : curl_easy_strerror(rc)));
  return body;
}

Result<std::string> ResolveHuggingFace(const std::string& id, const std::string& revision_in,
                                       const std::string& file, const ModelSourceConfig& config) {
  if (id.empty() || id.find("..") != std::string::npos || id.find('/') == std::string::npos ||
      id.front() == '/') {
    return InvalidArgument("model.source.identifier must be 'org/name' for huggingface sources");
  }
  std::string revision = revision_in.empty() ? "main" : revision_in;
  std::string folder = "models--";
  for (size_t i = 0; i < id.size(); ++i) folder += id[i] == '/' ? std::string("--") : std::string(1, id[i]);
  fs::path repo = fs::path(config.hf_hub_dir) / folder;
  std::error_code ec;
  std::vector<fs::path> snapshots;
  std::string commit = ReadSmallFile(repo / "refs" / revision);
  if (!commit.empty()) snapshots.push_back(repo / "snapshots" / commit);
  snapshots.push_back(repo / "snapshots" / revision);
  if (revision_in.empty() && fs::is_directory(repo / "snapshots", ec)) {
    for (const auto& entry : fs::directory_iterator(repo / "snapshots", ec)) snapshots.push_back(entry.path());
  }
  for (const auto& snap : snapshots) {
    if (!fs::is_directory(snap, ec)) continue;
    std::vector<std::string> names;
    for (auto it = fs::recursive_directory_iterator(snap, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file(ec) || it->is_symlink(ec)) names.push_back(fs::relative(it->path(), snap, ec).string());
    }
    std::string pick = PickGguf(names, file);
    if (!pick.empty()) return (snap / pick).string();
  }
  std::string looked = "looked in " + repo.string() + "/snapshots";
  if (!config.allow_download) {
    return FailedPrecondition("model huggingface:" + id + " not found (" + looked + "; downloads are off)");
  }
  // The hub's file list for that revision, then the chosen file into the cache layout.
  auto listing = HttpGetSmall(config.hf_endpoint + "/api/models/" + id + "/revision/" + revision);
  if (!listing.ok()) {
    return FailedPrecondition("model huggingface:" + id + " not found (" + looked + "; the hub is unreachable: " +
                              listing.status().message() + ")");
  }
  auto json = nlohmann::json::parse(*listing, nullptr, false);
  std::vector<std::string> names;
  std::string sha = json.is_object() && json.value("sha", nlohmann::json()).is_string() ? json["sha"].get<std::string>() : "";
  if (json.is_object() && json.contains("siblings") && json["siblings"].is_array()) {
    for (const auto& s : json["siblings"]) {
      if (s.is_object() && s.value("rfilename", nlohmann::json()).is_string()) names.push_back(s["rfilename"]);
    }
  }
  std::string pick = PickGguf(names, file);
  if (pick.empty() || sha.empty() || pick.find("..") != std::string::npos) {
    return FailedPrecondition("model huggingface:" + id + " has no matching .gguf file (" + looked +
                              " and at " + config.hf_endpoint + ")");
  }
  fs::path dest = repo / "snapshots" / sha / pick;
  FM_RETURN_IF_ERROR(Download(config.hf_endpoint + "/" + id + "/resolve/" + sha + "/" + pick, dest, ""));
  fs::create_directories(repo / "refs", ec);
  std::ofstream(repo / "refs" / revision) << sha;
  return dest.string();
}

}  // namespace

ModelSourceConfig ModelSourceConfig::FromEnvironment() {
  ModelSourceConfig c;
  std::string home = Env("HOME");
  if (!Env("HF_HUB_CACHE").empty()) {
    c.hf_hub_dir = Env("HF_HUB_CACHE");
  } else if (!Env("HF_HOME").empty()) {
    c.hf_hub_dir = Env("HF_HOME") + "/hub";
  } else {
    c.hf_hub_dir = (home.empty() ? std::string("/tmp") : home) + "/.cache/huggingface/hub";
  }
  c.url_cache_dir = !Env("FLOWMESH_MODEL_CACHE").empty()
                        ? Env("FLOWMESH_MODEL_CACHE")
                        : (home.empty() ? std::string("/tmp") : home) + "/.cache/flowmesh/models";
  if (!Env("HF_ENDPOINT").empty()) c.hf_endpoint = Env("HF_ENDPOINT");
  c.allow_download = Env("FLOWMESH_OFFLINE").empty() && Env("HF_HUB_OFFLINE").empty();
  return c;
}

Result<std::string> ResolveModelPath(const nlohmann::json& task_spec, const ModelSourceConfig& config) {
  nlohmann::json id = spec::ModelIdentity(task_spec);
  std::string type = id["type"].get<std::string>();
  std::string identifier = id["identifier"].get<std::string>();
  if (identifier.empty()) return InvalidArgument("the task names no model (model.source.identifier)");
  if (type.empty() || type == "local") {
    std::error_code ec;
    fs::path p(identifier);
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> names;
      for (const auto& e : fs::directory_iterator(p, ec)) names.push_back(e.path().filename().string());
      std::string pick = PickGguf(names, id["file"].get<std::string>());
      if (pick.empty()) return FailedPrecondition("model not found: no .gguf file in directory " + identifier);
      return (p / pick).string();
    }
    if (!fs::is_regular_file(p, ec)) {
      return FailedPrecondition("model not found: looked for the local file " + identifier);
    }
    return identifier;
  }
  if (type == "huggingface" || type == "hf") {
    return ResolveHuggingFace(identifier, id["revision"].get<std::string>(), id["file"].get<std::string>(), config);
  }
  if (type == "url") {
    if (identifier.rfind("https://", 0) != 0) return InvalidArgument("model.source url must be https://");
    fs::path dest = fs::path(config.url_cache_dir) / (Sha256Hex(identifier).substr(0, 32) + ".gguf");
    std::error_code ec;
    if (fs::is_regular_file(dest, ec)) return dest.string();
    if (!config.allow_download) {
      return FailedPrecondition("model " + identifier + " not found (looked in " + dest.string() + "; downloads are off)");
    }
    std::string sha;
    const auto& source = task_spec["model"]["source"];
    if (source.is_object() && source.value("sha256", nlohmann::json()).is_string()) sha = source["sha256"];
    Status s = Download(identifier, dest, sha);
    if (!s.ok()) {
      return FailedPrecondition("model " + identifier + " not found (looked in " + dest.string() + "; " + s.message() + ")");
    }
    return dest.string();
  }
  return InvalidArgument("model.source.type '" + type + "' is not one of local, huggingface, url");
}

}  // namespace flowmesh::inference
