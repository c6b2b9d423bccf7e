// `flowmesh ssh …`: SSH sessions on workers (the published CLI's verbs). `run` submits an
// `SSHTask` document built as the published SDK builds it; `connect` waits for the task's
// `latest_update.ssh` and execs ssh. The server decides whether it can run such a task; its
// answer is printed as it is. `proxy` needs a WebSocket relay this CLI does not carry yet.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <ostream>
#include <sstream>
#include <thread>

#include "cli/context.h"
#include "cli/host.h"
#include "cli/output.h"
#include "cli/records.h"

namespace flowmesh::cli {
namespace {

using nlohmann::json;

std::string Enc(const std::string& s) { return http::PercentEncode(s); }

std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Whitespace-separated words; single and double quotes group (enough for --command).
std::vector<std::string> SplitWords(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : s) {
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        cur += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(cur);
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(cur);
  return out;
}

// Polls the task until its latest_update carries SSH connection info.
int WaitForSsh(Context& ctx, const std::string& task_id, json* info) {
  for (;;) {
    auto reply = ctx.Get("/tasks/" + Enc(task_id));
    if (!reply.ok) return reply.exit_code;
    std::string status = FieldText(reply.json, {"status"});
    if (status == "FAILED" || status == "CANCELLED") {
      std::string error = FieldText(reply.json, {"error", "last_error"});
      ctx.io.err << "error: task " << task_id << " " << status
                 << (error.empty() ? "" : ": " + error) << "\n";
      return kExitFailure;
    }
    const json& latest =
        reply.json.is_object() ? reply.json.value("latest_update", json()) : json();
    if (latest.is_object() && latest.contains("ssh") && latest["ssh"].is_object()) {
      *info = latest["ssh"];
      return -1;
    }
    if (status == "DONE") {
      ctx.io.err << "error: task " << task_id << " completed without providing SSH info\n";
      return kExitFailure;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(ctx.inv.interval));
  }
}

int ExecSsh(Context& ctx, const std::string& task_id, const json& info) {
  std::string mode = info.value("mode", "direct");
  std::string user = FieldText(info, {"username"});
  if (user.empty()) user = "flowmesh";
  std::string host = FieldText(info, {"host"});
  std::string port = FieldText(info, {"port"});
  if (ctx.inv.ssh_direct) {
    if (!FieldText(info, {"directHost"}).empty()) host = FieldText(info, {"directHost"});
    if (!FieldText(info, {"directPort"}).empty()) port = FieldText(info, {"directPort"});
  }
  if (mode == "proxy" && !ctx.inv.ssh_direct) {
    ctx.io.err << "error: task " << task_id << " publishes its session through the server's "
               << "WebSocket proxy, which this CLI cannot relay yet; try --direct\n";
    return kExitFailure;
  }
  if (host.empty()) {
    ctx.io.err << "error: SSH host is not available\n";
    return kExitFailure;
  }
  std::string ssh = FindExecutable("ssh", ctx.env.Get("PATH"));
  if (ssh.empty()) {
    ctx.io.err << "error: ssh not found in PATH\n";
    return kExitFailure;
  }
  std::vector<std::string> args = {
      "ssh",           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
      "LogLevel=ERROR"};
  if (!port.empty()) args.insert(args.end(), {"-p", port});
  args.push_back(user + "@" + host);
  for (auto& w : SplitWords(ctx.inv.ssh_args)) args.push_back(w);
  std::string line;
  for (const auto& a : args) line += (line.empty() ? "" : " ") + a;
  ctx.io.err << "Connecting: " << line << "\n";
  ctx.io.out.flush();
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(ssh.c_str(), argv.data());
  ctx.io.err << "error: cannot run " << ssh << "\n";
  return kExitFailure;
}

// The published SDK's SSHTask document.
Result<json> BuildSshTask(Context& ctx) {
  const Invocation& inv = ctx.inv;
  bool inferred = inv.ssh_command.empty() && inv.ssh_entrypoint.empty();
  if (inv.ssh_interactive == 1 && !inferred) {
    return InvalidArgument(
        "interactive SSH mode cannot be combined with --command or --entrypoint");
  }
  bool interactive = inv.ssh_interactive >= 0 ? inv.ssh_interactive == 1 : inferred;
  json spec = {{"taskType", "ssh"}};
  if (interactive) {
    if (inv.ssh_mode != "direct" && inv.ssh_mode != "proxy" && inv.ssh_mode != "forward") {
      return InvalidArgument("invalid --mode " + inv.ssh_mode + ": use direct, proxy or forward");
    }
    std::string key;
    if (!inv.ssh_key.empty()) {
      key = ReadTrimmed(inv.ssh_key);
      if (key.empty()) return InvalidArgument("public key not found: " + inv.ssh_key);
    } else {
      for (const char* name : {"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"}) {
        key = ReadTrimmed(ctx.env.Get("HOME") + "/.ssh/" + name);
        if (!key.empty()) break;
      }
      if (key.empty()) {
        return InvalidArgument(
            "interactive SSH tasks need a public key: pass --key or create one "
            "in ~/.ssh");
      }
    }
    spec["interactive"] = true;
    spec["user"] = inv.ssh_user;
    spec["authorizedKeys"] = json::array({key});
    spec["ttlSeconds"] = inv.ssh_ttl;
    spec["idleTimeoutSeconds"] = inv.ssh_idle_timeout;
    spec["accessMode"] = inv.ssh_mode;
  } else {
    spec["interactive"] = false;
    if (!inv.ssh_command.empty()) spec["command"] = SplitWords(inv.ssh_command);
    if (!inv.ssh_entrypoint.empty()) spec["entrypoint"] = SplitWords(inv.ssh_entrypoint);
    spec["ttlSeconds"] = inv.ssh_ttl;
  }
  if (!inv.ssh_image.empty()) spec["image"] = inv.ssh_image;
  json hw = json::object();
  if (inv.ssh_gpu > 0) {
    hw["gpu"] = {{"count", inv.ssh_gpu}};
    if (!inv.ssh_gpu_memory.empty()) hw["gpu"]["memory"] = inv.ssh_gpu_memory;
  }
  if (inv.ssh_cpu > 0) hw["cpu"] = inv.ssh_cpu;
  if (!inv.ssh_memory.empty()) hw["memory"] = inv.ssh_memory;
  if (!hw.empty()) spec["resources"] = {{"hardware", hw}};
  json env = json::object();
  for (const auto& pair : inv.ssh_env) {
    auto eq = pair.find('=');
    if (eq != std::string::npos) env[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  if (!env.empty()) spec["env"] = env;
  spec["output"] = {{"destination", {{"type", "http"}}}};
  json metadata = {{"name", inv.ssh_name}};
  if (!inv.ssh_worker.empty()) {
    metadata["annotations"] = {
        {"schedule_hint", {{"selected_worker", inv.ssh_worker}, {"allow_worker_fallback", false}}}};
  }
  return json{
      {"apiVersion", "flowmesh/v1"}, {"kind", "SSHTask"}, {"metadata", metadata}, {"spec", spec}};
}

}  // namespace

int SshRun(Context& ctx) {
  auto doc = BuildSshTask(ctx);
  if (!doc.ok()) {
    ctx.io.err << "error: " << doc.status().message() << "\n";
    return kExitFailure;
  }
  if (!ctx.inv.json) ctx.io.err << "Submitting SSH task...\n";
  auto reply = ctx.Call("POST", "/workflows", doc->dump(), {{"Content-Type", "text/plain"}}, {422});
  if (!reply.ok) return reply.exit_code;
  if (reply.response.status == 422) {
    ctx.io.err << "error: the server refused the SSHTask document (HTTP 422):\n";
    for (const auto& line : FormatValidationErrors("(ssh task)", reply.response.body)) {
      ctx.io.err << line << "\n";
    }
    return kExitFailure;
  }
  std::string task_id;
  for (const auto& t : reply.json.value("tasks", json::array())) {
    task_id = FieldText(t, {"task_id"});
    if (!task_id.empty()) break;
  }
  if (task_id.empty()) {
    ctx.io.err << "error: no task id in the reply: " << reply.response.body << "\n";
    return kExitFailure;
  }
  if (ctx.inv.json) {
    ctx.io.out << json({{"workflow_id", FieldText(reply.json, {"workflow_id"})},
                        {"task_id", task_id}})
                      .dump()
               << "\n";
  } else {
    ctx.io.err << "Task submitted: " << task_id << "\n";
  }
  bool interactive = ctx.inv.ssh_interactive >= 0
                         ? ctx.inv.ssh_interactive == 1
                         : ctx.inv.ssh_command.empty() && ctx.inv.ssh_entrypoint.empty();
  if (!interactive) return WatchTask(ctx, task_id);
  json info;
  int rc = WaitForSsh(ctx, task_id, &info);
  if (rc >= 0) return rc;
  return ExecSsh(ctx, task_id, info);
}

int SshConnect(Context& ctx) {
  const std::string& task_id = ctx.inv.names.at(0);
  if (!ctx.inv.json) ctx.io.err << "Waiting for SSH session on task " << task_id << "...\n";
  json info;
  int rc = WaitForSsh(ctx, task_id, &info);
  if (rc >= 0) return rc;
  return ExecSsh(ctx, task_id, info);
}

int SshProxy(Context& ctx) {
  // The relay is a WebSocket; ask the route so a missing task or a refusal is reported as
  // the server words it, then say what this build lacks.
  const std::string& task_id = ctx.inv.names.at(0);
  auto res =
      ctx.client().Request("GET", Context::ApiPath("/ssh/tasks/" + Enc(task_id) + "/proxy"), "",
                           ctx.Headers({{"Connection", "Upgrade"},
                                        {"Upgrade", "websocket"},
                                        {"Sec-WebSocket-Version", "13"},
                                        {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}}));
  if (!res.ok()) return ctx.ReportUnreachable(res.status());
  if (res->status != 101) {
    ctx.io.err << FormatHttpError(res->status, res->body) << "\n";
    return kExitFailure;
  }
  ctx.io.err << "error: the server offers the SSH relay, but this flowmesh build cannot relay "
                "WebSocket traffic yet; use `flowmesh ssh connect --direct "
             << task_id << "`\n";
  return kExitFailure;
}

int SshConnections(Context& ctx) {
  const Invocation& inv = ctx.inv;
  std::vector<std::pair<std::string, std::string>> params = {
      {"connection_id", inv.id_filter},     {"task_id", inv.ssh_task_id},
      {"workflow_id", inv.ssh_workflow_id}, {"worker_id", inv.ssh_worker_id},
      {"node_id", inv.ssh_node_id},         {"username", inv.ssh_username},
      {"source_ip", inv.ssh_source_ip}};
  Context::AddRepeated(&params, "access_mode", inv.ssh_access_modes);
  if (inv.ssh_source_port > 0)
    params.emplace_back("source_port", std::to_string(inv.ssh_source_port));
  auto q = ctx.Query(std::move(params));
  if (!q) return kExitUnreachable;
  auto reply = ctx.Get("/ssh/connections" + *q);
  if (!reply.ok) return reply.exit_code;
  reply.json = FilterByAny(reply.json, "access_mode", inv.ssh_access_modes);
  if (inv.json) {
    ctx.PrintJson(reply.json);
    return kExitOk;
  }
  ctx.io.out << FormatRecords(reply.json, {"connection_id", "task_id", "access_mode", "username",
                                           "source_ip", "worker_id"});
  return kExitOk;
}

}  // namespace flowmesh::cli
