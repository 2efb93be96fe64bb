# SPDX-License-Identifier: GPL-2.0-or-later
#
# The project's entry points; the work is done by scripts/.  See README.md.
#
#   make            build the patched QEMU and boot the demo guest
#   make check      the test command: build, unit tests, qtests, series checks
#   make pristine   build pristine QEMU 10.2.2 (same options) for comparisons
#   make check-pristine  run the project's qtests against pristine 10.2.2
#   make check-asan the fault qtests against an ASan build (slow to build)
#   make bench      benchmarks, patched versus pristine (printed, not asserted)
#   make fuzz       the TDVF metadata parser under a fuzzer (QKM_FUZZ_SECONDS)
#   make series     export the full series to build/series/
#   make series TOPIC=NAME  one topic series (fixes, faults, private, tdx, guest-error; see
#                   patches/topics) to build/series-TOPIC/; TOPIC=all: each
#   make edit       a git work tree with the series as commits (build/edit)
#   make save       write build/edit back to patches/ and the overlay
#   make deps       install what is missing (as root)
#   make clean      remove build/ (the download cache stays)

-include config.mk

export QKM_CACHE_DIR QKM_BUILD_DIR QKM_CONFIGURE_ARGS

BUILD_DIR ?= $(if $(QKM_BUILD_DIR),$(QKM_BUILD_DIR),$(CURDIR)/build)
EDIT_DIR ?= $(BUILD_DIR)/edit
SERIES_DIR ?= $(BUILD_DIR)/series

.PHONY: all demo check check-pristine check-asan check-bisect bench fuzz pristine series edit save deps clean

all: demo

demo:
	scripts/run-demo.sh

check:
	scripts/check.sh

pristine:
	scripts/build.sh pristine

check-pristine:
	scripts/pristine-qtests.sh

check-asan:
	scripts/check-asan.sh

check-bisect:
	scripts/check-bisect.sh

bench:
	bench/run.sh

fuzz:
	bench/fuzz/run.sh

series: deps
	export QKM_UPSTREAM_REPO=$$(scripts/upstream-repo.sh) && \
	    /usr/bin/python3 scripts/series.py export \
	        $(if $(TOPIC),--topic $(TOPIC) $(SERIES_DIR)-$(TOPIC),$(SERIES_DIR))

edit: deps
	@if [ -d $(EDIT_DIR) ]; then \
	    echo "error: $(EDIT_DIR) exists; 'make save' it or remove it first" >&2; \
	    exit 1; \
	fi
	export QKM_UPSTREAM_REPO=$$(scripts/upstream-repo.sh) && \
	    /usr/bin/python3 scripts/series.py edit $(EDIT_DIR)
	@echo "Edit the commits in $(EDIT_DIR) with git, then run 'make save'."

save:
	export QKM_UPSTREAM_REPO=$$(scripts/upstream-repo.sh) && \
	    /usr/bin/python3 scripts/series.py save $(EDIT_DIR)

deps:
	scripts/install-deps.sh

clean:
	rm -rf $(BUILD_DIR)
