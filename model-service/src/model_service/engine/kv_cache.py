"""A batch KV cache that rows can join and leave between decoding steps.

transformers' `DynamicLayer` grows by `torch.cat` on every step, copying the whole cache
each token. Here each layer writes into a preallocated slab `[rows, kv_heads, capacity,
head_dim]` and hands the model a view of the live window, so a decoding step copies
only the new token's keys and values. All rows share one column index (left padding,
masked out by the attention mask), which is what lets one forward pass serve them all:
- a request joins by copying its prefill KV into a free row, right-aligned to the window;
- a request leaves by moving the last row into its place (one row copied, not the batch);
- columns that every remaining row masks out are dropped from the window's left edge.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicLayer

# Growth step of the slabs: small enough that a short batch does not reserve memory it never
# uses (RSS matters on CPU hosts), large enough that reallocation copies stay rare.
_GROW_COLUMNS = 64
_ROW_ALIGN = 4


class SlabLayer(DynamicLayer):
    """One decoder layer's keys and values; the window is owned by `BatchKVCache`."""

    def __init__(self, owner: "BatchKVCache", keys: torch.Tensor, values: torch.Tensor):
        super().__init__()
        self.owner = owner
        self.k_slab = keys
        self.v_slab = values
        self.end = owner.end
        self.device = keys.device
        self.is_initialized = True
        self.refresh()

    def refresh(self) -> None:
        o = self.owner
        self.keys = self.k_slab[: o.rows, :, o.start : self.end]
        self.values = self.v_slab[: o.rows, :, o.start : self.end]

    def update(self, key_states, value_states, *args, **kwargs):
        n = key_states.shape[-2]
        rows = self.owner.rows
        self.k_slab[:rows, :, self.end : self.end + n] = key_states
        self.v_slab[:rows, :, self.end : self.end + n] = value_states
        self.end += n
        self.refresh()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.end - self.owner.start


class BatchKVCache(Cache):
    """KV cache plus attention mask for the rows currently decoding together."""

    def __init__(self) -> None:
        super().__init__(layers=[])
        self.rows = 0
        self.start = 0
        self.end = 0
        self.mask: torch.Tensor | None = None  # [row capacity, column capacity], 1 = real token

    # -- sizes -------------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.end - self.start

    @property
    def row_capacity(self) -> int:
        return 0 if self.mask is None else self.mask.shape[0]

    @property
    def column_capacity(self) -> int:
        return 0 if self.mask is None else self.mask.shape[1]

    # -- the window the model sees ------------------------------------------------------
    def attention_mask(self) -> torch.Tensor:
        return self.mask[: self.rows, self.start : self.end]

    def positions(self) -> torch.Tensor:
        """Next position id of each row: the number of real tokens it holds."""
        return self.attention_mask().sum(dim=1)

    def open_columns(self, n: int) -> torch.Tensor:
        """Make room for n new tokens per row and return the mask the forward pass needs."""
        if self.end + n > self.column_capacity:
            self._reallocate(self.row_capacity, self.width + n + _GROW_COLUMNS)
        self.mask[: self.rows, self.end : self.end + n] = 1
        return self.mask[: self.rows, self.start : self.end + n]

    def commit_columns(self, n: int) -> None:
        """Called after a forward pass wrote n columns into every layer."""
        self.end += n
        for layer in self.layers:
            assert layer.end == self.end, "a layer skipped its cache update"

    # -- rows joining and leaving ------------------------------------------------------
    def add_rows(self, prefill: Cache, prefill_mask: torch.Tensor) -> None:
        """Append the rows of a freshly prefilled (left-padded) batch."""
        new_rows, new_width = prefill_mask.shape
        if not self.layers:
            self._allocate_like(prefill, -(-new_rows // _ROW_ALIGN) * _ROW_ALIGN, new_width + _GROW_COLUMNS)
            self.start = self.end = new_width  # an empty window that ends where the prompts end
        need_rows = self.rows + new_rows
        if need_rows > self.row_capacity or new_width > self.end:
            # Not enough rows, or the prompt is longer than the window reaches back.
            rows = max(-(-need_rows // _ROW_ALIGN) * _ROW_ALIGN, self.row_capacity)
            self._reallocate(rows, max(self.width, new_width) + _GROW_COLUMNS,
                             right_align=max(self.width, new_width))
        first, last = self.rows, need_rows
        col0 = self.end - new_width
        self.mask[first:last, : self.end] = 0
        self.mask[first:last, col0 : self.end] = prefill_mask
        for layer, src in zip(self.layers, prefill.layers):
            layer.k_slab[first:last, :, col0 : self.end] = src.keys
            layer.v_slab[first:last, :, col0 : self.end] = src.values
        self.rows = need_rows
        self.start = min(self.start, col0)
        self._refresh_layers()

    def remove_row(self, index: int) -> None:
        """Drop one row by moving the last row into its place. Callers mirror the swap."""
        last = self.rows - 1
        if index != last:
            s, e = self.start, self.end
            self.mask[index, s:e] = self.mask[last, s:e]
            for layer in self.layers:
                layer.k_slab[index, :, s:e] = layer.k_slab[last, :, s:e]
                layer.v_slab[index, :, s:e] = layer.v_slab[last, :, s:e]
        self.rows = last
        if self.rows == 0:
            self.release()
            return
        self._trim_left()
        self._refresh_layers()

    def release(self) -> None:
        """Give the slabs back when the batch empties, so an idle server holds no KV memory."""
        self.layers = []
        self.mask = None
        self.rows = self.start = self.end = 0

    # -- internals -------------------------------------------------------------------
    def _trim_left(self) -> None:
        live = self.attention_mask().any(dim=0)
        if live.numel() and not bool(live[0]):
            self.start += int(live.int().argmax())

    def _allocate_like(self, prefill: Cache, rows: int, columns: int) -> None:
        self.mask = torch.zeros(rows, columns, dtype=torch.long, device=prefill.layers[0].keys.device)
        self.layers = []
        for src in prefill.layers:
            b, heads, _, dim = src.keys.shape
            k = torch.zeros(rows, heads, columns, dim, dtype=src.keys.dtype, device=src.keys.device)
            v = torch.zeros(rows, src.values.shape[1], columns, src.values.shape[3],
                            dtype=src.values.dtype, device=src.values.device)
            self.layers.append(SlabLayer(self, k, v))

    def _reallocate(self, rows: int, columns: int, right_align: int | None = None) -> None:
        """Copy the live window into fresh slabs, ending at column `right_align` (default: its width)."""
        width = self.width
        new_end = right_align if right_align is not None else width
        new_start = new_end - width
        mask = torch.zeros(rows, columns, dtype=self.mask.dtype, device=self.mask.device)
        mask[: self.rows, new_start:new_end] = self.attention_mask()
        self.mask = mask
        for layer in self.layers:
            # Drop the layer's views first, so each old slab is freed as soon as it is copied
            # and a reallocation never holds two whole caches at once.
            layer.keys = layer.values = None
            for name in ("k_slab", "v_slab"):
                old = getattr(layer, name)
                new = torch.zeros(rows, old.shape[1], columns, old.shape[3], dtype=old.dtype, device=old.device)
                new[: self.rows, :, new_start:new_end] = old[: self.rows, :, self.start : self.end]
                setattr(layer, name, new)
        # Columns left of the old window are padding for every existing row.
        self.start, self.end = new_start, new_end
        if right_align is not None and self.rows == 0:
            self.start = self.end
        self._refresh_layers()

    def _refresh_layers(self) -> None:
        for layer in self.layers:
            layer.end = self.end
            layer.refresh()
