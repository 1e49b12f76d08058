"""Training recipes for the agent's own plate models (detector and reader).

Runs with the optional training extra (`training/requirements.lock`: JAX on CPU, optax); a unit never
installs it. `scripts/train reader|detector` runs a recipe end to end. Nothing here is imported by the
agent: what it learns reaches the agent only as the ONNX files, model cards and manifest entries in
`models/`.
"""
