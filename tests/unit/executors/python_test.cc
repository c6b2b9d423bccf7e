#include "executors/python.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "common/hash.h"

namespace flowmesh::executors {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class PythonExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "fm-python-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    fs::permissions(root_, fs::perms(0711));  // the sandbox uid must traverse it
    config_.work_root = (root_ / "work").string();
    Status available = PythonExecutor::Available(config_);
    if (!available.ok()) GTEST_SKIP() << available.ToString();
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }

  // Runs a python task whose section is `python` (code etc.), with `extra` merged into the
  // task spec. `cancel_on` cancels the attempt when that log line appears.
  Result<json> Run(json python, json extra = json::object(), const std::string& cancel_on = "",
                   FileUploader put_files = nullptr) {
    json spec = {{"taskType", "python"}, {"python", std::move(python)}};
    spec.update(extra);
    TaskContext ctx{"tsk-py",
                    "wfl-1",
                    1,
                    "python",
                    spec,
                    [&](std::string line) {
                      if (!cancel_on.empty() && line == cancel_on) cancelled_ = true;
                      lines_.push_back(std::move(line));
                    },
                    [](json) {},
                    cancelled_};
    ctx.put_files = std::move(put_files);
    return PythonExecutor(config_).Run(ctx);
  }

  PythonExecutorConfig config_;
  fs::path root_;
  std::atomic<bool> cancelled_{false};
  std::vector<std::string> lines_;
};

TEST_F(PythonExecutorTest, ResultMetricsFilesAndLogs) {
  auto result =
      Run({{"code",
            "import os, sys\n"
            "def main():\n"
            "    print('hello from the sandbox')\n"
            "    print('a warning', file=sys.stderr)\n"
            "    with open(os.path.join(os.environ['FLOWMESH_OUTPUT'], 'out.txt'), 'w') as f:\n"
            "        f.write('payload')\n"
            "    os.makedirs(os.environ['FLOWMESH_OUTPUT'] + '/sub', exist_ok=True)\n"
            "    open(os.environ['FLOWMESH_OUTPUT'] + '/sub/x.bin', 'wb').write(b'xy')\n"
            "    return {'answer': 42, 'metrics': {'acc': 0.5}}\n"},
           {"emits", {"acc"}}});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ((*result)["task_type"], "python");
  EXPECT_EQ((*result)["exit_code"], 0);
  EXPECT_EQ((*result)["value"]["answer"], 42);
  EXPECT_EQ((*result)["metrics"], json({{"acc", 0.5}}));
  json files = {{{"name", "out.txt"}, {"size", 7}, {"sha256", Sha256Hex("payload")}},
                {{"name", "sub/x.bin"}, {"size", 2}, {"sha256", Sha256Hex("xy")}}};
  EXPECT_EQ((*result)["files"], files);
  EXPECT_NE(std::find(lines_.begin(), lines_.end(), "hello from the sandbox"), lines_.end());
  EXPECT_NE(std::find(lines_.begin(), lines_.end(), "[stderr] a warning"), lines_.end());
  // The attempt's folder is gone once it ends.
  EXPECT_TRUE(fs::is_empty(config_.work_root));
}

TEST_F(PythonExecutorTest, InputsAreBoundByStageNameAndEnvIsPassed) {
  json inputs = json::array(
      {{{"stage", "prep"}, {"result", {{"task_type", "python"}, {"value", {1, 2, 3}}}}},
       {{"stage", "echo1"}, {"result", {{"items", {{{"input", "a"}, {"output", "a"}}}}}}},
       {{"stage", "gone"},
        {"mountPath", "/mnt/flowmesh/skipped"},
        {"result", {{"skipped", true}}}}});
  auto result = Run({{"code",
                      "import os\n"
                      "def run(prep, echo1, gone, inputs):\n"
                      "    return {'sum': sum(prep), 'first': echo1['items'][0]['output'],\n"
                      "            'gone': gone, 'path': os.fspath(inputs['gone']),\n"
                      "            'greeting': os.environ['GREETING'], 'n': os.environ['N']}\n"},
                     {"entrypoint", "run"},
                     {"inputs", inputs},
                     {"env", {{"GREETING", "hi"}, {"N", 3}}}});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ((*result)["value"], json({{"sum", 6},
                                      {"first", "a"},
                                      {"gone", nullptr},
                                      {"path", "/mnt/flowmesh/skipped"},
                                      {"greeting", "hi"},
                                      {"n", "3"}}));
}

