"""Mixture of experts: a router sends each token to top_k of E expert MLPs (and every token to the
shared experts, if any)."""

from typing import Any, ClassVar, Literal

from pydantic import Field, StrictBool

from ..formula import Q
from ..shapes import Shape, numel
from .activation import GELU, ReLU, SiLU, Sigmoid
from .base import Layer, NonNegInt, PosInt, register

_ACTIVATIONS = {"silu": SiLU, "gelu": GELU, "relu": ReLU}
_OPS = ("mul", "add", "div", "exp", "cmp", "fn")


def _per_element(cls) -> dict[str, int]:
    return {op: cls.per_element.get(op, 0) for op in _OPS}


@register("moe", "moe")
class MoE(Layer):
    """Mixture of experts on the last dimension (…, D), as Mixtral, Qwen-MoE and DeepSeek-V2/V3
    write it: a router (a linear layer D → E, optionally with a bias) scores the E routed experts
    for each token; each token goes through the top_k best, whose outputs are summed weighted by
    their scores; shared experts (one MLP of width ``shared_hidden``, DeepSeek's n_shared experts
    together) see every token. Each expert is an MLP of width H (``hidden``): gated (SwiGLU:
    down(act(gate(x)) ⊙ up(x)), the default) or plain (down(act(up(x)))).

    Parameters: every expert, the shared MLP and the router. ``active`` is what one token uses:
    the router, its top_k experts and the shared MLP (a fact; the analysis sums it with the
    other layers' parameters into the model's active parameters). MACs per token: the router's
    D·E, top_k experts' weights once each, the shared MLP's. Element-wise work per token: the
    activation on k·H + H_s hidden values (as calc's activation layer of that name) and the
    gating multiply (gated); the router's scoring (softmax over E: E exponentials, E − 1 adds,
    E divisions; or sigmoid, 4 per score), top-k selection as k passes of a maximum (k·(E − 1)
    comparisons), optional renormalisation of the k weights (k − 1 adds, k divisions), the
    weighting (k·D multiplies) and the sum of the k expert outputs and the shared one."""

    experts: PosInt = Field(description="routed experts E")
    top_k: PosInt = Field(description="experts each token is routed to")
    hidden: PosInt = Field(description="width H of each routed expert's MLP")
    gated: StrictBool = Field(True, description="gated MLP experts (SwiGLU: gate, up, down); false: up, down")
    activation: Literal["silu", "gelu", "relu"] = "silu"
    bias: StrictBool = Field(False, description="biases in the experts' linear layers")
    router_bias: StrictBool = Field(False, description="a bias of E added to the router's scores to choose "
                                                       "the experts (DeepSeek-V3's e_score_correction_bias): a "
                                                       "buffer, set by load balancing, not by gradients")
    shared_hidden: NonNegInt = Field(0, description="width of the shared experts' MLP (0: none)")
    shared_gate: StrictBool = Field(False, description="a sigmoid gate D → 1 on the shared experts' "
                                                       "output (Qwen2-MoE)")
    scoring: Literal["softmax", "sigmoid"] = Field("softmax", description="router scores: softmax over E "
                                                                          "(Mixtral) or sigmoid (DeepSeek-V3)")
    norm_topk: StrictBool = Field(False, description="the k selected weights renormalised to sum to 1")

    quantities: ClassVar[tuple[Q, ...]] = (
        Q("mats", "3 if gated else 2", "matrices per MLP: gate, up, down (gated) or up, down"),
        Q("expert_w", "mats * D * H", "one routed expert's weights"),
        Q("expert_b", "(mats - 1) * H + D if bias else 0", "one routed expert's biases"),
        Q("shared_w", "mats * D * H_s", "the shared experts' MLP"),
        Q("shared_b", "(mats - 1) * H_s + D if bias and H_s else 0", "its biases"),
        Q("router_w", "D * E + (D if sgate else 0)", "the router D → E (and the shared gate D → 1)"),
        Q("weights", "E * expert_w + shared_w + router_w"),
        Q("biases", "E * expert_b + shared_b", key="bias", when="bias"),
        Q("router_buffer", "E", "the router's selection bias (a buffer, as Hugging Face holds it)", key="buffers",
          when="rbias"),
        Q("active", "router_w + k * (expert_w + expert_b) + shared_w + shared_b",
          "parameters one token uses: the router, its k experts, the shared experts"),
        Q("mac", "R * (router_w + k * expert_w + shared_w)",
          "per token: the router's scores, every weight of its k experts and of the shared MLP once"),
        Q("dots", "R * (E + sgate + k * ((mats - 1) * H + D) + (((mats - 1) * H_s + D) if H_s else 0))",
          "one per output element of the router and of each linear layer a token goes through"),
        Q("bias_add", "R * (k * expert_b + shared_b + (E if rbias else 0))", "one per bias used",
          when="any_bias"),
        Q("acts", "R * (k * H + H_s)", "hidden values activated"),
        Q("mul", "acts * (a_mul + gated) + R * (k * D + E * s_mul + (D + 1 if sgate else 0))",
          "activation; gating ⊙; weighting k outputs; sigmoid scoring; shared gate"),
        Q("add", "acts * a_add + R * ((E - 1 if softmax else E) + (k - 1 if norm else 0) + (k - 1) * D + "
                 "(D if H_s else 0) + sgate)",
          "activation; scoring; renormalisation; summing k outputs (and the shared one); shared gate's sigmoid"),
        Q("div", "acts * a_div + R * (E + (k if norm else 0) + sgate)", "activation; scoring; renormalisation"),
        Q("exp", "acts * a_exp + R * (E + sgate)", "activation; scoring (softmax or sigmoid)"),
        Q("cmp", "acts * a_cmp + R * k * (E - 1)", "activation; top-k as k passes of a maximum over E"),
        Q("fn", "acts * a_fn", "activation (erf)"),
        Q("rows", "R", fact=True), Q("experts", "E", fact=True), Q("top_k", "k", fact=True),
        Q("hidden", "H", fact=True), Q("dim", "D", fact=True),
    )

    def given(self, shape: Shape) -> dict[str, Any]:
        if not shape:
            raise ValueError("needs at least a 1-d input (…, D)")
        if self.top_k > self.experts:
            raise ValueError(f"top_k={self.top_k} is more than the {self.experts} experts")
        if self.shared_gate and not self.shared_hidden:
            raise ValueError("shared_gate needs shared experts (shared_hidden > 0)")
        act = _per_element(_ACTIVATIONS[self.activation])
        sig = _per_element(Sigmoid)
        sigmoid = self.scoring == "sigmoid"
        bias = int(self.bias)
        return {"R": numel(shape[:-1]), "D": shape[-1], "E": self.experts, "k": self.top_k, "H": self.hidden,
                "H_s": self.shared_hidden, "gated": int(self.gated), "bias": bias, "rbias": int(self.router_bias),
                "any_bias": int(bias or self.router_bias), "sgate": int(self.shared_gate),
                "softmax": int(not sigmoid), "norm": int(self.norm_topk),
                **{f"a_{op}": n for op, n in act.items()}, "s_mul": sig["mul"] if sigmoid else 0}
