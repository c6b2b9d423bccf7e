// `flowmesh result …` and the local configuration verbs (init, deinit, config, info, health).
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <ostream>

#include "cli/context.h"
#include "cli/output.h"
#include "cli/records.h"

namespace flowmesh::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

bool WriteFile(Context& ctx, const std::string& file, const std::string& data) {
  std::error_code ec;
  auto parent = fs::path(file).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) ctx.io.err << "error: cannot write " << file << "\n";
  return static_cast<bool>(out);
}

// The published CLI's view of one config source: {base_url, api_key} (key masked unless
// --show-api-key).
json ConfigMapping(const std::string& url, const std::string& key, bool show) {
  json doc = {{"base_url", url}};
  if (!key.empty()) doc["api_key"] = show ? key : MaskApiKey(key);
  return doc;
}

}  // namespace

int ResultFetch(Context& ctx) {
  const std::string& task_id = ctx.inv.names.at(0);
  auto reply = ctx.Get("/results/" + Enc(task_id));
  if (!reply.ok) return reply.exit_code;
  if (!ctx.inv.output.empty()) {
    // The published layout: DIR/<task_id>/results.json.
    std::string file = (fs::path(ctx.inv.output) / task_id / "results.json").string();
    std::string text = reply.json.is_null() ? reply.response.body : reply.json.dump(2) + "\n";
    if (!WriteFile(ctx, file, text)) return kExitFailure;
    if (ctx.inv.json) {
      ctx.PrintJson({{"task_id", task_id}, {"file", file}});
    } else {
      ctx.io.out << "Wrote result to " << file << "\n";
    }
    return kExitOk;
  }
  if (ctx.inv.json || reply.json.is_null()) {
    ctx.io.out << reply.response.body << "\n";
  } else {
    ctx.PrintJson(reply.json);
  }
  return kExitOk;
}

int ResultDownload(Context& ctx) {
  const std::string& task_id = ctx.inv.names.at(0);
  if (ctx.inv.names.size() > 1) {
    // The published form: TASK FILE... -o DIR saves each file as DIR/<basename>.
    if (ctx.inv.output.empty()) {
      ctx.io.err << "error: --output DIR is required when naming files\n";
      return kExitUnreachable;
    }
    json written = json::array();
    for (size_t i = 1; i < ctx.inv.names.size(); ++i) {
      const std::string& name = ctx.inv.names[i];
      auto reply = ctx.Get("/results/" + Enc(task_id) + "/files/" + http::PercentEncode(name));
      if (!reply.ok) return reply.exit_code;
      std::string file = (fs::path(ctx.inv.output) / fs::path(name).filename()).string();
      if (!WriteFile(ctx, file, reply.response.body)) return kExitFailure;
      written.push_back(file);
      if (!ctx.inv.json) ctx.io.out << "Wrote file to " << file << "\n";
    }
    if (ctx.inv.json) ctx.PrintJson({{"task_id", task_id}, {"files", written}});
    return kExitOk;
  }
  std::string path = "/results/" + Enc(task_id) + "/bundle";
  if (!ctx.inv.include.empty()) path += "?include=" + Enc(ctx.inv.include);
  auto reply = ctx.Get(path);
  if (!reply.ok) return reply.exit_code;
  std::string file = ctx.inv.output.empty() ? task_id + ".tar.gz" : ctx.inv.output;
  if (!WriteFile(ctx, file, reply.response.body)) return kExitFailure;
  if (ctx.inv.json) {
    ctx.PrintJson({{"task_id", task_id}, {"file", file}, {"bytes", reply.response.body.size()}});
  } else {
    ctx.io.out << fmt::format("wrote {} ({} bytes)\n", file, reply.response.body.size());
  }
  return kExitOk;
}

int Init(Context& ctx) {
  const std::string file =
      ctx.inv.config_path.empty() ? ctx.layout.ConfigFile() : ctx.inv.config_path;
  CliConfig config;
  if (!ctx.inv.force) {
    // Without --force a stored API key is kept when none is given.
    auto existing = LoadConfig(file);
    if (existing.ok()) config = *existing;
  }
  config.url = NormalizeUrl(ctx.inv.names.empty() ? "http://localhost:8000" : ctx.inv.names[0]);
  if (!ctx.inv.api_key.empty()) config.api_key = ctx.inv.api_key;
  Status st = SaveConfig(file, config);
  if (!st.ok()) {
    ctx.io.err << "error: " << st.message() << "\n";
    return kExitFailure;
  }
  if (ctx.inv.json) {
    ctx.PrintJson({{"config_file", file},
                   {"url", config.url},
                   {"base_url", config.url},
                   {"api_key", MaskApiKey(config.api_key)}});
  } else {
    ctx.io.out << "Config saved to " << file << " (url " << config.url
               << (config.api_key.empty() ? ", no API key"
                                          : ", API key " + MaskApiKey(config.api_key))
               << ")\n";
  }
  return kExitOk;
}

