"""The two torch modules that become the ONNX graphs: T5's encoder and one decoder step.

Both are small wrappers over a loaded (merged, float32, eval-mode) `T5ForConditionalGeneration`:
they reuse its weights and norm modules, fuse the decoder's projections that read the same
input (q, k and v; the gated feed-forward's two inputs), and spell out attention, so that
tracing sees plain tensor code. transformers' own attention goes through cache objects
and mask helpers that look at the data (an all-ones mask may be dropped), which a trace would
freeze into the graph; here nothing depends on the values of the inputs.

- `EncoderGraph`: (input_ids, attention_mask) -> the cross-attention keys and values of every
  decoder layer, computed once per prompt (the decoder only ever needs those).
- `DecoderStepGraph`: (input_ids of one new token, attention_mask, past self-attention keys and
  values, cross keys and values) -> logits of the next token and the self-attention keys and
  values grown by one position. The past may be empty (the first step), so one graph serves
  every step.

Keys and values are per layer, shaped (batch, heads, positions, d_kv).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def input_names(layers: int) -> tuple[list[str], list[str]]:
    """Input names of the (encoder, decoder step) graphs."""
    encoder = ["input_ids", "attention_mask"]
    decoder = ["input_ids", "attention_mask", *past_names(layers), *cross_names(layers)]
    return encoder, decoder


def past_names(layers: int) -> list[str]:
    return [f"past_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def present_names(layers: int) -> list[str]:
    return [f"present_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def cross_names(layers: int) -> list[str]:
    return [f"cross_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def _additive_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, keys) of 1/0 -> (batch, 1, 1, keys) of 0 / a large negative number, as T5 adds it."""
    mask = attention_mask[:, None, None, :].to(torch.float32)
    return (1.0 - mask) * torch.finfo(torch.float32).min


def _heads(x: torch.Tensor, heads: int, d_kv: int) -> torch.Tensor:
    """(batch, positions, heads * d_kv) -> (batch, heads, positions, d_kv)."""
    return x.view(x.shape[0], x.shape[1], heads, d_kv).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(batch, heads, positions, d_kv) -> (batch, positions, heads * d_kv)."""
    x = x.transpose(1, 2)
    return x.reshape(x.shape[0], x.shape[1], -1)


def _attention_math(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, heads: int
) -> torch.Tensor:
    """T5 attention: no 1/sqrt(d) scaling; the bias carries positions and mask. q is
    (batch, queries, d); k and v are (batch, keys, d), or already split into heads."""
    d_kv = q.shape[-1] // heads
    split = [x if x.dim() == 4 else _heads(x, heads, d_kv) for x in (q, k, v)]
    weights = torch.softmax(torch.matmul(split[0], split[1].transpose(2, 3)) + bias, dim=-1)
    return _merge(torch.matmul(weights, split[2]))


def _unused(g: Any) -> Any:
    """An omitted optional input of an ONNX node."""
    node = g.op("prim::Constant")
    node.setType(torch._C.OptionalType.ofTensor())
    return node


class _Attention(torch.autograd.Function):
    """Attention that exports as ONNX Runtime's fused `com.microsoft.MultiHeadAttention`: one
    kernel instead of two batched matmuls, a softmax and the transposes around them (measured:
    a quarter of a decoder step's time at batch 31). Without a past: the encoder's
    self-attention and the decoder's cross-attention (keys and values already split)."""

    @staticmethod
    def forward(ctx: Any, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, heads: int):
        return _attention_math(q, k, v, bias, heads)

    @staticmethod
    def symbolic(g: Any, q: Any, k: Any, v: Any, bias: Any, heads: int) -> Any:
        out = g.op(
            "com.microsoft::MultiHeadAttention",
            q,
            k,
            v,
            _unused(g),
            _unused(g),
            bias,
            num_heads_i=heads,
            scale_f=1.0,
        )
        out.setType(q.type())
        return out


class _AttentionWithPast(torch.autograd.Function):
    """The decoder's self-attention for new tokens: appends their keys and values to the past
    (inside the fused kernel, which writes the grown cache directly) and attends to all."""

    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        bias: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
        heads: int,
    ):
        d_kv = q.shape[-1] // heads
        key = torch.cat([past_k, _heads(k, heads, d_kv)], dim=2)
        value = torch.cat([past_v, _heads(v, heads, d_kv)], dim=2)
        return _attention_math(q, key, value, bias, heads), key, value

    @staticmethod
    def symbolic(g: Any, q: Any, k: Any, v: Any, bias: Any, past_k: Any, past_v: Any, heads: int) -> Any:
        out, key, value = g.op(
            "com.microsoft::MultiHeadAttention",
            q,
            k,
            v,
            _unused(g),
            _unused(g),
            bias,
            past_k,
            past_v,
            num_heads_i=heads,
            scale_f=1.0,
            outputs=3,
        )
        out.setType(q.type())
        key.setType(past_k.type())
        value.setType(past_v.type())
        return out, key, value


def _fuse(*linears: nn.Linear, release: bool = False) -> nn.Linear:
    """One Linear computing several bias-free Linears of the same input, outputs side by side.

    For one decoder step, one int8 matmul of (d, 3d) ran 7% faster than three of (d, d) (one
    activation quantisation, fewer ops to schedule); per-channel scales are unchanged.
    `release`: empty the originals, so that the fused copy costs no memory (the model they
    belong to must not run afterwards).
    """
    weight = torch.cat([linear.weight.detach() for linear in linears], dim=0)
    fused = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    fused.weight = nn.Parameter(weight, requires_grad=False)
    if release:
        for linear in linears:
            linear.weight = nn.Parameter(torch.empty(0), requires_grad=False)
    return fused


