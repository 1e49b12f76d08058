"""The two plate networks, written once against a small set of ops that either trains (JAX) or exports (ONNX).

`reader_net` and `detector_net` take an ops object and a parameter dict. `JaxOps` runs them for training
(batch norm from the batch, or from its running averages in evaluation); `OnnxOps` walks the same code to
build the ONNX graph, with each batch norm folded into its convolution, so the exported file computes
exactly what was validated.
"""

from __future__ import annotations

import math

import numpy as np

BN_EPS = 1e-3
BN_MOMENTUM = 0.9
NUM_CHARS = 37  # CTC blank + 0-9 A-Z (edge_agent.recognise.runtime.PLATE_ALPHABET)


# --- parameters -----------------------------------------------------------

def conv_params(rng: np.random.Generator, cin: int, cout: int, kh: int, kw: int, bn: bool = True) -> dict:
    std = math.sqrt(2.0 / (cin * kh * kw))
    p = {"w": (rng.standard_normal((cout, cin, kh, kw)) * std).astype(np.float32)}
    if bn:
        p.update(gamma=np.ones(cout, np.float32), beta=np.zeros(cout, np.float32),
                 mean=np.zeros(cout, np.float32), var=np.ones(cout, np.float32))
    else:
        p["b"] = np.zeros(cout, np.float32)
    return p


def dense_params(rng: np.random.Generator, cin: int, cout: int) -> dict:
    return {"w": (rng.standard_normal((cin, cout)) * math.sqrt(2.0 / cin)).astype(np.float32),
            "b": np.zeros(cout, np.float32)}


READER_CHANNELS = (16, 32, 64, 96, 160)
NUM_STATES = 51
# The state head sees the features averaged over a coarse grid (rows x columns) of the plate: where the
# name, the picture and the colours are is what tells one state's design from another's.
STATE_GRID = (3, 4)


