"""A/B of one decoding step of the lean runner: matmuls through F.linear vs weights packed once
for oneDNN (`_PackedDense`), in one process, 256 cached tokens per row, median of 9, twice each.

    ../.venv/bin/python bench/bench_matmul_packing.py
"""
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
from transformers import AutoModelForCausalLM, DynamicCache
from model_service.engine import quantization as Q
from model_service.engine.llama_runner import LlamaFamilyRunner
from model_service.engine.kv_cache import BatchKVCache
m=AutoModelForCausalLM.from_pretrained(str(HERE.parents[1] / 'models' / 'smollm2-135m-instruct')).eval()
print(f'load {os.getloadavg()[0]:.2f}')
packed=LlamaFamilyRunner(m)
orig=Q._packable; Q._packable=lambda w: False
plain=LlamaFamilyRunner(m); Q._packable=orig
c=m.config; d=64; kvh=c.num_key_value_heads; ctx=256
def mk(rows):
    pre=DynamicCache()
    for i in range(c.num_hidden_layers):
        pre.update(torch.randn(rows,kvh,ctx,d),torch.randn(rows,kvh,ctx,d),i)
    s=BatchKVCache(); s.add_rows(pre, torch.ones((rows,ctx),dtype=torch.long)); return s
def step(r,s,rows):
    mask=s.open_columns(1)
    out=r(input_ids=torch.zeros((rows,1),dtype=torch.long),attention_mask=mask,position_ids=s.positions().unsqueeze(1),cache=s)
    s.commit_columns(1); return out
with torch.no_grad():
    for rows in (1,2,4,8,16,32,64):
        res={}
        for name,r in (('plain',plain),('packed',packed),('plain2',plain),('packed2',packed)):
            s=mk(rows)
            for _ in range(2): step(r,s,rows)
            ts=[]
            for _ in range(9):
                t=time.perf_counter(); step(r,s,rows); ts.append(time.perf_counter()-t)
            res[name]=sorted(ts)[4]*1000
        print(rows, ' '.join(f'{k} {v:.1f}' for k,v in res.items()), f"ratio {min(res['plain'],res['plain2'])/min(res['packed'],res['packed2']):.2f}", flush=True)