TEST_F(PythonExecutorTest, AnExceptionFailsPermanentlyWithItsMessage) {
  auto result = Run({{"code", "def main():\n    raise ValueError('bad input row 7')\n"}});
  ASSERT_FALSE(result.ok());
  EXPECT_FALSE(IsRetryable(result.status()));
  EXPECT_EQ(result.status().message(), "python task failed: ValueError: bad input row 7");
  bool traceback = false;
  for (const auto& line : lines_) traceback |= line.find("[stderr] Traceback") == 0;
  EXPECT_TRUE(traceback);
}

TEST_F(PythonExecutorTest, BrokenContractsFail) {
  auto missing = Run({{"code", "def main():\n    return 1\n"}, {"emits", {"loss"}}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("declared emits ['loss']"), std::string::npos)
      << missing.status().message();

  auto no_fn = Run({{"code", "x = 1\n"}});
  ASSERT_FALSE(no_fn.ok());
  EXPECT_NE(no_fn.status().message().find("no function 'main'"), std::string::npos);

  auto not_json = Run({{"code", "def main():\n    return object()\n"}});
  ASSERT_FALSE(not_json.ok());
  EXPECT_NE(not_json.status().message().find("ResultError"), std::string::npos);

  auto exit_early = Run({{"code", "import os\ndef main():\n    os._exit(0)\n"}});
  ASSERT_FALSE(exit_early.ok());
  EXPECT_EQ(exit_early.status().message(), "python task exited without writing a result");
}

TEST_F(PythonExecutorTest, OutputFolderIsHeldToMaxBytes) {
  std::string code =
      "import os\n"
      "def main():\n"
      "    for name in ['a', 'b']:\n"
      "        open(os.path.join(os.environ['FLOWMESH_OUTPUT'], name), 'w').write('x' * 600)\n";
  auto over = Run({{"code", code}, {"pythonOutput", {{"maxBytes", 1000}}}});
  ASSERT_FALSE(over.ok());
  EXPECT_NE(over.status().message().find("1000 bytes to its output folder"), std::string::npos)
      << over.status().message();
  auto under = Run({{"code", code}, {"pythonOutput", {{"maxBytes", 2000}}}});
  ASSERT_TRUE(under.ok()) << under.status().ToString();
  EXPECT_EQ((*under)["files"].size(), 2u);
}

TEST_F(PythonExecutorTest, SpecErrorsAreInvalidArgument) {
  for (const json& bad :
       {json{{"code", "  "}}, json{{"code", "def main(): pass"}, {"entrypoint", "not valid"}},
        json{{"code", "def main(): pass"}, {"requirements", {"requests"}}},
        json{{"code", "def main(): pass"}, {"timeoutSeconds", 7200}},
        json{{"code", "def main(): pass"},
             {"inputs", {{{"stage", "a"}, {"mountPath", "/etc/a"}}}}}}) {
    auto result = Run(bad);
    ASSERT_FALSE(result.ok()) << bad.dump();
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument) << bad.dump();
  }
  auto image = Run({{"code", "def main(): pass"}, {"image", "ubuntu:24.04"}});
  ASSERT_FALSE(image.ok());
  EXPECT_NE(image.status().message().find("drop 'image'"), std::string::npos);
  auto no_result = Run({{"code", "def main(a): pass"}, {"inputs", {"a"}}});
  ASSERT_FALSE(no_result.ok());
  EXPECT_NE(no_result.status().message().find("did not come with the task"), std::string::npos);
}

