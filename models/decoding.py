"""Caption generation, used by validation, testing and run.py alike: the search eval.search names
(models/searches.py), with the evaluation's precision settings and, on CUDA, its graphs."""
from __future__ import annotations

from models.decode_graphs import graphed_decode
from models.decoded import Decoded
from models.searches import search_for
from utils import autocast_bf16, tf32_products


def decode(model, features, mask, eval_config) -> Decoded:
    """One caption per clip by the configured search (beam search in every preset).

    eval.autocast_bf16 runs the model's products in bfloat16; scores are still summed in float32.
    eval.tf32, on CUDA: its float32 products on TF32 tensor cores.
    eval.cuda_graphs, on CUDA, for a search that can be graphed: each batch shape's decode
    replayed as a CUDA graph (models/decode_graphs.py), the same captions; elsewhere it changes
    nothing.
    """
    search = search_for(eval_config)
    graphed = eval_config.cuda_graphs and features.is_cuda and search.graphable
    with (tf32_products(eval_config.tf32),
          autocast_bf16(features.device.type, eval_config.autocast_bf16, cache=not graphed)):
        if graphed:
            return graphed_decode(model, features, mask, eval_config)
        return search.run(model, features, mask, eval_config)
