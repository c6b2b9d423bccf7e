// The python task's bootstrap program (Python source), written next to the task's code
// in the sandbox and run by the sandbox's python3.
#pragma once

namespace flowmesh::executors {

extern const char kPythonBootstrap[];

}  // namespace flowmesh::executors
