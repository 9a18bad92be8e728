"""The router's side of the context store: what a request with ``context_id`` sends.

``ContextStore.resolve`` reads the context and its consolidated form in one
Redis script (``ponder.consolidation.store``): the consolidated form is used only
when it was made from the context's current version, and each use is counted so
the consolidation's cost is amortised over the queries that used it. When no
current form exists the raw text is sent and a consolidation job is queued in
the background: queuing never delays or fails the request.

A query on a consolidated context is focused (``ponder.consolidation.focus``):
it is sent the context's sentences relevant to it, within the form's tokens,
instead of the whole query-agnostic form. The BM25 index of a context version
is built once, off the event loop, and the least recently used are dropped past
``focus.cache_contexts`` versions or ``focus.cache_chars`` characters of text.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time

from ponder.common.config import ConsolidatorConfig
from ponder.consolidation.focus import FocusIndex, build_index, focus, skip_reason
from ponder.consolidation.store import ContextNotFound, ContextRepo, estimate_tokens

log = logging.getLogger(__name__)

__all__ = ["ContextNotFound", "ContextStore", "ResolvedContext"]


@dataclasses.dataclass(frozen=True)
class ResolvedContext:
    """The context a query sends, and what it would have cost raw."""

    text: str                # what is sent
    consolidated: bool       # True: a consolidated form of the current version
    source_version: str      # SHA-256 of the current raw text
    raw_tokens: int          # estimated prompt tokens of the raw text
    sent_tokens: int         # estimated prompt tokens of ``text``
    consolidation_cu: float  # the consolidation's own cost (0 when raw)
    uses: int                # queries that used this consolidated form, this one included (0 when raw)
    strategy: str = ""       # strategy chain that made it ("" when raw)
    focused: bool = False    # True: the form's units relevant to the query, not the whole form
    form_tokens: int = 0     # estimated prompt tokens of the whole consolidated form (0 when raw)

    @property
    def saved_tokens(self) -> int:
        return self.raw_tokens - self.sent_tokens

    @property
    def amortised_cu(self) -> float:
        """This query's share of the consolidation's cost: consolidation_cu / uses (0 when raw)."""
        return self.consolidation_cu / self.uses if self.uses else 0.0

    def saved_compute_units(self, prompt_token_cu: float) -> float:
        """Prompt compute units not spent at ``prompt_token_cu`` per token, less this query's
        share of the consolidation's cost; negative while the consolidation has not paid off."""
        return self.saved_tokens * prompt_token_cu - self.amortised_cu


class ContextStore:
    """Contexts by id for the router; ``cfg`` says whether and how missing forms are queued."""

    def __init__(self, redis_client, cfg: ConsolidatorConfig | None = None, clock=time.monotonic):
        self.cfg = cfg or ConsolidatorConfig()
        self.repo = ContextRepo(redis_client, self.cfg.stream)
        self.redis = redis_client
        self.clock = clock
        self._recent: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task] = set()
        # Focus indexes by (context, version, form, index settings): (a future while it is built, and
        # the characters of text it indexes), least recently used first.
        self._indexes: collections.OrderedDict[tuple, tuple[asyncio.Future, int]] = collections.OrderedDict()

    async def put(self, context_id: str, text: str) -> None:
        await self.repo.put(context_id, text)

    async def resolve(self, context_id: str, count_use: bool = True, query: str = "") -> ResolvedContext:
        """The form to send for ``context_id``; ContextNotFound (NOT_FOUND) when unknown.
        ``count_use`` False for dry runs (Plan), which neither count a use nor queue a job.
        ``query``: what is asked of the context; a consolidated context is focused on it."""
        r = await self.repo.resolve(context_id, count_use=count_use)
        c = r.consolidated
        if c is not None:
            form_tokens = estimate_tokens(c.text)
            text, focused = c.text, False
            if not skip_reason(query, form_tokens, self.cfg.focus):
                try:
                    index = await self._index(context_id, r.version, r.raw_text, c.text)
                    f = focus(index, query, self.cfg.focus)
                except Exception as e:  # noqa: BLE001 - focusing is an optimisation: the whole form still serves
                    log.warning("could not focus a query on %r; sending the whole form: %s", context_id, e)
                else:
                    if f.text is not None:
                        text, focused = f.text, True
            return ResolvedContext(text, True, r.version, r.raw_tokens, estimate_tokens(text),
                                   c.compute_units, c.uses, c.strategy, focused, form_tokens)
        if count_use:
            self._queue(context_id, r.version, r.raw_tokens)
        return ResolvedContext(r.raw_text, False, r.version, r.raw_tokens, r.raw_tokens, 0.0, 0)

    async def _index(self, context_id: str, version: str, raw_text: str, form_text: str) -> FocusIndex:
        """The focus index of this context version and form, built off the event loop on first use;
        requests arriving while it is built wait for that one build. Least recently used indexes
        go once more than ``focus.cache_contexts`` are kept or their texts pass ``focus.cache_chars``."""
        fs = self.cfg.focus
        key = (context_id, version, form_text, fs.stemmer, fs.follow_pronouns, fs.length_normalisation)
        entry = self._indexes.get(key)
        if entry is None:
            entry = (asyncio.ensure_future(asyncio.to_thread(
                build_index, raw_text, form_text, self.cfg.extractive.unit, fs.stemmer, fs.follow_pronouns,
                fs.length_normalisation)), len(raw_text) + len(form_text))
            self._indexes[key] = entry
            self._evict()
        else:
            self._indexes.move_to_end(key)
        try:
            return await asyncio.shield(entry[0])
        except Exception:
            if self._indexes.get(key) is entry:
                del self._indexes[key]
            raise

    def _evict(self) -> None:
        """Drop least recently used indexes past the cache's bounds; the newest always stays."""
        fs = self.cfg.focus
        chars = sum(n for _, n in self._indexes.values())
        while len(self._indexes) > 1 and (len(self._indexes) > fs.cache_contexts or chars > fs.cache_chars):
            _, (_, n) = self._indexes.popitem(last=False)
            chars -= n

    def _queue(self, context_id: str, version: str, tokens: int) -> None:
        if not self.cfg.auto_consolidate or tokens < self.cfg.auto_min_tokens:
            return
        now = self.clock()
        key = (context_id, version)
        if now - self._recent.get(key, -1e18) < 30.0:
            return
        if len(self._recent) > 10000:
            self._recent = {k: t for k, t in self._recent.items() if now - t < 30.0}
        self._recent[key] = now
        task = asyncio.get_running_loop().create_task(self._enqueue(context_id, version))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _enqueue(self, context_id: str, version: str) -> None:
        try:
            # Empty strategy, 0 passes and no pool: the consolidator's defaults apply.
            await self.repo.enqueue(context_id, "", 0, "", 0, version=version)
        except Exception as e:  # noqa: BLE001 - off the request path; never fails a request
            log.warning("could not queue consolidation of %r: %s", context_id, e)

    async def drain(self) -> None:
        """Wait for queued-job writes still in flight (shutdown, tests)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
