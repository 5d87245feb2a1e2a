"""One small instance of every registered layer type, for tests that must cover them all.

SAMPLES maps a layer type to (per-sample input shape, spec item). A test checks that every
type in the registry is here, so a new layer type must be added (and thereby get checked by
the convention coverage and explanation tests).
"""
SAMPLES = {
    "conv1d": ((4, 9), {"conv1d": {"out": 6, "kernel": 3, "stride": 2, "padding": 1}}),
    "conv2d": ((4, 9, 8), {"conv2d": {"out": 6, "kernel": [3, 2], "groups": 2, "dilation": 2}}),
    "conv3d": ((2, 5, 5, 6), {"conv3d": {"out": 3, "kernel": 3, "bias": False, "padding": "same"}}),
    "conv_transpose1d": ((4, 7), {"conv_transpose1d": {"out": 6, "kernel": 3, "stride": 2}}),
    "conv_transpose2d": ((4, 5, 6), {"conv_transpose2d": {"out": 6, "kernel": 3, "stride": 2, "groups": 2,
                                                          "output_padding": 1, "padding": 1}}),
    "conv_transpose3d": ((2, 3, 3, 4), {"conv_transpose3d": {"out": 3, "kernel": 2, "stride": 2, "bias": False}}),
    "linear": ((3, 5), {"linear": {"out": 7}}),
    "maxpool1d": ((3, 11), {"maxpool1d": {"kernel": 3, "stride": 2, "ceil_mode": True}}),
    "maxpool2d": ((3, 9, 10), {"maxpool2d": {"kernel": 3, "stride": 2, "padding": 1, "dilation": 2}}),
    "maxpool3d": ((2, 4, 5, 6), {"maxpool3d": {"kernel": 2}}),
    "avgpool1d": ((3, 11), {"avgpool1d": {"kernel": 3, "stride": 2}}),
    "avgpool2d": ((3, 9, 10), {"avgpool2d": {"kernel": 3, "stride": 2, "ceil_mode": True, "padding": 1}}),
    "avgpool3d": ((2, 4, 5, 6), {"avgpool3d": {"kernel": 2}}),
    "adaptive_avgpool1d": ((3, 17), {"adaptive_avgpool1d": {"size": 5}}),
    "adaptive_avgpool2d": ((3, 15, 17), {"adaptive_avgpool2d": {"size": [5, 5]}}),
    "adaptive_avgpool3d": ((2, 4, 5, 7), {"adaptive_avgpool3d": {"size": [2, 3, 3]}}),
    "adaptive_maxpool1d": ((3, 17), {"adaptive_maxpool1d": {"size": 4}}),
    "adaptive_maxpool2d": ((3, 15, 17), {"adaptive_maxpool2d": {"size": [4, None]}}),
    "adaptive_maxpool3d": ((2, 4, 5, 7), {"adaptive_maxpool3d": {"size": 2}}),
    "global_avgpool": ((3, 5, 6), "global_avgpool"),
    "pad": ((3, 5, 6), {"pad": {"pad": [1, 2, 0, 3]}}),
    "roll": ((3, 5, 6), {"roll": {"shifts": [-2, 1], "dims": [1, 2]}}),
    "global_maxpool": ((3, 5, 6), {"global_maxpool": {"keepdim": True}}),
    "batchnorm1d": ((4, 6), "batchnorm1d"),
    "batchnorm2d": ((4, 5, 6), {"batchnorm2d": {"affine": False}}),
    "batchnorm3d": ((2, 3, 4, 5), "batchnorm3d"),
    "layernorm": ((4, 6), {"layernorm": {"normalized": 2}}),
    "groupnorm": ((6, 4, 5), {"groupnorm": {"groups": 3}}),
    "local_response_norm": ((6, 4, 5), {"local_response_norm": {"size": 3}}),
    "relu": ((3, 4, 5), "relu"),
    "relu6": ((3, 4, 5), "relu6"),
    "softplus": ((3, 4, 5), {"softplus": {"beta": 2}}),
    "leaky_relu": ((3, 4, 5), "leaky_relu"),
    "prelu": ((3, 4, 5), {"prelu": {"num_parameters": 3}}),
    "elu": ((3, 4, 5), "elu"),
    "sigmoid": ((3, 4, 5), "sigmoid"),
    "tanh": ((3, 4, 5), "tanh"),
    "gelu": ((3, 4, 5), "gelu"),
    "silu": ((3, 4, 5), "silu"),
    "hardswish": ((3, 4, 5), "hardswish"),
    "hardsigmoid": ((3, 4, 5), "hardsigmoid"),
    "softmax": ((3, 4, 5), {"softmax": {"dim": 0}}),
    "dropout": ((3, 4, 5), "dropout"),
    "stochastic_depth": ((3, 4, 5), {"stochastic_depth": {"p": 0.1}}),
    "identity": ((3, 4, 5), "identity"),
    "flatten": ((3, 4, 5), {"flatten": {"start": 1}}),
    "reshape": ((3, 4, 5), {"reshape": {"shape": [-1, 10]}}),
    "permute": ((3, 4, 5), {"permute": {"dims": [1, 2, 0]}}),
    "channel_shuffle": ((6, 4, 5), {"channel_shuffle": {"groups": 3}}),
    "channel_split": ((6, 4, 5), {"channel_split": {"sections": [2, 4], "index": 1}}),
    "layer_scale": ((3, 4, 5), "layer_scale"),
    "upsample": ((3, 4, 5), {"upsample": {"scale": 2, "mode": "bilinear"}}),
    "add": ((3, 4, 5), {"add": {"with": ["input"]}}),
    "mul": ((3, 4, 5), {"mul": {"with": ["input"]}}),
    "concat": ((3, 4, 5), {"concat": {"with": ["input"]}}),
    "matmul": ((3, 4, 5), {"matmul": {"with": ["input"], "transpose": True}}),
    "parameter": ((3, 4, 5), {"parameter": {"shape": [7, 3]}}),
    "buffer": ((3, 4, 5), {"buffer": {"shape": [6]}}),
    "gather": ((6, 5), {"gather": {"index": "input"}}),
    "scale": ((3, 4, 5), {"scale": {"by": 0.125}}),
    "exp": ((3, 1, 1), "exp"),
    "clamp": ((3, 4, 5), {"clamp": {"min": -1, "max": 4.6}}),
    "normalize": ((3, 4, 5), {"normalize": {"dim": -1}}),
    "embedding": ((9,), {"embedding": {"vocab": 100, "dim": 16}}),       # token ids (input_kind tokens)
    "pos_embedding": ((7, 8), {"pos_embedding": {"max_len": 10}}),
    "type_embedding": ((7, 8), "type_embedding"),
    "class_token": ((7, 8), "class_token"),
    "to_tokens": ((8, 3, 4), "to_tokens"),
    "to_image": ((12, 8), {"to_image": {"size": [3, 4]}}),
    "select_token": ((7, 8), "select_token"),
    "token_mean": ((7, 8), "token_mean"),
    "rmsnorm": ((7, 8), "rmsnorm"),
    "attention": ((7, 8), {"attention": {"heads": 2, "causal": True, "kv_heads": 1}}),
    "mla": ((7, 16), {"mla": {"heads": 2, "kv_lora_rank": 4, "q_lora_rank": 6, "qk_nope_head_dim": 3,
                              "qk_rope_head_dim": 2, "v_head_dim": 5, "causal": True}}),
    "moe": ((7, 8), {"moe": {"experts": 4, "top_k": 2, "hidden": 6, "shared_hidden": 3}}),
    "rnn": ((5, 4), {"rnn": {"hidden": 6, "num_layers": 2}}),
    "lstm": ((5, 4), {"lstm": {"hidden": 6, "bidirectional": True}}),
    "gru": ((5, 4), {"gru": {"hidden": 6, "bias": False}}),
}
TOKEN_INPUT = {"embedding"}


def sample_spec(type_name: str) -> str:
    """A one-layer spec (YAML text) for the sample of ``type_name``."""
    import yaml
    shape, item = SAMPLES[type_name]
    doc = {"name": f"sample_{type_name}", "input": list(shape), "layers": [item]}
    if type_name in TOKEN_INPUT:
        doc["input_kind"] = "tokens"
    return yaml.safe_dump(doc)
