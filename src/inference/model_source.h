// Finds the GGUF file a task's `model.source` names.
//
//   local        identifier is a path to a .gguf file.
//   huggingface  identifier "org/name", optional revision and file (a file name or a
//                quantisation such as Q4_K_M): the Hugging Face cache layout
//                (<hub>/models--org--name/snapshots/<rev>/*.gguf) is searched first;
//                otherwise, when downloads are allowed, the file is fetched over HTTPS
//                (resumable, sha256-verified against the hub's ETag) into that cache.
//   url          an https:// URL of a .gguf file, downloaded once into the model cache
//                (optional source.sha256 is verified).
// A model that cannot be found is a FailedPrecondition error that says where it looked.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "common/status.h"

namespace flowmesh::inference {

struct ModelSourceConfig {
  std::string hf_hub_dir;        // e.g. $HF_HOME/hub or ~/.cache/huggingface/hub
  std::string url_cache_dir;     // downloads of `url` sources
  std::string hf_endpoint = "https://huggingface.co";
  bool allow_download = true;

  // HF_HUB_CACHE, HF_HOME, FLOWMESH_MODEL_CACHE, HF_ENDPOINT, FLOWMESH_OFFLINE / HF_HUB_OFFLINE.
  static ModelSourceConfig FromEnvironment();
};

// `task_spec` is the whole task spec (its model.source is read).
Result<std::string> ResolveModelPath(const nlohmann::json& task_spec, const ModelSourceConfig& config);

}  // namespace flowmesh::inference
