"""Float weights of an existing model, to continue training or adapt it.

A model folder may hold ``model.safetensors`` (float weights in transformers' Llama naming,
shipped with the default model) or only a CTranslate2 ``model.bin``.  From the latter the
weights are read back and int8 matrices de-quantized (CTranslate2 stores ``round(w * s)``
with one scale ``s`` per output row), which loses less than the training noise: it is how
a model that was only ever exported can be trained further.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from model.export import FLOAT_WEIGHTS_FILE

CT2_MODEL_FILE = "model.bin"

# CTranslate2's DataType enum order (include/ctranslate2/types.h).
_CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)


def read_ct2_variables(path: Path) -> dict[str, np.ndarray]:
    """Variables of a CTranslate2 ``model.bin`` (binary format version 6), by name."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        (value,) = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return value

    def string() -> str:
        nonlocal pos
        n = take("H")
        text = data[pos : pos + n - 1].decode("utf-8")
        pos += n
        return text

    version = take("I")
    if version != 6:
        raise ValueError(f"{path}: CTranslate2 binary version {version}, expected 6")
    string()  # spec name
    take("I")  # revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype_id = take("B")
        nbytes = take("I")
        dtype = _CT2_DTYPES[dtype_id] if dtype_id < len(_CT2_DTYPES) else None
        if dtype is None:
            raise ValueError(f"{path}: variable {name} has unsupported dtype id {dtype_id}")
        variables[name] = np.frombuffer(data, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize,
                                        offset=pos).reshape(shape)
        pos += nbytes
    return variables


def _dequantize(variables: dict[str, np.ndarray], prefix: str) -> np.ndarray:
    weight = variables[prefix + "/weight"]
    scale = variables.get(prefix + "/weight_scale")
    if scale is None:
        return weight.astype(np.float32)
    return weight.astype(np.float32) / scale.astype(np.float32)[:, None]


def llama_state_from_ct2(path: Path, n_layer: int, d_model: int, n_head: int, n_kv_head: int) -> dict[str, np.ndarray]:
    """transformers ``LlamaForCausalLM`` state dict (numpy) from a CTranslate2 decoder."""
    v = read_ct2_variables(path)
    head_dim = d_model // n_head
    q_rows, kv_rows = n_head * head_dim, n_kv_head * head_dim
    state = {
        "model.embed_tokens.weight": _dequantize(v, "decoder/embeddings"),
        "model.norm.weight": v["decoder/layer_norm/gamma"].astype(np.float32),
    }
    for i in range(n_layer):
        src, dst = f"decoder/layer_{i}", f"model.layers.{i}"
        qkv = _dequantize(v, f"{src}/self_attention/linear_0")
        state[f"{dst}.self_attn.q_proj.weight"] = qkv[:q_rows]
        state[f"{dst}.self_attn.k_proj.weight"] = qkv[q_rows : q_rows + kv_rows]
        state[f"{dst}.self_attn.v_proj.weight"] = qkv[q_rows + kv_rows :]
        state[f"{dst}.self_attn.o_proj.weight"] = _dequantize(v, f"{src}/self_attention/linear_1")
        state[f"{dst}.mlp.gate_proj.weight"] = _dequantize(v, f"{src}/ffn/linear_0")
        state[f"{dst}.mlp.up_proj.weight"] = _dequantize(v, f"{src}/ffn/linear_0_noact")
        state[f"{dst}.mlp.down_proj.weight"] = _dequantize(v, f"{src}/ffn/linear_1")
        state[f"{dst}.input_layernorm.weight"] = v[f"{src}/self_attention/layer_norm/gamma"].astype(np.float32)
        state[f"{dst}.post_attention_layernorm.weight"] = v[f"{src}/ffn/layer_norm/gamma"].astype(np.float32)
    return state


def load_float_state(model_dir: Path, cfg) -> dict:
    """torch state dict for ``LlamaForCausalLM`` from a model folder (see module doc).

    ``cfg`` is the folder's ``ModelConfig``; weights come back as float32 tensors.
    """
    import torch

    model_dir = Path(model_dir)
    if (model_dir / FLOAT_WEIGHTS_FILE).is_file():
        from safetensors.torch import load_file

        return {k: t.float() for k, t in load_file(model_dir / FLOAT_WEIGHTS_FILE).items()}
    if (model_dir / CT2_MODEL_FILE).is_file():
        state = llama_state_from_ct2(model_dir / CT2_MODEL_FILE, cfg.n_layer, cfg.d_model, cfg.n_head, cfg.n_kv_head)
        return {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in state.items()}
    raise FileNotFoundError(f"{model_dir} holds neither {FLOAT_WEIGHTS_FILE} nor {CT2_MODEL_FILE}")


def grown_layer_positions(old: int, new: int) -> list[int]:
    """Where each of ``old`` trained layers sits in a ``new``-layer stack (spread evenly)."""
    if not 0 < old <= new:
        raise ValueError(f"cannot grow {old} layers into {new}")
    return [i * new // old for i in range(old)]


def grow_layers(model, state: dict, old: int) -> list[int]:
    """Load ``state`` (an ``old``-layer model) into the deeper ``model``, function-preserving.

    The trained layers keep their order, spread through the stack; each added layer keeps its
    fresh initialisation except the two matrices that write into the residual stream
    (attention output, MLP down projection), which start at zero.  A pre-norm block whose
    writes are zero is the identity, so the grown model starts exactly where the trained one
    was and the new layers learn from there.  Returns the added layers' indices.
    """
    import torch

    new = model.config.num_hidden_layers
    positions = grown_layer_positions(old, new)
    mapped = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if len(parts) > 3 and parts[:2] == ["model", "layers"]:
            parts[2] = str(positions[int(parts[2])])
        mapped[".".join(parts)] = tensor
    model.load_state_dict(mapped, strict=False)
    added = [i for i in range(new) if i not in positions]
    with torch.no_grad():
        for i in added:
            layer = model.model.layers[i]
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    return added
