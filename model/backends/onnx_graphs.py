"""The two torch modules that become the ONNX graphs: T5's encoder and one decoder step.

Both are small wrappers over a loaded (merged, float32, eval-mode) `T5ForConditionalGeneration`:
they reuse its weights and norm modules, fuse the projections that read the same input (q, k
and v; the gated feed-forward's two inputs; the cross-attention k and v), and spell out
attention, so that tracing sees plain tensor code. transformers' own attention goes through cache objects
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


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, out: nn.Linear
) -> torch.Tensor:
    """T5 attention on split heads: no 1/sqrt(d) scaling; the bias carries positions and mask."""
    weights = torch.softmax(torch.matmul(q, k.transpose(2, 3)) + bias, dim=-1)
    mixed = torch.matmul(weights, v).transpose(1, 2)
    return out(mixed.reshape(mixed.shape[0], mixed.shape[1], -1))


def _fuse(*linears: nn.Linear, release: bool = False) -> nn.Linear:
    """One Linear computing several bias-free Linears of the same input, outputs side by side.

    One int8 matmul of (d, 3d) ran 7% faster a decoder step than three of (d, d) (one
    activation quantisation, fewer ops to schedule), and per-channel scales are unchanged.
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
        attentions = [block.layer[0].SelfAttention for block in self.blocks]
        self.qkv = nn.ModuleList(_fuse(a.q, a.k, a.v, release=release) for a in attentions)
        self.feed_forward = nn.ModuleList(_FeedForward(block.layer[-1], release) for block in self.blocks)
        cross = [block.layer[1].EncDecAttention for block in model.decoder.block]
        self.cross_kv = nn.ModuleList(_fuse(a.k, a.v, release=release) for a in cross)
        first = attentions[0]
        self.heads, self.d_kv = first.n_heads, first.key_value_proj_dim
        self.inner = self.heads * self.d_kv

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        hidden = self.embed(input_ids)
        positions = torch.arange(input_ids.shape[1], dtype=torch.long)
        first = self.blocks[0].layer[0].SelfAttention
        relative = positions[None, :] - positions[:, None]
        bias = _position_bias(first, relative, bidirectional=True) + _additive_mask(attention_mask)
        for block, qkv, feed_forward in zip(self.blocks, self.qkv, self.feed_forward):
            layer = block.layer[0]
            projected = qkv(layer.layer_norm(hidden)).split(self.inner, dim=-1)
            q, k, v = (_heads(x, self.heads, self.d_kv) for x in projected)
            hidden = hidden + _attend(q, k, v, bias, layer.SelfAttention.o)
            hidden = feed_forward(hidden)
        hidden = self.final_norm(hidden)
        outputs: list[torch.Tensor] = []
        for kv in self.cross_kv:
            outputs += [_heads(x, self.heads, self.d_kv) for x in kv(hidden).split(self.inner, dim=-1)]
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
            q = _heads(attn.q(layer.layer_norm(hidden)), self.heads, self.d_kv)
            hidden = hidden + _attend(q, cross[2 * i], cross[2 * i + 1], cross_bias, attn.o)
            hidden = self.feed_forward[i](hidden)
        hidden = self.final_norm(hidden)
        logits = self.lm_head(hidden * self.output_scale if self.output_scale != 1.0 else hidden)
        return (logits[:, -1, :], *presents)

    def _self_attention(
        self, i: int, hidden: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor, bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        layer = self.blocks[i].layer[0]
        projected = self.qkv[i](layer.layer_norm(hidden)).split(self.inner, dim=-1)
        q, k, v = (_heads(x, self.heads, self.d_kv) for x in projected)
        key, value = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        return hidden + _attend(q, key, value, bias, layer.SelfAttention.o), key, value
