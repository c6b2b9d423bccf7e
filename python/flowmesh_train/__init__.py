"""FlowMesh's training bridge: the Python side of flowmesh-worker's sft, lora_sft and dpo
executors. The worker starts `python -m flowmesh_train` once per attempt and speaks the
line-delimited JSON protocol of docs/internals/training-bridge.md with it over pipes."""

PROTOCOL_VERSION = 1