class _FeedForward(nn.Module):
    """T5's feed-forward sub-layer (norm, feed-forward, residual), the gated kind with its two
    input projections fused; other kinds run as transformers has them."""

    def __init__(self, layer: Any, release: bool) -> None:
        super().__init__()
        self.layer = layer
        dense = layer.DenseReluDense
        self.gated = hasattr(dense, "wi_0")
        if self.gated:
            self.wi = _fuse(dense.wi_0, dense.wi_1, release=release)
            self.width = dense.wi_0.out_features

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if not self.gated:
            return self.layer(hidden)
        dense = self.layer.DenseReluDense
        gate, linear = self.wi(self.layer.layer_norm(hidden)).split(self.width, dim=-1)
        return hidden + dense.wo(dense.act(gate) * linear)


def _position_bias(attn: Any, relative: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """T5's learned relative-position bias, (1, heads, queries, keys), for relative positions."""
    buckets = attn._relative_position_bucket(
        relative,
        bidirectional=bidirectional,
        num_buckets=attn.relative_attention_num_buckets,
        max_distance=attn.relative_attention_max_distance,
    )
    return attn.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)


class EncoderGraph(nn.Module):
    """Prompt tokens -> cross-attention keys and values for every decoder layer."""

    def __init__(self, model: Any, release: bool = False) -> None:
        super().__init__()
        self.embed = model.encoder.embed_tokens
        self.blocks = model.encoder.block
        self.final_norm = model.encoder.final_layer_norm
        # Not fused here: with a whole prompt batch per matmul, splitting a fused output costs
        # more than it saves (measured: 13% of the encoder's time at 32 prompts).
        self.cross = nn.ModuleList(block.layer[1].EncDecAttention for block in model.decoder.block)
        first = self.blocks[0].layer[0].SelfAttention
        self.heads, self.d_kv = first.n_heads, first.key_value_proj_dim

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = self.embed(input_ids)
        positions = torch.arange(input_ids.shape[1], dtype=torch.long)
        first = self.blocks[0].layer[0].SelfAttention
        relative = positions[None, :] - positions[:, None]
        bias = _position_bias(first, relative, bidirectional=True) + _additive_mask(attention_mask)
        for block in self.blocks:
            layer = block.layer[0]
            attn = layer.SelfAttention
            normed = layer.layer_norm(hidden)
            mixed = _Attention.apply(attn.q(normed), attn.k(normed), attn.v(normed), bias, self.heads)
            hidden = hidden + attn.o(mixed)
            hidden = block.layer[-1](hidden)  # T5LayerFF: norm, feed-forward, residual
        hidden = self.final_norm(hidden)
        outputs: list[torch.Tensor] = []
        for attn in self.cross:
            outputs += [
                _heads(attn.k(hidden), self.heads, self.d_kv),
                _heads(attn.v(hidden), self.heads, self.d_kv),
            ]
        return tuple(outputs)


class DecoderStepGraph(nn.Module):
    """One new token per row, with the past -> next-token logits and the grown past."""

    def __init__(self, model: Any, release: bool = False) -> None:
        super().__init__()
        self.embed = model.decoder.embed_tokens
        self.blocks = model.decoder.block
        self.final_norm = model.decoder.final_layer_norm
        self.lm_head = model.lm_head
        # transformers 5 keeps T5's "tied embeddings" output scaling in scale_decoder_outputs.
        scale = getattr(model.config, "scale_decoder_outputs", None)
        if scale is None:
            scale = getattr(model.config, "tie_word_embeddings", False)
        self.output_scale = model.config.d_model**-0.5 if scale else 1.0
        attentions = [block.layer[0].SelfAttention for block in self.blocks]
        self.qkv = nn.ModuleList(_fuse(a.q, a.k, a.v, release=release) for a in attentions)
        self.feed_forward = nn.ModuleList(_FeedForward(block.layer[-1], release) for block in self.blocks)
        first = attentions[0]
        self.heads, self.d_kv = first.n_heads, first.key_value_proj_dim
        self.inner = self.heads * self.d_kv

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, *kv: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        layers = len(self.blocks)
        past, cross = kv[: 2 * layers], kv[2 * layers :]
        hidden = self.embed(input_ids)  # (batch, 1, d_model)
        step = past[0].shape[2]  # the new token's position: how many came before it
        first = self.blocks[0].layer[0].SelfAttention
        relative = torch.arange(step + 1, dtype=torch.long)[None, :] - step
        self_bias = _position_bias(first, relative, bidirectional=False)  # keys <= step: causal
        cross_bias = _additive_mask(attention_mask)
        presents: list[torch.Tensor] = []
        for i, block in enumerate(self.blocks):
            hidden, key, value = self._self_attention(i, hidden, past[2 * i], past[2 * i + 1], self_bias)
            presents += [key, value]
            layer = block.layer[1]
            attn = layer.EncDecAttention
            q = attn.q(layer.layer_norm(hidden))
            hidden = hidden + attn.o(
                _Attention.apply(q, cross[2 * i], cross[2 * i + 1], cross_bias, self.heads)
            )
            hidden = self.feed_forward[i](hidden)
        hidden = self.final_norm(hidden)
        logits = self.lm_head(hidden * self.output_scale if self.output_scale != 1.0 else hidden)
        return (logits[:, -1, :], *presents)

    def _self_attention(
        self, i: int, hidden: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        layer = self.blocks[i].layer[0]
        q, k, v = self.qkv[i](layer.layer_norm(hidden)).split(self.inner, dim=-1)
        mixed, key, value = _AttentionWithPast.apply(q, k, v, bias, past_k, past_v, self.heads)
        return hidden + layer.SelfAttention.o(mixed), key, value
