#include <gtest/gtest.h>

#include <fstream>

#include "auth/authenticator.h"
#include "auth/credentials.h"
#include "auth/plugin_host.h"
#include "auth/scopes.h"
#include "support/temp_dir.h"

namespace flowmesh::auth {
namespace {

using testing::TempDir;

TEST(ScopesTest, ParsesKindActionAndWildcards) {
  auto s = ScopeSet::Parse({"workflow:read", "task:*"});
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->Allows(Kind::kWorkflow, Action::kRead));
  EXPECT_FALSE(s->Allows(Kind::kWorkflow, Action::kWrite));
  EXPECT_TRUE(s->Allows(Kind::kTask, Action::kCancel));
  EXPECT_FALSE(s->Allows(Kind::kResult, Action::kRead));

  auto admin = ScopeSet::Parse({"*:admin"});
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE(admin->Allows(Kind::kSystem, Action::kRead));  // admin implies the rest
  EXPECT_TRUE(admin->Covers(*s));
  EXPECT_FALSE(s->Covers(*admin));
  EXPECT_TRUE(ScopeSet::Parse({"*"})->Covers(*admin));
}

TEST(ScopesTest, RejectsUnknownScopesNamingThem) {
  auto bad = ScopeSet::Parse({"workflow:read", "wrokflow:read"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("wrokflow"), std::string::npos);
  EXPECT_FALSE(ScopeSet::Parse({"workflow"}).ok());
  EXPECT_FALSE(ScopeSet::Parse({"workflow:fly"}).ok());
  EXPECT_EQ(ScopeSet::Split("a:b, c:d\te:f").size(), 3u);
}

TEST(CredentialsTest, KeysAreRandomPrefixedAndHashed) {
  std::string a = GenerateApiKey(), b = GenerateApiKey();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("fmk_", 0), 0u);
  EXPECT_EQ(a.size(), 4u + 64u);  // 256 bits in hex
  EXPECT_EQ(HashApiKey(a).size(), 64u);
  EXPECT_NE(HashApiKey(a), a);
  EXPECT_EQ(HashApiKey(a), HashApiKey(a));
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_EQ(KeyDisplayPrefix(a).size(), 12u);
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state::StoreConfig c;
    c.path = dir_ / "state.db";
    auto store = state::Store::Open(c);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  std::unique_ptr<Authenticator> Make(const std::string& bootstrap_key) {
    AuthenticatorConfig c;
    c.bootstrap_key_sha256 = bootstrap_key.empty() ? "" : HashApiKey(bootstrap_key);
    c.service_token = "service-secret";
    auto a = Authenticator::Create(c, store_.get(), nullptr);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? std::move(a).value() : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<state::Store> store_;
};

TEST_F(AuthenticatorTest, BootstrapKeyIsAdminOfTheDefaultOrg) {
  std::string admin = GenerateApiKey();
  auto a = Make(admin);
  auto p = a->Authenticate("Bearer " + admin);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->org_id, state::kDefaultOrg);
  EXPECT_TRUE(p->Allows(Kind::kSystem, Action::kAdmin));
  EXPECT_FALSE(p->all_orgs);
  // A second start with the same key does not add another.
  a.reset();
  auto again = Make(admin);
  EXPECT_EQ(again->ListKeys("").size(), 1u);
}

TEST_F(AuthenticatorTest, RefusesMissingMalformedAndUnknownTokens) {
  auto a = Make(GenerateApiKey());
  for (const char* header : {"", "Basic abc", "Bearer ", "Bearer fmk_nope"}) {
    auto p = a->Authenticate(header);
    ASSERT_FALSE(p.ok()) << header;
    EXPECT_EQ(p.status().code(), StatusCode::kUnauthenticated);
    EXPECT_EQ(p.status().message().find("fmk_nope"), std::string::npos);  // never echoes it
  }
}

TEST_F(AuthenticatorTest, ServicePrincipalSeesEveryOrgButCannotAdminister) {
  auto a = Make(GenerateApiKey());
  auto p = a->AuthenticateToken("service-secret");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->all_orgs);
  EXPECT_TRUE(p->Allows(Kind::kResult, Action::kWrite));
  EXPECT_FALSE(p->Allows(Kind::kSystem, Action::kAdmin));
  EXPECT_FALSE(p->Allows(Kind::kWorkflow, Action::kRead));
}

