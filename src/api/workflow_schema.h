// The JSON Schema of the workflow format (docs/workflow.schema.json, embedded at build time).
#pragma once

namespace flowmesh::api {

const char* WorkflowJsonSchema();

}  // namespace flowmesh::api