TEST_F(PythonExecutorTest, TimeoutCrashAndCancelEndTheTask) {
  auto start = std::chrono::steady_clock::now();
  auto looped = Run({{"code", "def main():\n    while True: pass\n"}, {"timeoutSeconds", 1}});
  ASSERT_FALSE(looped.ok());
  EXPECT_EQ(looped.status().message().rfind("python task timed out after 1s", 0), 0u)
      << looped.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));

  auto crashed = Run({{"code", "import ctypes\ndef main():\n    ctypes.string_at(0)\n"}});
  ASSERT_FALSE(crashed.ok());
  EXPECT_NE(crashed.status().message().find("SIGSEGV"), std::string::npos)
      << crashed.status().message();

  auto cancelled =
      Run({{"code", "import time\ndef main():\n    print('waiting')\n    time.sleep(300)\n"}},
          json::object(), "waiting");
  ASSERT_FALSE(cancelled.ok());
  EXPECT_EQ(cancelled.status().code(), StatusCode::kCancelled);
}

TEST_F(PythonExecutorTest, HostileCodeStaysInside) {
  auto result = Run({{"code",
                      "import os, socket\n"
                      "def main():\n"
                      "    found = {}\n"
                      "    for p in ['/root', '/work', '/etc/shadow', '" +
                          root_.string() +
                          "']:\n"
                          "        found[p] = os.path.exists(p)\n"
                          "    try:\n"
                          "        open('/usr/lib/flowmesh-owned', 'w')\n"
                          "        found['write'] = True\n"
                          "    except OSError:\n"
                          "        found['write'] = False\n"
                          "    try:\n"
                          "        socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
                          "        found['net'] = True\n"
                          "    except OSError:\n"
                          "        found['net'] = False\n"
                          "    return found\n"}});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  for (auto it = (*result)["value"].begin(); it != (*result)["value"].end(); ++it) {
    EXPECT_EQ(*it, false) << it.key();
  }
}


// With a server, the output files are handed to it while the attempt's folder still exists
// (the uploader reads them there) and each entry says whether it was stored; a server that
// cannot take them fails the attempt as retryable, so no file is silently lost.
TEST_F(PythonExecutorTest, OutputFilesAreStoredWithTheResult) {
  const char* code =
      "import os\n"
      "def main():\n"
      "    open(os.environ['FLOWMESH_OUTPUT'] + '/out.txt', 'w').write('payload')\n"
      "    open(os.environ['FLOWMESH_OUTPUT'] + '/big.bin', 'w').write('x' * 10)\n"
      "    return 1\n";
  std::vector<std::string> read;
  auto uploader = [&](const std::vector<OutputFile>& files) -> Result<std::vector<StoredFile>> {
    std::vector<StoredFile> out;
    for (const auto& f : files) {
      std::ifstream in(f.path);
      std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      read.push_back(f.name + "=" + data);
      StoredFile s{f.name, Sha256Hex(data), static_cast<int64_t>(data.size()), true, ""};
      if (f.name == "big.bin") s = StoredFile{f.name, "", 0, false, "too large"};
      out.push_back(s);
    }
    return out;
  };
  auto result = Run({{"code", code}}, json::object(), "", uploader);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(read, (std::vector<std::string>{"big.bin=xxxxxxxxxx", "out.txt=payload"}));
  const json& files = (*result)["files"];
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0]["name"], "big.bin");
  EXPECT_FALSE(files[0]["stored"].get<bool>());
  EXPECT_EQ(files[0]["why_not"], "too large");
  EXPECT_TRUE(files[1]["stored"].get<bool>());

  auto down = Run({{"code", code}}, json::object(), "",
                  [](const std::vector<OutputFile>&) -> Result<std::vector<StoredFile>> {
                    return Unavailable("server unreachable");
                  });
  ASSERT_FALSE(down.ok());
  EXPECT_TRUE(IsRetryable(down.status())) << down.status().ToString();
  EXPECT_NE(down.status().message().find("server unreachable"), std::string::npos);
}

}  // namespace
}  // namespace flowmesh::executors
