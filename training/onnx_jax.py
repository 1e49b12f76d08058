"""An ONNX graph run in JAX, so that a pretrained network shipped as ONNX (the PP-OCR text recogniser in the
rapidocr wheel) can be fine-tuned here and written back into the same graph.

Only the ops such recognisers use are here (opset 11). Values that describe shapes (Shape, Slice, Concat of
int64 arrays) stay numpy, so every shape is known when JAX traces; the float initializers of weighted
ops are the trainable parameters, by their ONNX names.
"""

from __future__ import annotations

import numpy as np

WEIGHTED = {"Conv": (1, 2), "MatMul": (1,), "Add": (0, 1), "Mul": (0, 1), "BatchNormalization": (1, 2)}


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _same_pads(size, kernel, stride, dilation=1, upper=True):
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    begin = total // 2 if upper else total - total // 2
    return begin, total - begin


class OnnxGraph:
    def __init__(self, model):
        from onnx import numpy_helper

        self.model = model
        graph = model.graph
        self.nodes = list(graph.node)
        self.constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.input_name = graph.input[0].name
        self.output_names = [o.name for o in graph.output]
        trainable = set()
        for node in self.nodes:
            for k in WEIGHTED.get(node.op_type, ()):
                if k < len(node.input):
                    name = node.input[k]
                    value = self.constants.get(name)
                    if value is not None and value.dtype == np.float32 and value.size > 1:
                        trainable.add(name)
        self.trainable = sorted(trainable)

    def params(self) -> dict[str, np.ndarray]:
        return {name: self.constants[name].copy() for name in self.trainable}

    def __call__(self, params: dict, x, outputs: list[str] | None = None):
        import jax.numpy as jnp

        values = dict(self.constants)
        values.update(params)
        values[self.input_name] = x
        for node in self.nodes:
            ins = [values[n] if n else None for n in node.input]
            result = self._run(node, ins, jnp)
            for name, value in zip(node.output, result if isinstance(result, tuple) else (result,)):
                values[name] = value
        wanted = outputs or self.output_names
        return [values[n] for n in wanted]

    @staticmethod
    def _run(node, ins, jnp):
        import jax
        from jax import lax

        op, a = node.op_type, _attrs(node)
        static = all(isinstance(v, np.ndarray) or v is None for v in ins)
        xp = np if static else jnp
        if op == "Identity":
            return ins[0]
        if op == "Add":
            return ins[0] + ins[1]
        if op == "Sub":
            return ins[0] - ins[1]
        if op == "Mul":
            return ins[0] * ins[1]
        if op == "Div":
            return ins[0] / ins[1]
        if op == "Pow":
            return ins[0] ** ins[1]
        if op == "Sqrt":
            return xp.sqrt(ins[0])
        if op == "Erf":
            return jax.scipy.special.erf(ins[0])
        if op == "Relu":
            return jnp.maximum(ins[0], 0.0)
        if op == "Sigmoid":
            return jax.nn.sigmoid(ins[0])
        if op == "HardSigmoid":
            return jnp.clip(a.get("alpha", 0.2) * ins[0] + a.get("beta", 0.5), 0.0, 1.0)
        if op == "Softmax":
            return jax.nn.softmax(ins[0], axis=a.get("axis", -1))
        if op == "MatMul":
            return jnp.matmul(ins[0], ins[1])
        if op == "ReduceMean":
            return jnp.mean(ins[0], axis=tuple(a["axes"]), keepdims=bool(a.get("keepdims", 1)))
        if op == "Transpose":
            return xp.transpose(ins[0], a["perm"])
        if op == "Concat":
            return xp.concatenate([v if static else jnp.asarray(v) for v in ins], axis=a["axis"])
        if op == "Shape":
            return np.array(ins[0].shape, np.int64)
        if op == "Squeeze":
            return xp.squeeze(ins[0], axis=tuple(a["axes"]))
        if op == "Unsqueeze":
            out = ins[0]
            for axis in sorted(a["axes"]):
                out = xp.expand_dims(out, axis)
            return out
        if op == "Slice":
            data, starts, ends = ins[0], ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else np.arange(len(starts))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else np.ones(len(starts), np.int64)
            index = [slice(None)] * data.ndim
            for s, e, ax, st in zip(starts, ends, axes, steps):
                index[int(ax)] = slice(int(s), int(min(e, 2**31)), int(st))
            return data[tuple(index)]
        if op == "Reshape":
            shape = [int(d) for d in np.asarray(ins[1])]
            shape = [ins[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
            return xp.reshape(ins[0], shape)
        if op == "BatchNormalization":
            x, scale, bias, mean, var = ins
            shape = (1, -1) + (1,) * (x.ndim - 2)
            inv = scale / jnp.sqrt(var + a.get("epsilon", 1e-5))
            return x * inv.reshape(shape) + (bias - mean * inv).reshape(shape)
        if op == "Conv":
            x, w = ins[0], ins[1]
            kh, kw = w.shape[2:]
            strides = tuple(a.get("strides", (1, 1)))
            dil = tuple(a.get("dilations", (1, 1)))
            auto = a.get("auto_pad", b"NOTSET")
            auto = auto.decode() if isinstance(auto, bytes) else auto
            if auto in ("SAME_UPPER", "SAME_LOWER"):
                upper = auto == "SAME_UPPER"
                pads = [_same_pads(x.shape[2], kh, strides[0], dil[0], upper), _same_pads(x.shape[3], kw, strides[1], dil[1], upper)]
            else:
                p = a.get("pads", (0, 0, 0, 0))
                pads = [(p[0], p[2]), (p[1], p[3])]
            out = lax.conv_general_dilated(x, w, strides, pads, rhs_dilation=dil, feature_group_count=a.get("group", 1),
                                           dimension_numbers=("NCHW", "OIHW", "NCHW"))
            if len(ins) > 2 and ins[2] is not None:
                out = out + ins[2].reshape(1, -1, 1, 1)
            return out
        if op in ("MaxPool", "AveragePool"):
            x = ins[0]
            kh, kw = a["kernel_shape"]
            sh, sw = a.get("strides", (1, 1))
            auto = a.get("auto_pad", b"NOTSET")
            auto = auto.decode() if isinstance(auto, bytes) else auto
            if auto in ("SAME_UPPER", "SAME_LOWER"):
                upper = auto == "SAME_UPPER"
                pads = [_same_pads(x.shape[2], kh, sh, 1, upper), _same_pads(x.shape[3], kw, sw, 1, upper)]
            else:
                p = a.get("pads", (0, 0, 0, 0))
                pads = [(p[0], p[2]), (p[1], p[3])]
            window, stride = (1, 1, kh, kw), (1, 1, sh, sw)
            padding = ((0, 0), (0, 0), *pads)
            if op == "MaxPool":
                return lax.reduce_window(x, -jnp.inf, lax.max, window, stride, padding)
            total = lax.reduce_window(x, 0.0, lax.add, window, stride, padding)
            if any(p for pair in pads for p in pair) and not a.get("count_include_pad", 0):
                count = lax.reduce_window(jnp.ones_like(x), 0.0, lax.add, window, stride, padding)
                return total / count
            return total / (kh * kw)
        raise NotImplementedError(f"ONNX op {op} ({node.name}) is not supported here")


def with_params(model, params: dict[str, np.ndarray]):
    """A copy of the ONNX model with its initializers replaced by `params` (same names and shapes)."""
    import copy

    from onnx import numpy_helper

    out = copy.deepcopy(model)
    for init in out.graph.initializer:
        if init.name in params:
            value = np.asarray(params[init.name], np.float32)
            init.CopyFrom(numpy_helper.from_array(value.reshape(numpy_helper.to_array(init).shape) if value.size ==
                                                  numpy_helper.to_array(init).size else value, init.name))
    return out
