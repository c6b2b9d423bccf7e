#include "worker/file_upload.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <random>

#include "http/http.h"

namespace flowmesh::worker {
namespace {

using executors::OutputFile;
using executors::StoredFile;

// Reads a regular file (never through a symlink) of at most `max` bytes.
Result<std::string> ReadRegularFile(const std::string& path, size_t max) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return NotFound("not a readable regular file");
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return NotFound("not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > max) {
    close(fd);
    return TooLarge("larger than one upload request (" + std::to_string(max >> 20) +
                             " MiB)");
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = read(fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  data.resize(got);
  return data;
}

// A name that can be a multipart filename as it is: printable, no quotes or backslashes.
bool TravelsAsFilename(const std::string& name) {
  if (name.empty() || name.size() > 1024) return false;
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') return false;
  }
  return true;
}

std::string Boundary() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char kHex[] = "0123456789abcdef";
  std::string b = "flowmesh-";
  for (int i = 0; i < 32; ++i) b += kHex[rng() % 16];
  return b;
}

struct Batch {
  std::vector<size_t> index;  // into the caller's files
  std::vector<std::string> data;
  size_t bytes = 0;
};

// Posts one batch; fills `out` for its files from the server's answer.
Status PostBatch(const ServerLink& link, const std::string& task_id,
                 const std::vector<OutputFile>& files, const Batch& batch,
                 std::vector<StoredFile>& out) {
  std::string boundary;
  std::string body;
  do {  // a boundary that occurs in no file
    boundary = Boundary();
    bool clash = false;
    for (const auto& d : batch.data) clash = clash || d.find(boundary) != std::string::npos;
    if (!clash) break;
  } while (true);
  for (size_t i = 0; i < batch.index.size(); ++i) {
    const std::string& name = files[batch.index[i]].name;
    body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" +
            name + "\"\r\nContent-Type: application/octet-stream\r\n\r\n";
    body += batch.data[i];
    body += "\r\n";
  }
  body += "--" + boundary + "--\r\n";
  thread_local std::map<std::string, std::unique_ptr<http::Client>> clients;
  auto& client = clients[link.root_url];
  if (!client) client = std::make_unique<http::Client>(link.root_url, link.timeout);
  http::Headers headers;
  headers["Content-Type"] = "multipart/form-data; boundary=" + boundary;
  if (!link.api_token.empty()) headers["Authorization"] = "Bearer " + link.api_token;
  auto reply = client->Request("POST", "/api/v1/results/" + task_id + "/files", body, headers);
  if (!reply.ok()) return reply.status();
  auto answer = nlohmann::json::parse(reply->body, nullptr, false);
  if (reply->status != 201 || !answer.is_object() || !answer["files"].is_array() ||
      answer["files"].size() != batch.index.size()) {
    std::string detail = answer.is_object() ? answer.value("detail", reply->body) : reply->body;
    Status s = Unavailable("POST /api/v1/results/" + task_id + "/files answered " +
                           std::to_string(reply->status) + ": " + detail.substr(0, 300));
    if (reply->status == 400 || reply->status == 422) {
      // The store refused a name of this batch: report each file, upload nothing of it.
      for (size_t i : batch.index) out[i].why_not = "refused by the server: " + detail.substr(0, 200);
      return Status::Ok();
    }
    return s;
  }
  for (size_t i = 0; i < batch.index.size(); ++i) {
    const auto& f = answer["files"][i];
    StoredFile& stored = out[batch.index[i]];
    stored.digest = f.value("digest", "");
    stored.size = f.value("size", int64_t{0});
    stored.stored = !stored.digest.empty();
    if (!stored.stored) stored.why_not = "the server kept no digest";
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<StoredFile>> UploadFiles(const ServerLink& link, const std::string& task_id,
                                            const std::vector<OutputFile>& files,
                                            size_t max_request_bytes) {
  if (link.root_url.empty()) return FailedPrecondition("result files: no server to send them to");
  std::vector<StoredFile> out(files.size());
  // Multipart framing per file is well under this; it keeps a full batch under the limit.
  constexpr size_t kFraming = 512;
  Batch batch;
  for (size_t i = 0; i < files.size(); ++i) {
    out[i].name = files[i].name;
    if (!TravelsAsFilename(files[i].name)) {
      out[i].why_not = "a name with quotes, backslashes or control characters";
      continue;
    }
    auto data = ReadRegularFile(files[i].path, max_request_bytes - kFraming);
    if (!data.ok()) {
      out[i].why_not = data.status().message();
      continue;
    }
    out[i].size = static_cast<int64_t>(data->size());
    if (!batch.index.empty() && batch.bytes + data->size() + kFraming > max_request_bytes) {
      FM_RETURN_IF_ERROR(PostBatch(link, task_id, files, batch, out));
      batch = Batch();
    }
    batch.bytes += data->size() + kFraming;
    batch.index.push_back(i);
    batch.data.push_back(std::move(data).value());
  }
  if (!batch.index.empty()) FM_RETURN_IF_ERROR(PostBatch(link, task_id, files, batch, out));
  return out;
}

}  // namespace flowmesh::worker
