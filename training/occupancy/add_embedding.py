#!/usr/bin/env python3
"""Expose OccNet's embedding as a second ONNX output, `embedding` [N, D], beside `logits` [N, 2].

The embedding is the input of the final linear layer (the average-pooled features): the per-camera adapter
in `crates/occupancy/src/adapter.rs` fits its own head on it from an operator's labels, at run time, in Rust.
The logits are unchanged (the golden tests pin them), so this is applied to an exported model in place:

    training/.venv/bin/python training/occupancy/add_embedding.py models/occupancy.onnx

`train.py`'s export calls it too. Idempotent: a model that already has the output is left as is.
"""
import sys

import onnx


def add_embedding(path):
    m = onnx.load(path)
    if any(o.name == "embedding" for o in m.graph.output):
        return False
    # The final Gemm/MatMul producing `logits` takes the embedding as its first input.
    head = next(n for n in m.graph.node if "logits" in n.output)
    if head.op_type not in ("Gemm", "MatMul"):
        raise SystemExit(f"{path}: logits come from {head.op_type}, expected the final linear layer")
    m.graph.node.append(onnx.helper.make_node("Identity", [head.input[0]], ["embedding"], name="embedding"))
    out = onnx.helper.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT, ["batch", None])
    m.graph.output.append(out)
    m.doc_string = "Valet occupancy classifier: logits[N,2] (0=free 1=occupied), embedding[N,D] for the adapter"
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return True


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(p, "embedding added" if add_embedding(p) else "already has an embedding")