int Deinit(Context& ctx) {
  std::vector<std::string> files;
  if (!ctx.inv.config_path.empty()) {
    files.push_back(ctx.inv.config_path);
  } else {
    files = {ctx.layout.ConfigFile(), ctx.layout.TomlConfigFile()};
  }
  json deleted = json::array();
  for (const auto& f : files) {
    if (::unlink(f.c_str()) == 0) {
      deleted.push_back(f);
      if (!ctx.inv.json) ctx.io.out << "Deleted config file " << f << "\n";
    }
  }
  if (ctx.inv.json) {
    ctx.PrintJson({{"deleted", deleted}});
  } else if (deleted.empty()) {
    ctx.io.out << "No config file found at " << files.front() << "\n";
  }
  return kExitOk;
}

int ShowConfig(Context& ctx) {
  const Invocation& inv = ctx.inv;
  std::string source = inv.config_source;
  for (char& c : source) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  json doc;
  if (source == "file") {
    // Only the config file; an error when there is none (as the published CLI).
    if (::access(ctx.config_file.c_str(), F_OK) != 0) {
      ctx.io.err << "error: config file not found at " << ctx.config_file << "\n";
      return kExitFailure;
    }
    auto loaded = LoadConfig(ctx.config_file);
    if (!loaded.ok()) {
      ctx.io.err << "error: " << loaded.status().message() << "\n";
      return kExitFailure;
    }
    doc = ConfigMapping(NormalizeUrl(loaded->url), loaded->api_key, inv.show_api_key);
    doc["config_file"] = ctx.config_file;
  } else if (source == "env") {
    std::string url = ctx.env.Get("FLOWMESH_URL");
    if (url.empty()) url = ctx.env.Get("FLOWMESH_BASE_URL");
    if (url.empty()) {
      ctx.io.err << "error: FLOWMESH_BASE_URL environment variable not set (nor FLOWMESH_URL)\n";
      return kExitFailure;
    }
    doc = ConfigMapping(NormalizeUrl(url), ctx.env.Get("FLOWMESH_API_KEY"), inv.show_api_key);
  } else {
    doc = ConfigMapping(ctx.endpoint.url, ctx.endpoint.api_key, inv.show_api_key);
    doc["url"] = ctx.endpoint.url;
    doc["url_source"] = ctx.endpoint.url_source;
    doc["api_key_source"] = ctx.endpoint.api_key_source;
    doc["home"] = ctx.layout.home;
    doc["config_file"] = ctx.config_file;
  }
  doc["source"] = source;
  if (inv.json) {
    ctx.PrintJson(doc);
  } else {
    ctx.io.out << FormatRecord(doc);
  }
  return kExitOk;
}

int Health(Context& ctx) {
  auto reply = ctx.Get("/healthz");
  if (!reply.ok) return reply.exit_code;
  if (ctx.inv.json) {
    ctx.io.out << (reply.response.body.empty() ? "{}" : reply.response.body) << "\n";
  } else {
    ctx.io.out << ctx.endpoint.url << ": healthy";
    if (reply.json.is_object()) {
      for (const auto& [k, v] : reply.json.items())
        ctx.io.out << "  " << k << "=" << DisplayValue(v);
    }
    ctx.io.out << "\n";
  }
  return kExitOk;
}

int Info(Context& ctx) {
  auto health = ctx.Get("/healthz");
  if (!health.ok) return health.exit_code;
  // {"ok": true} (published) or {"status": "ok"} (ours before the API change).
  bool healthy = health.json.is_object() &&
                 (health.json.value("ok", false) || health.json.value("status", "") == "ok");
  std::string server_version = "unknown";
  auto version =
      ctx.client().Request("GET", Context::ApiPath("/system/version"), "", ctx.Headers());
  if (version.ok() && version->status == 200) {
    auto v = json::parse(version->body, nullptr, false);
    if (v.is_object() && v.contains("version")) server_version = DisplayValue(v["version"]);
  }
  json doc = {{"client_version", CliVersion()},
              {"server_version", server_version},
              {"server_healthy", healthy},
              {"url", ctx.endpoint.url}};
  if (ctx.inv.json) {
    ctx.PrintJson(doc);
  } else {
    ctx.io.out << FormatRecord(doc);
  }
  return healthy ? kExitOk : kExitFailure;
}

}  // namespace flowmesh::cli