def reader_params(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    c1, c2, c3, c4, c5 = READER_CHANNELS
    return {
        "c1": conv_params(rng, 3, c1, 3, 3),
        "c2": conv_params(rng, c1, c2, 3, 3),
        "c3": conv_params(rng, c2, c3, 3, 3),
        "c3b": conv_params(rng, c3, c3, 3, 3),
        "c4": conv_params(rng, c3, c4, 3, 3),
        "c4b": conv_params(rng, c4, c4, 3, 3),
        "collapse": conv_params(rng, c4, c5, 6, 1),
        "seq": conv_params(rng, c5, c5, 1, 3),
        "head": conv_params(rng, c5, NUM_CHARS, 1, 1, bn=False),
        "s1": dense_params(rng, c4 * STATE_GRID[0] * STATE_GRID[1], 128),
        "s2": dense_params(rng, 128, NUM_STATES),
    }


def reader_net(ops, p: dict, x):
    """x (N, 3, 48, 128) -> (per-step character logits (N, 32, 37), state logits (N, 51))."""
    x = ops.pool(ops.conv_bn(x, p["c1"]), 2, 2)        # 24 x 64
    x = ops.pool(ops.conv_bn(x, p["c2"]), 2, 2)        # 12 x 32
    x = ops.conv_bn(ops.conv_bn(x, p["c3"]), p["c3b"])
    x = ops.pool(x, 2, 1)                              # 6 x 32
    x = ops.conv_bn(ops.conv_bn(x, p["c4"]), p["c4b"])
    features = x
    x = ops.conv_bn(x, p["collapse"], pad=(0, 0))      # 1 x 32
    x = ops.dropout(ops.conv_bn(x, p["seq"], pad=(0, 1)))
    logits = ops.steps(ops.conv(x, p["head"], pad=(0, 0)))  # N, 32, 37
    grid = ops.avgpool(features, 6 // STATE_GRID[0], 32 // STATE_GRID[1])  # c4 x 3 x 4
    s = ops.relu(ops.dense(ops.dropout(ops.flatten(grid), head="state"), p["s1"]))
    return logits, ops.dense(ops.dropout(s, head="state"), p["s2"])


DETECTOR_CHANNELS = (16, 24, 32, 48, 64)
DETECTOR_OUTPUTS = 5  # centre heat (logit), x and y offset in the cell, log width and log height (in cells)


def detector_params(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    c1, c2, c3, c4, c5 = DETECTOR_CHANNELS
    head = conv_params(rng, c3, DETECTOR_OUTPUTS, 1, 1, bn=False)
    head["b"][0] = -4.6  # a centre is rare: start the heat near 0.01 (focal loss practice)
    return {
        "d1": conv_params(rng, 3, c1, 3, 3),
        "d2": conv_params(rng, c1, c2, 3, 3),
        "d3": conv_params(rng, c2, c3, 3, 3),
        "d3b": conv_params(rng, c3, c3, 3, 3),
        "d4": conv_params(rng, c3, c4, 3, 3),
        "d4b": conv_params(rng, c4, c4, 3, 3),
        "d5": conv_params(rng, c4, c5, 3, 3),
        "d5b": conv_params(rng, c5, c5, 3, 3),
        "l5": conv_params(rng, c5, c4, 1, 1),
        "f4": conv_params(rng, c4, c4, 3, 3),
        "l4": conv_params(rng, c4, c3, 1, 1),
        "f3": conv_params(rng, c3, c3, 3, 3),
        "h1": conv_params(rng, c3, c3, 3, 3),
        "head": head,
    }


def detector_net(ops, p: dict, x):
    """x (N, 3, H, W) RGB 0..1, H and W multiples of 32 -> (N, 5, H/8, W/8)."""
    x = ops.conv_bn(x, p["d1"], stride=2)                      # /2
    x = ops.conv_bn(x, p["d2"], stride=2)                      # /4
    x = ops.conv_bn(x, p["d3"], stride=2)                      # /8
    s8 = ops.conv_bn(x, p["d3b"])
    x = ops.conv_bn(s8, p["d4"], stride=2)                     # /16
    s16 = ops.conv_bn(x, p["d4b"])
    x = ops.conv_bn(s16, p["d5"], stride=2)                    # /32
    s32 = ops.conv_bn(x, p["d5b"])
    up = ops.add(ops.upsample2(ops.conv_bn(s32, p["l5"], pad=(0, 0))), s16)
    up = ops.conv_bn(up, p["f4"])
    up = ops.add(ops.upsample2(ops.conv_bn(up, p["l4"], pad=(0, 0))), s8)
    up = ops.conv_bn(up, p["f3"])
    return ops.conv(ops.conv_bn(up, p["h1"]), p["head"], pad=(0, 0))


# --- training -------------------------------------------------------------

class JaxOps:
    """Runs a net in JAX. In training, batch norm uses batch statistics and records them in `updates`."""

    def __init__(self, train: bool, key=None, dropout: float = 0.0, state_dropout: float | None = None):
        import jax.numpy as jnp
        from jax import lax

        self.jnp, self.lax, self.train, self.key = jnp, lax, train, key
        self.rates = {"chars": dropout, "state": dropout if state_dropout is None else state_dropout}
        self.updates: list[tuple[dict, object, object]] = []

    def dropout(self, x, head: str = "chars"):
        """In training with a key, zero the head's share of the values (scaling the rest); otherwise x."""
        rate = self.rates[head]
        if not self.train or self.key is None or rate <= 0:
            return x
        import jax

        self.key, sub = jax.random.split(self.key)
        keep = jax.random.bernoulli(sub, 1.0 - rate, x.shape)
        return self.jnp.where(keep, x / (1.0 - rate), 0.0)

    def conv(self, x, p, stride=1, pad=(1, 1)):
        w = p["w"]
        ph, pw = pad
        y = self.lax.conv_general_dilated(x, w, (stride, stride), ((ph, ph), (pw, pw)),
                                          dimension_numbers=("NCHW", "OIHW", "NCHW"))
        if "b" in p:
            y = y + p["b"][None, :, None, None]
        return y

    def conv_bn(self, x, p, stride=1, pad=(1, 1)):
        kh, kw = p["w"].shape[2:]
        if kh == 1 and kw == 1:
            pad = (0, 0)
        y = self.conv(x, p, stride, pad)
        jnp = self.jnp
        if self.train:
            mean = y.mean(axis=(0, 2, 3))
            var = y.var(axis=(0, 2, 3))
            self.updates.append((p, mean, var))
        else:
            mean, var = p["mean"], p["var"]
        y = (y - mean[None, :, None, None]) * (p["gamma"] / jnp.sqrt(var + BN_EPS))[None, :, None, None]
        return jnp.maximum(y + p["beta"][None, :, None, None], 0.0)

    def pool(self, x, kh, kw):
        return self.lax.reduce_window(x, -self.jnp.inf, self.lax.max, (1, 1, kh, kw), (1, 1, kh, kw), "VALID")

    def avgpool(self, x, kh, kw):
        total = self.lax.reduce_window(x, 0.0, self.lax.add, (1, 1, kh, kw), (1, 1, kh, kw), "VALID")
        return total * (1.0 / (kh * kw))

    def flatten(self, x):
        return x.reshape(x.shape[0], -1)

    def relu(self, x):
        return self.jnp.maximum(x, 0.0)

    def dense(self, x, p):
        return x @ p["w"] + p["b"]

    def steps(self, x):  # (N, C, 1, T) -> (N, T, C)
        return self.jnp.transpose(x[:, :, 0, :], (0, 2, 1))

    def add(self, a, b):
        return a + b

    def upsample2(self, x):
        return self.jnp.repeat(self.jnp.repeat(x, 2, axis=2), 2, axis=3)


def batch_stats(params: dict, updates: list) -> dict:
    """{path: (batch mean, batch variance)} of each batch norm `JaxOps(train=True)` ran over `params`."""
    by_id = {id(p): (m, v) for p, m, v in updates}
    found: dict = {}

    def walk(tree, path):
        for key, value in tree.items():
            if isinstance(value, dict):
                if id(value) in by_id:
                    found[path + (key,)] = by_id[id(value)]
                walk(value, path + (key,))

    walk(params, ())
    return found


def with_running_stats(new: dict, old: dict, stats: dict, momentum: float = BN_MOMENTUM) -> dict:
    """`new` with each batch norm's running averages moved from `old`'s toward the batch's (the optimiser
    leaves them alone in effect: whatever it did to them is replaced)."""
    import jax

    out = jax.tree_util.tree_map(lambda a: a, new)
    for path, (mean, var) in stats.items():
        dst, src = out, old
        for key in path:
            dst, src = dst[key], src[key]
        dst["mean"] = momentum * src["mean"] + (1 - momentum) * jax.lax.stop_gradient(mean)
        dst["var"] = momentum * src["var"] + (1 - momentum) * jax.lax.stop_gradient(var)
    return out


# --- export ---------------------------------------------------------------

class OnnxOps:
    """Builds the ONNX graph of a net from numpy parameters, batch norm folded into each convolution."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def _name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def _const(self, array: np.ndarray, kind: str) -> str:
        from onnx import numpy_helper

        name = self._name(kind)
        self.inits.append(numpy_helper.from_array(np.asarray(array, np.float32), name))
        return name

    def _node(self, op: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        out = self._name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x, p, stride=1, pad=(1, 1), _w=None, _b=None):
        w = np.asarray(p["w"]) if _w is None else _w
        b = np.asarray(p["b"]) if _b is None else _b
        kh, kw = w.shape[2:]
        if kh == 1 and kw == 1:
            pad = (0, 0)
        return self._node("Conv", [x, self._const(w, "w"), self._const(b, "b")], kernel_shape=[kh, kw],
                          strides=[stride, stride], pads=[pad[0], pad[1], pad[0], pad[1]])

    def conv_bn(self, x, p, stride=1, pad=(1, 1)):
        scale = np.asarray(p["gamma"]) / np.sqrt(np.asarray(p["var"]) + BN_EPS)
        w = np.asarray(p["w"]) * scale[:, None, None, None]
        b = np.asarray(p["beta"]) - np.asarray(p["mean"]) * scale
        return self.relu(self.conv(x, p, stride, pad, _w=w, _b=b))

    def pool(self, x, kh, kw):
        return self._node("MaxPool", [x], kernel_shape=[kh, kw], strides=[kh, kw])

    def avgpool(self, x, kh, kw):
        return self._node("AveragePool", [x], kernel_shape=[kh, kw], strides=[kh, kw])

    def flatten(self, x):
        return self._node("Flatten", [x], axis=1)

    def relu(self, x):
        return self._node("Relu", [x])

    def dense(self, x, p):
        return self._node("Gemm", [x, self._const(np.asarray(p["w"]), "w"), self._const(np.asarray(p["b"]), "b")])

    def steps(self, x):
        from onnx import numpy_helper

        axes = self._name("axes")
        self.inits.append(numpy_helper.from_array(np.array([2], np.int64), axes))
        return self._node("Transpose", [self._node("Squeeze", [x, axes])], perm=[0, 2, 1])

    def add(self, a, b):
        return self._node("Add", [a, b])

    def dropout(self, x, head: str = "chars"):
        return x  # training only

    def upsample2(self, x):
        scales = self._const(np.array([1, 1, 2, 2], np.float32), "scales")
        return self._node("Resize", [x, "", scales], mode="nearest")


def export_onnx(net, params: dict, input_shape: tuple, input_name: str, outputs_shapes: dict[str, list],
                metadata: dict[str, str]) -> bytes:
    """The ONNX file (bytes) of `net` with `params`; the batch dimension ("N") is free."""
    import onnx
    from onnx import TensorProto, helper

    output_names = list(outputs_shapes)
    ops = OnnxOps()
    outputs = net(ops, params, input_name)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    for node_out, name in zip(outputs, output_names):
        ops.nodes.append(helper.make_node("Identity", [node_out], [name]))
    graph = helper.make_graph(
        ops.nodes, "plate_net",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", *input_shape[1:]])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n, shape in outputs_shapes.items()],
        ops.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edge-agent training")
    model.ir_version = 8
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    return model.SerializeToString()
