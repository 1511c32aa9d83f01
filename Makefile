# Fresh machine: `make demo` and `make test` create .venv and install everything they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format venv weights results clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU wheel first: a bare `torch` requirement would otherwise pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/afvsr demo

test: $(STAMP)
	$(BIN)/ruff check afvsr tests benchmarks
	$(BIN)/ruff format --check afvsr tests benchmarks
	$(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff format afvsr tests benchmarks
	$(BIN)/ruff check --fix afvsr tests benchmarks

# The shipped weights, retrained on ../shared/data with the CPU presets: hours on 2 CPU cores.
# Every run resumes where it stopped (run `make weights` again after an interruption); the
# models go to afvsr/weights/ as fp16 safetensors (docs/results.md has each model card).
RUNS ?= runs
# $(call CAMPAIGN,FROM): a weights-campaign run starting from run folder FROM's best weights;
# $(call CAMPAIGN_RUN,FROM,N): the same, named basicvsr_campaign_N with seed N.
CAMPAIGN = $(BIN)/afvsr train -c configs/cpu/basicvsr_campaign.toml --resume \
  --set run.out_dir=$(RUNS) --set train.init_checkpoint=$(RUNS)/$(1)/model_best.safetensors
CAMPAIGN_RUN = $(call CAMPAIGN,$(1)) --set run.name=basicvsr_campaign_$(2) --set run.seed=$(2)
SHIP = $(BIN)/python -c "import sys, torch, afvsr; afvsr.save_model(afvsr.load_model(sys.argv[1]), sys.argv[2], dtype=torch.float16)"
weights: $(STAMP)
	$(BIN)/afvsr train -c configs/cpu/spynet_pretrain.toml --resume --set run.out_dir=$(RUNS)
	$(BIN)/afvsr train -c configs/cpu/basicvsr.toml --resume --set run.out_dir=$(RUNS) \
	  --set train.spynet_checkpoint=$(RUNS)/spynet_cpu/model_best.safetensors
	$(call CAMPAIGN,basicvsr_cpu) --set train.iterations=1600
	$(call CAMPAIGN_RUN,basicvsr_campaign,3)
	$(call CAMPAIGN_RUN,basicvsr_campaign_3,4) --set train.lr=2e-4 --set train.iterations=2600
	$(call CAMPAIGN_RUN,basicvsr_campaign_4,5) --set train.lr=2e-4
	$(call CAMPAIGN_RUN,basicvsr_campaign_5,6) --set train.lr=2e-4
	$(call CAMPAIGN_RUN,basicvsr_campaign_6,7) --set train.lr=2e-4 --set data.gt_downscale=1
	$(call CAMPAIGN_RUN,basicvsr_campaign_7,8) --set train.lr=2e-4 --set data.gt_downscale=1
	$(SHIP) $(RUNS)/basicvsr_campaign_8/model_best.safetensors afvsr/weights/basicvsr-small.safetensors
	for m in single multihead rates135; do \
	  $(BIN)/afvsr train -c configs/cpu/afvsr_$$m.toml --resume --set run.out_dir=$(RUNS) \
	    --set train.backbone_checkpoint=$(RUNS)/basicvsr_campaign_8/model_best.safetensors \
	    --set data.gt_downscale=1 && \
	  $(SHIP) $(RUNS)/afvsr_$${m}_cpu/model_best.safetensors afvsr/weights/afvsr-$$m-small.safetensors \
	  || exit 1; done
	$(BIN)/afvsr train -c configs/cpu/iconvsr.toml --resume --set run.out_dir=$(RUNS) \
	  --set train.spynet_checkpoint=$(RUNS)/spynet_cpu/model_best.safetensors
	$(BIN)/afvsr train -c configs/cpu/iconvsr_campaign.toml --resume --set run.out_dir=$(RUNS) \
	  --set train.backbone_checkpoint=$(RUNS)/basicvsr_campaign_4/model_best.safetensors \
	  --set train.extractor_checkpoint=$(RUNS)/iconvsr_cpu/model_best.safetensors
	$(BIN)/afvsr train -c configs/cpu/iconvsr_campaign.toml --resume --set run.out_dir=$(RUNS) \
	  --set run.name=iconvsr_campaign_2 --set data.gt_downscale=1 --set train.spynet_freeze_iters=1200 \
	  --set train.backbone_checkpoint=$(RUNS)/basicvsr_campaign_8/model_best.safetensors \
	  --set train.extractor_checkpoint=$(RUNS)/iconvsr_campaign/model_best.safetensors
	$(SHIP) $(RUNS)/iconvsr_campaign_2/model_best.safetensors afvsr/weights/iconvsr-small.safetensors

# docs/results.md: every shipped model and bicubic on the validation split of ../shared/data
# (the first 10 frames of each of its 20 clips), then the table and the figures.
RESULTS ?= results/validation
EVAL = $(BIN)/afvsr eval --data shared:val --gt-downscale 2 --max-frames 10 --device cpu --precision fp32 --force
results: $(STAMP)
	mkdir -p $(RESULTS) docs/figures
	$(EVAL) --model bicubic --out $(RESULTS)/bicubic.json
	$(EVAL) --model basicvsr-small --out $(RESULTS)/basicvsr.json
	for w in 5 7 11; do $(EVAL) --model basicvsr-small --window $$w --out $(RESULTS)/basicvsr_w$$w.json || exit 1; done
	$(EVAL) --model iconvsr-small --out $(RESULTS)/iconvsr.json
	$(EVAL) --model iconvsr-small --window 5 --out $(RESULTS)/iconvsr_w5.json
	$(EVAL) --model afvsr-single-small --out $(RESULTS)/fusion_single.json
	$(EVAL) --model afvsr-multihead-small --out $(RESULTS)/fusion_multihead.json
	$(EVAL) --model afvsr-rates135-small --out $(RESULTS)/fusion_rates135.json
	$(BIN)/afvsr table $(RESULTS)/*.json --channel y --out $(RESULTS)/table_y.csv
	$(BIN)/afvsr table $(RESULTS)/*.json --channel rgb --out $(RESULTS)/table_rgb.csv
	$(BIN)/afvsr figures attention --model afvsr-single-small --data shared:val --gt-downscale 2 \
	  --clip basketballpass --device cpu --out docs/figures/attention.png --force
	$(BIN)/afvsr figures compare --models bicubic basicvsr-small afvsr-single-small \
	  --data shared:val --gt-downscale 2 --clip basketballpass --device cpu --out docs/figures/compare.png --force

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache
