"""SoftCoT's forward path: assistant pass, projection, and the backbone's input embeddings.

Algorithm (Xu et al. 2025, arXiv 2502.12134):
1. The frozen assistant reads ``assistant_template(prompt)`` followed by N
   placeholder tokens in one forward pass (no generation).
2. Its last-layer hidden states at the N placeholder positions, ``[N, d_a]``,
   go through the trainable projection (``Linear(d_a, d_b)`` with bias).
3. The result replaces the frozen backbone's input embeddings at N positions
   between ``begin_marker`` and ``end_marker`` in ``backbone_template``;
   the backbone then generates as usual.
Only the projection is trained: next-token cross-entropy on the target
(rationale and answer), the prompt masked.
"""
from __future__ import annotations

import dataclasses

from ponder.common.config import SoftCoT
from ponder.common.errors import InvalidArgument
from ponder.pools.backends.torch_lm import CausalLM


def make_projection(d_assistant: int, d_backbone: int, seed: int = 0, target_rms: float = 1.0):
    """``Linear(d_assistant, d_backbone)`` with bias, weights drawn with a fixed seed and
    scaled so that unit-RMS inputs give outputs of RMS about ``target_rms`` (the
    backbone's own embedding scale), so an untrained projection does not swamp the prompt."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    proj = torch.nn.Linear(d_assistant, d_backbone, bias=True)
    with torch.no_grad():
        proj.weight.copy_(torch.randn(d_backbone, d_assistant, generator=gen) * (target_rms / d_assistant**0.5))
        proj.bias.zero_()
    return proj


def split_template(template: str, prompt: str) -> tuple[str, str]:
    """Text before and after ``{thoughts}`` with ``{prompt}`` filled in (no str.format: prompts may hold braces)."""
    before, _, after = template.partition("{thoughts}")
    return before.replace("{prompt}", prompt), after.replace("{prompt}", prompt)


@dataclasses.dataclass
class BackboneInput:
    embeds: object  # [seq, d_b]
    soft_start: int  # first soft position
    num_soft: int
    assistant_tokens: int


class SoftCoTModel:
    """Assistant + projection + backbone. Both models are frozen; the projection is a torch module."""

    def __init__(self, assistant: CausalLM, backbone: CausalLM, projection, cfg: SoftCoT):
        self.assistant, self.backbone, self.projection, self.cfg = assistant, backbone, projection, cfg
        tok = assistant.tokenizer
        for candidate in (tok.unk_token_id, tok.pad_token_id, tok.eos_token_id):
            if candidate is not None:
                self.placeholder_id = int(candidate)
                break
        else:
            self.placeholder_id = 0

    @property
    def num_soft(self) -> int:
        return self.cfg.num_thought_tokens

    def assistant_ids(self, prompt: str) -> list[int]:
        """Assistant input: template + N placeholders; INVALID_ARGUMENT ``prompt`` if over its context."""
        ids = self.assistant.encode(self.cfg.assistant_template.replace("{prompt}", prompt)) + [self.placeholder_id] * self.num_soft
        if len(ids) > self.cfg.assistant_max_context_tokens:
            raise InvalidArgument(
                "prompt",
                f"the assistant pass needs {len(ids)} tokens, over the assistant's context of "
                f"{self.cfg.assistant_max_context_tokens} (softcot.assistant_max_context_tokens)",
            )
        return ids

    def soft_thoughts(self, prompt: str):
        """Projected soft thoughts ``[N, d_b]`` in the backbone's dtype and device, and the assistant tokens read.

        Gradients flow into the projection only: the assistant runs without them.
        """
        import torch

        ids = self.assistant_ids(prompt)
        with torch.no_grad():
            out = self.assistant.model(
                input_ids=torch.tensor([ids], device=self.assistant.device), output_hidden_states=True, use_cache=False
            )
            hidden = out.hidden_states[-1][0, -self.num_soft:]
        w = self.projection.weight
        thoughts = self.projection(hidden.to(device=w.device, dtype=w.dtype))
        return thoughts.to(device=self.backbone.device, dtype=self.backbone.model.dtype), len(ids)

    def backbone_ids(self, prompt: str) -> tuple[list[int], list[int]]:
        """Token ids before the soft slots (BOS, text, begin marker) and after them (end marker, text)."""
        before, after = split_template(self.cfg.backbone_template, prompt)
        return (
            self.backbone.encode(before + self.cfg.begin_marker, bos=True),
            self.backbone.encode(self.cfg.end_marker + after, bos=False),
        )

    def backbone_input(self, prompt: str) -> BackboneInput:
        """The backbone's prompt embeddings with the soft thoughts in place."""
        import torch

        thoughts, n_assistant = self.soft_thoughts(prompt)
        left, right = self.backbone_ids(prompt)
        embeds = torch.cat([self.backbone.embed(left), thoughts, self.backbone.embed(right)], 0)
        return BackboneInput(embeds, len(left), self.num_soft, n_assistant)

    def loss(self, prompt: str, target: str):
        """Mean next-token cross-entropy of ``target`` (+ EOS) after the soft-thought prompt; a 0-d tensor."""
        import torch

        inp = self.backbone_input(prompt)
        eos = self.backbone.tokenizer.eos_token_id
        tgt = self.backbone.encode(target, bos=False) + ([eos] if eos is not None else [])
        tgt_t = torch.tensor(tgt, device=self.backbone.device)
        full = torch.cat([inp.embeds, self.backbone.embed(tgt).detach()], 0)
        p = inp.embeds.shape[0]
        model = self.backbone.model
        hidden = model.model(inputs_embeds=full[None], use_cache=False).last_hidden_state[0, p - 1:-1]
        logits = model.lm_head(hidden)  # logits of target positions only: the vocab is large
        softcap = getattr(model.config, "final_logit_softcapping", None)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        return torch.nn.functional.cross_entropy(logits.float(), tgt_t)
