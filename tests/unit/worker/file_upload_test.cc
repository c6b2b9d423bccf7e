// The worker's result-file uploader against a real HTTP server on port 0 that reads the
// multipart body the way the API does: batching under the request limit, and the files it
// must not send (too large, links, names that cannot travel) reported as not stored.
#include "worker/file_upload.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>

#include "http/http.h"
#include "support/temp_dir.h"

namespace flowmesh::worker {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Answers POST /api/v1/results/{id}/files like the server: one {path, digest, size} per
// part, in order; keeps each request's part names and bodies.
class FilesEndpoint {
 public:
  FilesEndpoint() {
    auto router = std::make_shared<http::Router>();
    router->Add("POST", "/api/v1/results/{task_id}/files", [this](http::Request& req) {
      std::lock_guard lock(mu_);
      auth_ = req.Header("Authorization");
      std::smatch m;
      std::string ct = req.Header("Content-Type");
      EXPECT_TRUE(std::regex_search(ct, m, std::regex("boundary=(.+)$")));
      std::string delim = "--" + m[1].str();
      std::vector<std::string> names;
      json files = json::array();
      size_t pos = req.body.find(delim);
      while (pos != std::string::npos && req.body.compare(pos + delim.size(), 2, "--") != 0) {
        size_t head = pos + delim.size() + 2;
        size_t data = req.body.find("\r\n\r\n", head) + 4;
        size_t next = req.body.find("\r\n" + delim, data);
        std::string headers = req.body.substr(head, data - head);
        std::smatch f;
        std::regex_search(headers, f, std::regex("filename=\"([^\"]*)\""));
        std::string body = req.body.substr(data, next - data);
        names.push_back(f[1].str());
        files.push_back({{"path", f[1].str()}, {"digest", "d-" + std::to_string(body.size())},
                         {"size", body.size()}});
        pos = next + 2;
      }
      batches_.push_back(names);
      return http::Response::Json(201, json{{"ok", true}, {"files", files}}.dump());
    });
    server_ = std::make_unique<http::Server>(http::ServerConfig{}, router);
    EXPECT_TRUE(server_->Start().ok());
  }
  ServerLink Link() const {
    return {"http://127.0.0.1:" + std::to_string(server_->port()), "svc-token",
            std::chrono::milliseconds(5000), "wkr-1"};
  }
  std::vector<std::vector<std::string>> batches() {
    std::lock_guard lock(mu_);
    return batches_;
  }
  std::string auth() {
    std::lock_guard lock(mu_);
    return auth_;
  }

 private:
  std::mutex mu_;
  std::vector<std::vector<std::string>> batches_;
  std::string auth_;
  std::unique_ptr<http::Server> server_;
};

void Write(const fs::path& path, size_t bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << std::string(bytes, 'x');
}

TEST(UploadFilesTest, BatchesUnderTheLimitAndReportsWhatItCannotSend) {
  testing::TempDir dir;
  fs::path root = dir.path();
  Write(root / "a.txt", 3000);
  Write(root / "sub/b.bin", 3000);
  Write(root / "c.txt", 3000);
  Write(root / "huge.bin", 20000);
  Write(root / "odd.txt", 10);
  fs::create_symlink("/etc/passwd", root / "link");
  FilesEndpoint endpoint;
  std::vector<executors::OutputFile> files = {
      {"a.txt", (root / "a.txt").string()},       {"sub/b.bin", (root / "sub/b.bin").string()},
      {"c.txt", (root / "c.txt").string()},       {"huge.bin", (root / "huge.bin").string()},
      {"link", (root / "link").string()},         {"we\"ird.txt", (root / "odd.txt").string()},
      {"gone.txt", (root / "gone.txt").string()}};
  auto stored = UploadFiles(endpoint.Link(), "tsk-1", files, /*max_request_bytes=*/8000);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  ASSERT_EQ(stored->size(), files.size());
  // Two 3000-byte files fit one 8000-byte request; the third goes in the next.
  EXPECT_EQ(endpoint.batches(),
            (std::vector<std::vector<std::string>>{{"a.txt", "sub/b.bin"}, {"c.txt"}}));
  EXPECT_EQ(endpoint.auth(), "Bearer svc-token");
  for (size_t i : {0, 1, 2}) {
    EXPECT_TRUE((*stored)[i].stored) << files[i].name;
    EXPECT_EQ((*stored)[i].digest, "d-3000");
    EXPECT_EQ((*stored)[i].size, 3000);
  }
  for (size_t i : {3, 4, 5, 6}) EXPECT_FALSE((*stored)[i].stored) << files[i].name;
  EXPECT_NE((*stored)[3].why_not.find("larger than one upload request"), std::string::npos);
  EXPECT_NE((*stored)[4].why_not.find("regular file"), std::string::npos);
  EXPECT_NE((*stored)[5].why_not.find("quotes"), std::string::npos);
}

TEST(UploadFilesTest, NoServerIsAnError) {
  auto stored = UploadFiles(ServerLink{}, "tsk-1", {{"a", "/nonexistent"}});
  ASSERT_FALSE(stored.ok());
  EXPECT_EQ(stored.status().code(), StatusCode::kFailedPrecondition);
  ServerLink closed{"http://127.0.0.1:1", "", std::chrono::milliseconds(2000), "wkr"};
  testing::TempDir dir;
  Write(fs::path(dir.path()) / "a", 5);
  auto unreachable = UploadFiles(closed, "tsk-1", {{"a", (fs::path(dir.path()) / "a").string()}});
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace flowmesh::worker
