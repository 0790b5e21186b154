# Entry points a person types. The real build is CMake (CMakeLists.txt); this file only
# chains the steps: install what is missing, build, fetch the default model, test, serve.
BUILD ?= build
JOBS ?= 2
SGLC_CACHE ?= $(HOME)/.cache/sglc
MODEL ?= $(SGLC_CACHE)/SmolLM2-135M-Instruct.Q4_1.gguf
PORT ?= 30000

.PHONY: all build deps model test unit e2e fuzz serve bench format clean

all: build

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@scripts/install_deps.sh

model:
	@scripts/fetch_model.sh >/dev/null

# Everything CI runs: install, build, fetch the model, unit tests, fuzzing, end-to-end tests,
# each phase timed (scripts/test_all.sh).
test:
	@scripts/test_all.sh

unit: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

e2e: build model
	@SGLC_BIN=$(abspath $(BUILD))/sglc SGLC_MODEL=$(MODEL) python3 -m pytest -q tests/e2e

fuzz:
	@scripts/run_fuzz.sh

# The API server on the default model (OpenAI and SGLang routes on http://127.0.0.1:$(PORT)).
serve: build model
	$(BUILD)/sglc launch_server --model-path $(MODEL) --host 127.0.0.1 --port $(PORT)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) build-fuzz
