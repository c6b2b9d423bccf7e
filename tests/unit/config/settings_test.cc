#include "config/server_settings.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace flowmesh::config {
namespace {

// Parses `args` (after the program name) into fresh server settings.
struct Parsed {
  CLI::App app{"test"};
  SettingsTable table{&app};
  ServerSettings s;
  explicit Parsed(std::vector<std::string> args) {
    DeclareServerSettings(table, &s, "/home/u/.flowmesh");
    std::reverse(args.begin(), args.end());  // CLI11 takes them back to front
    app.parse(args);
  }
};

class EnvGuard {
 public:
  EnvGuard(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~EnvGuard() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(ServerSettings, DefaultsAreTheConfigsOwn) {
  Parsed p({});
  api::ServerAppConfig defaults;
  EXPECT_EQ(p.s.app.port, defaults.port);
  EXPECT_EQ(p.s.app.scheduler.worker_grace_s, defaults.scheduler.worker_grace_s);
  auto cfg = ToServerAppConfig(p.s, "/opt/fm/bin");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->state_dir, "/home/u/.flowmesh/state");
  EXPECT_EQ(cfg->supervisor_binary, "/opt/fm/bin/flowmesh-server");
  EXPECT_TRUE(cfg->auth);
  EXPECT_EQ(cfg->scheduler.dedup_scope, "tenant");
}

TEST(ServerSettings, FlagBeatsEnvironmentBeatsDefault) {
  EnvGuard port("FLOWMESH_PORT", "9100");
  EnvGuard scope("FLOWMESH_DEDUP_SCOPE", "global");
  Parsed from_env({});
  EXPECT_EQ(from_env.s.app.port, 9100);
  EXPECT_EQ(from_env.s.app.scheduler.dedup_scope, "global");
  Parsed from_flag({"--port", "9200"});
  EXPECT_EQ(from_flag.s.app.port, 9200);
}

TEST(ServerSettings, BadValuesAreRefusedWithTheirName) {
  EnvGuard port("FLOWMESH_PORT", "eighty");
  EXPECT_THROW(Parsed({}), CLI::ParseError);
  ::unsetenv("FLOWMESH_PORT");
  EXPECT_THROW(Parsed({"--dedup-scope", "everywhere"}), CLI::ParseError);
  Parsed bad_utility({"--utility", "no_such_weight=1"});
  auto cfg = ToServerAppConfig(bad_utility.s, "/bin");
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("--utility"), std::string::npos);
}

TEST(ServerSettings, SupervisorRoleNeedsTheRootUrl) {
  Parsed p({"--role", "worker"});
  EXPECT_FALSE(ToSupervisorConfig(p.s, "/bin").ok());
  Parsed q({"--role", "worker", "--root-url", "http://10.0.0.1:8000", "--local"});
  auto sc = ToSupervisorConfig(q.s, "/bin");
  ASSERT_TRUE(sc.ok());
  EXPECT_EQ(sc->worker_binary, "/bin/flowmesh-worker");
  EXPECT_TRUE(sc->local);
}

TEST(SettingsTable, MarkdownListsEverySettingOnce) {
  Parsed p({});
  std::string md = p.table.Markdown();
  for (const auto& e : p.table.entries()) {
    EXPECT_NE(md.find("`" + e.flag + "`"), std::string::npos) << e.flag;
  }
  EXPECT_NE(md.find("`FLOWMESH_DEDUP_SCOPE`"), std::string::npos);
  EXPECT_NE(md.find("| `--port` | `FLOWMESH_PORT` | `8000` |"), std::string::npos) << md;
}

}  // namespace
}  // namespace flowmesh::config