TEST_F(AuthenticatorTest, KeysAreScopedAndRevokedAtOnceAndDurably) {
  std::string admin_key = GenerateApiKey();
  auto a = Make(admin_key);
  auto admin = a->Authenticate("Bearer " + admin_key);
  ASSERT_TRUE(admin.ok());
  auto org = a->CreateOrg("acme", OrgPolicy{});
  ASSERT_TRUE(org.ok()) << org.status().ToString();
  EXPECT_EQ(a->CreateOrg("acme", OrgPolicy{}).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(a->CreateOrg("bad name!", OrgPolicy{}).status().code(), StatusCode::kInvalidArgument);

  auto key = a->CreateKey(*admin, "acme", "usr-alice", "ci", {"workflow:read"});
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  auto alice = a->Authenticate("Bearer " + key->key);
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->org_id, org->org_id);
  EXPECT_EQ(alice->principal_id, "usr-alice");
  EXPECT_TRUE(a->Require(*alice, Kind::kWorkflow, Action::kRead).ok());
  EXPECT_EQ(a->Require(*alice, Kind::kWorkflow, Action::kWrite).code(),
            StatusCode::kPermissionDenied);
  // A key cannot mint a key with more than it holds.
  EXPECT_EQ(a->CreateKey(*alice, "acme", "", "", {"workflow:write"}).status().code(),
            StatusCode::kPermissionDenied);
  // Only the hash is stored.
  for (const auto& k : a->ListKeys(org->org_id)) EXPECT_NE(k.key_hash, key->key);

  ASSERT_TRUE(a->RevokeKey(key->record.key_id).ok());
  EXPECT_EQ(a->Authenticate("Bearer " + key->key).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(a->RevokeKey("key-missing").code(), StatusCode::kNotFound);

  // Survives a restart: org and keys reload, the revoked key stays refused.
  a.reset();
  auto b = Make(admin_key);
  EXPECT_TRUE(b->FindOrg("acme").has_value());
  EXPECT_EQ(b->Authenticate("Bearer " + key->key).status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(b->Authenticate("Bearer " + admin_key).ok());
}

TEST_F(AuthenticatorTest, PolicyIsValidatedStoredAndObserved) {
  auto a = Make(GenerateApiKey());
  OrgPolicy p;
  p.max_queued_tasks = 5;
  auto org = a->CreateOrg("quota", p);
  ASSERT_TRUE(org.ok());
  std::map<std::string, OrgPolicy> seen;
  a->OnPolicyChange([&seen](const std::string& id, const OrgPolicy& policy) { seen[id] = policy; });
  EXPECT_EQ(seen[org->org_id].max_queued_tasks, 5);
  ASSERT_TRUE(a->UpdateOrgPolicy("quota", {{"max_gpus", 2}, {"weight", 3.5}}).ok());
  EXPECT_EQ(seen[org->org_id].max_gpus, 2);
  EXPECT_EQ(seen[org->org_id].max_queued_tasks, 5);  // unchanged fields kept
  EXPECT_DOUBLE_EQ(a->PolicyOf(org->org_id).weight, 3.5);
  EXPECT_FALSE(a->UpdateOrgPolicy("quota", {{"max_gpus", -1}}).ok());
  EXPECT_FALSE(a->UpdateOrgPolicy("quota", {{"max_cats", 1}}).ok());
  EXPECT_EQ(a->UpdateOrgPolicy("nope", {{"max_gpus", 1}}).status().code(), StatusCode::kNotFound);
}

TEST(PluginHostTest, LoadsTheExamplePluginAndComposesHooks) {
  TempDir dir;
  std::ofstream(dir / "tokens") << "tok-1 usr-p org-p workflow:read,task:read\n";
  std::string config = "tokens=" + (dir / "tokens") + ";usage=" + (dir / "usage.jsonl") +
                        ";deny=forbidden;supplier=acme-cloud;deny_ids=" + (dir / "deny");
  auto host = PluginHost::Load({std::string(FLOWMESH_PLUGIN_DIR) + "/libstatic_tokens.so"},
                               [&](const std::string& name) {
                                 EXPECT_EQ(name, "static_tokens");
                                 return config;
                               });
  ASSERT_TRUE(host.ok()) << host.status().ToString();
  auto who = (*host)->ResolveIdentity("tok-1");
  ASSERT_TRUE(who.ok());
  ASSERT_TRUE(who->has_value());
  EXPECT_EQ((*who)->org_id, "org-p");
  EXPECT_EQ((*who)->scopes.size(), 2u);
  EXPECT_FALSE((*host)->ResolveIdentity("tok-2")->has_value());
  EXPECT_EQ((*host)->CheckSubmission("u", "o", "{\"name\":\"forbidden\"}").code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE((*host)->CheckSubmission("u", "o", "{\"name\":\"fine\"}").ok());
  EXPECT_EQ((*host)->ResolveSupplier("wkr-1", "{}"), "acme-cloud");
  EXPECT_FALSE((*host)->Accessible("u", "org-p", "workflow", "read").has_value());
  (*host)->Register("workflow", "wfl-1", "org-p", "u");
  (*host)->Register("workflow", "wfl-2", "org-p", "u");
  std::ofstream(dir / "deny") << "wfl-2\n";
  auto ids = (*host)->Accessible("u", "org-p", "workflow", "read");
  ASSERT_TRUE(ids.has_value());
  EXPECT_EQ(*ids, std::set<std::string>{"wfl-1"});
  EXPECT_EQ((*host)->Require("u", "org-p", "workflow", "read", "wfl-2").code(),
            StatusCode::kPermissionDenied);
  (*host)->RecordUsage({{"task_id", "tsk-1"}});
  host->reset();  // delivers queued usage rows before unloading
  std::ifstream usage(dir / "usage.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(usage, line));
  EXPECT_NE(line.find("tsk-1"), std::string::npos);
}

TEST(PluginHostTest, RefusesAWrongAbiVersionNamingThePlugin) {
  std::string path = std::string(FLOWMESH_PLUGIN_DIR) + "/libstatic_tokens_wrong_abi.so";
  auto host = PluginHost::Load({path}, nullptr);
  ASSERT_FALSE(host.ok());
  EXPECT_NE(host.status().message().find(path), std::string::npos);
  EXPECT_NE(host.status().message().find("ABI version 2.0"), std::string::npos);
}

TEST(PluginHostTest, RefusesAMissingLibrary) {
  auto host = PluginHost::Load({"/nonexistent/libnope.so"}, nullptr);
  ASSERT_FALSE(host.ok());
  EXPECT_NE(host.status().message().find("/nonexistent/libnope.so"), std::string::npos);
  EXPECT_EQ(PluginHost::SplitList("a.so:b.so,c.so").size(), 3u);
}

}  // namespace
}  // namespace flowmesh::auth
