// Reference counting and garbage collection over a real SQLite store and blob directory,
// and crash safety of blob writes (a writer process killed with SIGKILL mid-write).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "cas/cas.h"
#include "cas/content_store.h"
#include "common/hash.h"
#include "state/store.h"
#include "support/temp_dir.h"

namespace flowmesh::cas {
namespace {

namespace fs = std::filesystem;

class GcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state::StoreConfig sc;
    sc.path = (fs::path(dir_.path()) / "state.db").string();
    auto store = state::Store::Open(sc);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    files_ = std::make_unique<BlobStore>((fs::path(dir_.path()) / "cas").string());
    ASSERT_TRUE(files_->Init().ok());
    content_ = std::make_unique<ContentStore>(files_.get(), store_.get(), /*inline_max=*/64);
  }

  // Stores `data` and names it as the result of `task`.
  std::string PutResult(const std::string& task, const std::string& data) {
    auto blob = content_->Prepare(data);
    EXPECT_TRUE(blob.ok());
    state::ResultRecord r;
    r.task_id = task;
    r.digest = blob->digest;
    r.size = static_cast<int64_t>(data.size());
    EXPECT_TRUE(store_->WriteSync([&](state::WriteTxn& txn) -> Status {
      FM_RETURN_IF_ERROR(ContentStore::Record(*blob, txn));
      return txn.PutResult(r);
    }).ok());
    return blob->digest;
  }

  int64_t Refs(const std::string& digest) {
    auto r = store_->BlobRefs(digest);
    return r.ok() ? *r : -1;
  }

  void Collect(state::GcStats* stats) {
    ASSERT_TRUE(CollectGarbage(files_.get(), store_.get(), 0, stats).ok());
  }

  testing::TempDir dir_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<BlobStore> files_;
  std::unique_ptr<ContentStore> content_;
};

TEST_F(GcTest, ReferencesFollowResultsFilesAndOperatorResults) {
  std::string big(1000, 'x');
  std::string d1 = PutResult("tsk-1", big);
  EXPECT_EQ(Refs(d1), 1);
  PutResult("tsk-2", big);  // same content: one blob, two references
  EXPECT_EQ(Refs(d1), 2);
  std::string d2 = PutResult("tsk-2", big + "y");  // tsk-2's result replaced
  EXPECT_EQ(Refs(d1), 1);
  EXPECT_EQ(Refs(d2), 1);
  ASSERT_TRUE(store_->WriteSync([&](state::WriteTxn& txn) -> Status {
    state::ResultFileRecord f{"tsk-3", "out/a.txt", d1, 1000};
    FM_RETURN_IF_ERROR(txn.PutResultFile(f));
    state::OperatorResultRecord op{"key", "fp", "echo", d1, "tsk-1", 0};
    return txn.PutOperatorResult(op);
  }).ok());
  EXPECT_EQ(Refs(d1), 3);
}

TEST_F(GcTest, CollectionKeepsWhatIsReferencedAndRemovesTheRest) {
  std::string kept_file = PutResult("tsk-1", std::string(1000, 'k'));
  std::string kept_inline = PutResult("tsk-2", "small");
  std::string dropped_file = PutResult("tsk-3", std::string(1000, 'd'));
  std::string dropped_inline = PutResult("tsk-4", "tiny");
  // tsk-3 and tsk-4 get other results: their old blobs are unreferenced now.
  PutResult("tsk-3", std::string(1000, 'k'));
  PutResult("tsk-4", "small");
  // An upload that was never recorded.
  auto orphan = files_->Put(std::string(2000, 'o'));
  ASSERT_TRUE(orphan.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));

  state::GcStats stats;
  Collect(&stats);
  EXPECT_EQ(stats.blobs_removed, 2);
  EXPECT_EQ(stats.orphan_files_removed, 1);
  EXPECT_TRUE(files_->Contains(kept_file));
  EXPECT_TRUE(content_->Get(kept_inline).ok());
  EXPECT_FALSE(files_->Contains(dropped_file));
  EXPECT_EQ(content_->Get(dropped_inline).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(files_->Contains(*orphan));
  EXPECT_EQ(Refs(kept_file), 2);
  EXPECT_EQ(Refs(dropped_file), -1);
}

TEST_F(GcTest, GracePeriodProtectsRecentlyReleasedBlobs) {
  std::string d = PutResult("tsk-1", std::string(1000, 'a'));
  PutResult("tsk-1", std::string(1000, 'b'));
  state::GcStats stats;
  ASSERT_TRUE(CollectGarbage(files_.get(), store_.get(), 3600, &stats).ok());
  EXPECT_EQ(stats.blobs_removed, 0);
  EXPECT_TRUE(files_->Contains(d));
}

TEST_F(GcTest, PurgingAWorkflowReleasesItsBlobs) {
  state::WorkflowRecord w;
  w.workflow_id = "wfl-1";
  w.name = "w";
  w.status = "DONE";
  state::TaskRecord t;
  t.task_id = "tsk-1";
  t.workflow_id = "wfl-1";
  t.spec_json = "{}";
  t.latest_update_json = "{}";
  t.status = state::TaskState::kDone;
  ASSERT_TRUE(store_->WriteSync([&](state::WriteTxn& txn) -> Status {
    FM_RETURN_IF_ERROR(txn.PutWorkflow(w));
    return txn.PutTask(t);
  }).ok());
  std::string d = PutResult("tsk-1", std::string(1000, 'p'));
  auto expired = store_->ExpiredWorkflows(1e18, 10);
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(*expired, std::vector<std::string>{"wfl-1"});
  ASSERT_TRUE(store_->WriteSync([](state::WriteTxn& txn) { return txn.PurgeWorkflow("wfl-1"); }).ok());
  EXPECT_EQ(Refs(d), 0);
  EXPECT_EQ(store_->GetWorkflow("wfl-1").status().code(), StatusCode::kNotFound);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  state::GcStats stats;
  Collect(&stats);
  EXPECT_FALSE(files_->Contains(d));
}

// A child process writes large blobs in a loop and is killed with SIGKILL mid-way. After
// a restart (Init), every blob under a real name has exactly the content its name says,
// and no temporary is left.
TEST(BlobCrashTest, KilledWriterNeverLeavesAPartialBlob) {
  testing::TempDir dir;
  std::string root = (fs::path(dir.path()) / "cas").string();
  {
    BlobStore store(root);
    ASSERT_TRUE(store.Init().ok());
  }
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    BlobStore store(root);
    std::string data(4 << 20, 'a');
    for (uint64_t i = 0;; ++i) {
      std::memcpy(data.data(), &i, sizeof i);
      (void)store.Put(data);
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));

  BlobStore store(root);
  ASSERT_TRUE(store.Init().ok());
  int blobs = 0;
  store.ForEach([&](const std::string& digest, double) {
    ++blobs;
    auto data = store.Get(digest);
    ASSERT_TRUE(data.ok());
    EXPECT_EQ(Sha256Hex(*data), digest) << "partial blob under a real name";
  });
  EXPECT_GT(blobs, 0);
  EXPECT_TRUE(fs::is_empty(fs::path(root) / "tmp"));
}

}  // namespace
}  // namespace flowmesh::cas
